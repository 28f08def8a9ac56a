//! Deletes reclaim their slots (backward shift, no tombstones) while readers in other
//! processes keep reading without a lock: a delete stopped or killed between two of the
//! records it moves, and readers racing a writer that deletes and re-puts keys around theirs.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use shm_demo::cli::DbArgs;
use shm_demo::layout::{self, Geometry};
use shm_demo::workload::{key_for, value_for};
use support::{Name, Server, WAIT, fails, ok, run};

/// The home slot of `key` in a table of `slots` slots.
fn home(slots: u32, key: &str) -> u32 {
    let geo = Geometry::new(slots, layout::KEY_MAX, layout::VALUE_MAX).unwrap();
    geo.home(layout::key_hash(key.as_bytes()))
}

/// A delete stopped (the test hook) after moving one record back, holding the mutex: the
/// moved key is in two slots, and readers in other processes still find every key once, with
/// its value, and miss the deleted one. Killed there, the next writer finishes the delete: no
/// second copy is left to be counted, or to come back after the key's own delete.
#[test]
fn a_delete_killed_between_two_moves_is_finished_by_the_next_writer() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "64"]);
    // Three keys with one home slot, put in order: they lie at h, h + 1, h + 2.
    let mut by_home: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let (keys, h) = (0..)
        .find_map(|i| {
            let k = format!("k{i}");
            let h = home(64, &k);
            let same = by_home.entry(h).or_default();
            same.push(k);
            (same.len() == 3 && h + 3 < 64).then(|| (same.clone(), h))
        })
        .unwrap();
    let [gone, first, second] = [&keys[0], &keys[1], &keys[2]].map(String::as_str);
    for k in [gone, first, second] {
        ok(&sb, &name, &["put", k, &format!("value of {k}")]);
    }

    let doomed = support::stop_inside(&sb, &name, &["del", gone]);
    assert_eq!(ok(&sb, &name, &["get", first]), format!("value of {first}"));
    assert_eq!(
        ok(&sb, &name, &["get", second]),
        format!("value of {second}")
    );
    assert_eq!(
        fails(&sb, &name, &["get", gone]),
        "",
        "a miss is exit 1, no message"
    );
    assert_eq!(
        ok(&sb, &name, &["list", "--values"]),
        format!("{first}\tvalue of {first}\n{second}\tvalue of {second}\n")
    );

    doomed.signal(Signal::SIGKILL).unwrap();
    doomed.wait_timeout(WAIT).unwrap();
    let out = run(&sb, &name, &["put", "other", "x"], b"");
    let err = testkit::stderr(&out);
    assert!(
        out.status.success()
            && err.contains("recovered the writers' mutex")
            && err.contains(&format!(
                "the delete that was filling slot {} finished",
                h + 1
            )),
        "{:?}: {err}",
        out.status
    );
    assert!(ok(&sb, &name, &["stats"]).contains("records 3\n"));
    ok(&sb, &name, &["del", first]);
    fails(&sb, &name, &["get", first]);
    let mut left = ["other", second];
    left.sort_unstable();
    assert_eq!(ok(&sb, &name, &["list"]), format!("{}\n", left.join("\n")));
    server.stop();
}

/// The CPU time, in clock ticks, that `pid` has used (0 once it is gone).
fn cpu_ticks(pid: nix::unistd::Pid) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15; the slice starts at field 3.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// `shm-demo reader` processes read writer 0's keys, which stay stored, while this process
/// deletes and re-puts other keys that share their probe runs, so that writer 0's keys are
/// moved under the readers' feet. Before each round they are put again behind the others
/// (with no reader running), so every round moves them. Every reader must find every key it
/// looks for, with a whole value. (The exact instant of the race is made certain by the unit
/// tests in src/db.rs; this is the same with real processes and real timing.)
#[test]
fn readers_never_miss_a_key_that_deletes_move() {
    const SLOTS: u32 = 64;
    const KEYS: u32 = 16;
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(
        &sb,
        &name,
        &["--slots", &SLOTS.to_string(), "--value-max", "128"],
    );
    let target = DbArgs {
        name: name.name.clone(),
        sysv: false,
    }
    .target()
    .unwrap();
    let db = shm_demo::db::Db::open(&target).unwrap();
    let stable: Vec<String> = (0..KEYS).map(|j| key_for(0, j)).collect();
    // Two other keys for each stable one, with the same home slot.
    let mut homes: Vec<u32> = stable.iter().map(|k| home(SLOTS, k)).collect();
    homes.sort_unstable();
    homes.dedup();
    let mut others: Vec<String> = Vec::new();
    for i in 0.. {
        let k = format!("other{i}");
        let h = home(SLOTS, &k);
        if homes.contains(&h) && others.iter().filter(|o| home(SLOTS, o) == h).count() < 2 {
            others.push(k);
        }
        if others.len() == 2 * homes.len() {
            break;
        }
    }
    let put = |k: &str, v: &[u8]| db.lock().unwrap().put(k.as_bytes(), v).unwrap();
    for k in &others {
        put(k, b"churn");
    }
    for (j, k) in stable.iter().enumerate() {
        put(k, &value_for(0, j as u32, 0));
    }
    for round in 1..=4u64 {
        // No reader runs: writer 0's keys go behind the others that share their homes.
        for (j, k) in stable.iter().enumerate() {
            assert!(db.lock().unwrap().del(k.as_bytes()).unwrap());
            put(k, &value_for(0, j as u32, round));
        }
        let readers: Vec<_> = (0..2)
            .map(|_| {
                testkit::spawn(&mut support::cmd(
                    &sb,
                    &name,
                    &[
                        "reader",
                        "--writers",
                        "1",
                        "--keys",
                        &KEYS.to_string(),
                        "--duration-ms",
                        "300",
                    ],
                ))
            })
            .collect();
        // Into their reading loops (a clock tick of CPU each, or gone) before anything moves.
        let give_up = Instant::now() + WAIT;
        while readers
            .iter()
            .any(|r| r.try_wait().unwrap().is_none() && cpu_ticks(r.pid()) == 0)
        {
            assert!(Instant::now() < give_up, "the readers never ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Delete and re-put the others until the readers are done: the first deletes move
        // writer 0's keys back towards their homes.
        while readers.iter().any(|r| r.try_wait().unwrap().is_none()) {
            for k in &others {
                assert!(db.lock().unwrap().del(k.as_bytes()).unwrap());
                put(k, b"churn");
            }
        }
        for r in readers {
            let status = r.wait_timeout(WAIT).unwrap();
            let out = r.stdout_lines().unwrap().rest(WAIT).unwrap().join("\n");
            let err = r.stderr_lines().unwrap().rest(WAIT).unwrap().join("\n");
            assert!(
                status.success(),
                "round {round}: reader {status:?}: {out} {err}"
            );
            let words: Vec<&str> = out.split_whitespace().collect();
            // done: gets G found F checksum failures C
            assert_eq!(words[0], "done:", "{out}");
            assert_eq!(
                words[2], words[4],
                "round {round}: a stored key was missed: {out}"
            );
            assert_eq!(words[7], "0", "round {round}: {out}");
        }
    }
    drop(db);
    server.stop();
}
