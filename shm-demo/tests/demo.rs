//! The whole scenario, as `shm-demo` plays it by default, and under heavier load.

mod support;

use common::testkit::{self, Sandbox};

fn demo(args: &[&str]) -> String {
    let sb = Sandbox::new();
    let out = testkit::run(sb.command(support::BIN).args(args), b"");
    let stdout = testkit::stdout(&out);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        out.status.success() && last.starts_with("ok: "),
        "{args:?}: {:?}\n{stdout}\n{}",
        out.status,
        testkit::stderr(&out)
    );
    assert!(
        testkit::stderr(&out).contains("recovered the writers' mutex"),
        "the recovery is reported on stderr"
    );
    last
}

#[test]
fn default_run_plays_everything_and_says_ok() {
    let last = demo(&[]);
    assert!(last.contains("4 writers committed"), "{last}");
    assert!(last.contains("with 0 checksum failures"), "{last}");
    assert!(last.contains("128/128 keys as committed"), "{last}");
    assert!(last.contains("nothing left in /dev/shm"), "{last}");
}

/// The load test: 8 writers and 8 readers at once, 0 checksum failures, and the final
/// table equal to what each writer last committed (checked by the demo, key by key).
#[test]
fn eight_writers_eight_readers_no_torn_value_and_the_table_as_committed() {
    let last = demo(&[
        "demo",
        "--writers",
        "8",
        "--readers",
        "8",
        "--duration-ms",
        "2000",
    ]);
    assert!(last.contains("8 writers committed"), "{last}");
    assert!(last.contains("8 readers made"), "{last}");
    assert!(last.contains("with 0 checksum failures"), "{last}");
    assert!(last.contains("256/256 keys as committed"), "{last}");
}

#[test]
fn sysv_demo_leaves_no_segment() {
    let last = demo(&["demo", "--sysv", "--duration-ms", "500"]);
    assert!(last.contains("nothing left in ipcs -m"), "{last}");
}

/// The pids of the processes whose command line holds `word` (the demo's children all carry
/// `--name NAME`).
fn processes_with(word: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == word.as_bytes()))
                && !testkit::not_running(nix::unistd::Pid::from_raw(pid))
        })
        .collect()
}

/// A demo whose workers would run for 10 minutes if nothing stopped them, its stdout, and
/// the segment its server created (from "1. server (pid N) created /ipc-demo-...").
fn long_demo(sb: &Sandbox) -> (common::child::Supervised, common::child::Lines, String) {
    let demo = testkit::spawn(
        sb.command(support::BIN)
            .args(["demo", "--duration-ms", "600000"]),
    );
    let mut out = demo.stdout_lines().unwrap();
    let first = out
        .wait_for(|l| l.starts_with("1. server (pid "), support::WAIT)
        .unwrap();
    let name = first.rsplit(' ').next().unwrap().to_owned();
    (demo, out, name)
}

/// A demo killed with -9 cannot stop its children itself: the kernel does (PR_SET_PDEATHSIG),
/// so the server removes the segment and no writer, reader or server runs on.
#[test]
fn a_demo_killed_with_sigkill_leaves_no_child_and_no_segment() {
    use std::time::{Duration, Instant};
    let sb = Sandbox::new();
    let (demo, mut out, name) = long_demo(&sb);
    out.wait_for(|l| l.starts_with("2. "), support::WAIT)
        .unwrap();
    let children = processes_with(&name);
    assert!(children.len() >= 9, "server + 8 workers: {children:?}");
    demo.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    demo.wait_timeout(support::WAIT).unwrap();

    let give_up = Instant::now() + support::WAIT;
    let shm = std::path::PathBuf::from(format!("/dev/shm{name}"));
    while !processes_with(&name).is_empty() || shm.exists() {
        if Instant::now() > give_up {
            // Fail, but leave nothing running for 10 minutes behind us.
            let left = processes_with(&name);
            for &pid in &left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            panic!(
                "still running: {left:?}; {} exists: {}",
                shm.display(),
                shm.exists()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stop signal while the workers still have minutes to run (Ctrl-C, SIGTERM, a closed
/// terminal's SIGHUP): the demo stops waiting for them at once, stops every role, removes the
/// segment, says it was interrupted (no verdict) and exits 128 + the signal's number.
#[test]
fn a_stop_signal_while_the_workers_run_stops_every_role_and_exits_128_plus_n() {
    use nix::sys::signal::Signal;
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let (demo, mut out, name) = long_demo(&sb);
        // Step 5 done: the demo now waits for the workers' results.
        out.wait_for(|l| l.starts_with("5. "), support::WAIT)
            .unwrap();
        // Only the demo gets it (its children are in process groups of their own), as a
        // Ctrl-C at the terminal would reach it.
        nix::sys::signal::kill(demo.pid(), sig).unwrap();
        let status = demo.wait_timeout(support::WAIT).unwrap();
        let rest = out.rest(support::WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {rest:?}");
        assert_eq!(
            rest.last().map(String::as_str),
            Some(format!("interrupted by {sig} before the check was done").as_str()),
            "{rest:?}"
        );
        assert!(!rest.iter().any(|l| l.starts_with("ok:")), "{rest:?}");
        // The handles stopped every child before the demo exited.
        assert_eq!(processes_with(&name), Vec::<i32>::new(), "{sig}");
        assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
        assert_eq!(sb.leftovers(), Vec::<String>::new(), "{sig}");
    }
}

/// `shm-demo -v`: the whole scenario narrated by every process it starts (server, writers,
/// readers, watch), without hanging on the narration and with the same `ok:` at the end.
#[test]
fn the_default_run_with_v_narrates_every_role_and_says_ok() {
    let sb = Sandbox::new();
    let out = testkit::run(
        sb.command(support::BIN)
            .args(["-v", "demo", "--duration-ms", "300"]),
        b"",
    );
    let stdout = testkit::stdout(&out);
    let trace = testkit::stderr(&out);
    assert!(out.status.success(), "{stdout}\n{trace}");
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("ok: ")),
        "{stdout}"
    );
    for call in [
        " server] shm_open(",
        " server] posix_fallocate(",
        " writer] pthread_mutex_lock(",
        " reader] shm_open(",
        " watch] futex(",
        " demo] fork(",
    ] {
        assert!(trace.contains(call), "no {call:?} in the trace:\n{trace}");
    }
}
