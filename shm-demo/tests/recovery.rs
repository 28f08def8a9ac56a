//! Writers killed inside the critical section: the next writer recovers the mutex and puts
//! the half-written record back; a reader facing the odd record meanwhile gives up cleanly.

mod support;

use std::time::{Duration, Instant};

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Name, Server, WAIT, fails, ok, run, stop_a_writer_inside};

/// The 200 runs: each time a writer dies holding the mutex mid-write, the next writer
/// recovers it (EOWNERDEAD, said on stderr), the record keeps its last committed value, and
/// the table stays consistent. Bounded: 200 runs or 120 s, whichever first, and at least 50.
#[test]
fn two_hundred_writers_killed_in_the_critical_section() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "64"]);
    ok(&sb, &name, &["put", "victim", "v0"]);
    let start = Instant::now();
    let mut runs = 0;
    while runs < 200 && start.elapsed() < Duration::from_secs(120) {
        let committed = format!("v{runs}");
        let doomed = stop_a_writer_inside(
            &sb,
            &name,
            "victim",
            &format!("torn-{runs}-{}", "x".repeat(200)),
        );
        doomed.signal(Signal::SIGKILL).unwrap();
        doomed.wait_timeout(WAIT).unwrap();

        // The next writer (on another key) recovers the mutex and says so.
        let out = run(&sb, &name, &["put", &format!("k{}", runs % 8), "y"], b"");
        assert!(
            out.status.success(),
            "run {runs}: {}",
            testkit::stderr(&out)
        );
        let err = testkit::stderr(&out);
        assert!(
            err.contains("recovered the writers' mutex")
                && err.contains("restored to its last committed value"),
            "run {runs}: {err}"
        );
        // The killed put never happened.
        assert_eq!(ok(&sb, &name, &["get", "victim"]), committed, "run {runs}");
        ok(&sb, &name, &["put", "victim", &format!("v{}", runs + 1)]);
        runs += 1;
    }
    assert!(runs >= 50, "only {runs} runs in 120 s");
    // The table is consistent: the victim and the 8 other keys, nothing else, counted right.
    let list = ok(&sb, &name, &["list", "--values"]);
    let mut want: Vec<String> = (0..runs.min(8)).map(|i| format!("k{i}\ty")).collect();
    want.push(format!("victim\tv{runs}"));
    want.sort();
    assert_eq!(list.lines().collect::<Vec<_>>(), want);
    let stats = ok(&sb, &name, &["stats"]);
    assert!(
        stats.contains(&format!("records {}\n", want.len())),
        "{stats}"
    );
    server.stop();
}

/// With nobody to repair it, a reader gives up on the odd record after a bounded time with a
/// clear error (it does not spin forever), and other keys are still readable.
#[test]
fn reader_gives_up_on_a_record_that_stays_odd() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "stuck", "before"]);
    ok(&sb, &name, &["put", "fine", "yes"]);
    let doomed = stop_a_writer_inside(&sb, &name, "stuck", &"z".repeat(100));
    doomed.signal(Signal::SIGKILL).unwrap();
    doomed.wait_timeout(WAIT).unwrap();

    let began = Instant::now();
    let err = fails(&sb, &name, &["get", "stuck"]);
    assert!(
        err.contains("is still being written after 2 s") && err.contains("the next put repairs it"),
        "{err}"
    );
    assert!(began.elapsed() < Duration::from_secs(30));
    assert_eq!(ok(&sb, &name, &["get", "fine"]), "yes");
    // A put repairs it; the value is the committed one.
    ok(&sb, &name, &["put", "other", "1"]);
    assert_eq!(ok(&sb, &name, &["get", "stuck"]), "before");
    server.stop();
}

/// A server started on a leftover whose writer died holding the mutex repairs it while
/// adopting.
#[test]
fn adopting_server_repairs_a_mutex_left_locked() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "k", "committed"]);
    let doomed = stop_a_writer_inside(&sb, &name, "k", &"n".repeat(64));
    server.kill();
    doomed.signal(Signal::SIGKILL).unwrap();
    doomed.wait_timeout(WAIT).unwrap();

    let server = Server::start(&sb, &name, &[]);
    assert!(
        server
            .started
            .contains("adopted the database left by dead server pid"),
        "{}",
        server.started
    );
    assert_eq!(ok(&sb, &name, &["get", "k"]), "committed");
    server.stop();
    assert!(!name.shm_path().exists());
}

/// A record's sequence count comes from the segment: one at the top of its range rolls over
/// to 0, in a put and in the repair after a writer killed mid-write, instead of overflowing
/// (a panic, exit 101, in a debug build).
#[test]
fn a_sequence_count_at_the_top_of_its_range_rolls_over() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "4", "--value-max", "64"]);
    ok(&sb, &name, &["put", "k", "committed"]);
    // The one live record is k's, its sequence count its first 8 bytes.
    let file = support::Tamper::open(&name);
    let (_, seq_of_k) = file.live_record();
    let at_the_top = || file.write_at(&(u64::MAX - 1).to_le_bytes(), seq_of_k);

    // The writer stops with the count at u64::MAX (odd); the repair makes it even: 0.
    at_the_top();
    let doomed = stop_a_writer_inside(&sb, &name, "k", "never committed");
    doomed.signal(Signal::SIGKILL).unwrap();
    doomed.wait_timeout(WAIT).unwrap();
    let out = run(&sb, &name, &["put", "other", "1"], b"");
    let err = testkit::stderr(&out);
    assert!(
        out.status.success() && err.contains("restored to its last committed value"),
        "{:?}: {err}",
        out.status
    );
    assert_eq!(ok(&sb, &name, &["get", "k"]), "committed");

    // A put from u64::MAX - 1 ends at 0.
    at_the_top();
    ok(&sb, &name, &["put", "k", "new"]);
    assert_eq!(ok(&sb, &name, &["get", "k"]), "new");
    assert_eq!((file.u32_at(seq_of_k), file.u32_at(seq_of_k + 4)), (0, 0));
    server.stop();
}

/// A mutex whose lock word names a thread that no longer exists (written by hand here; a
/// writer of another pid namespace, or a lost robust list, leaves the same): the kernel never
/// hands it on. A writer gives up after its wait and says who holds it (it said "a live
/// process"), and the server's `--save` does not wait for it: it keeps what is committed.
#[test]
fn a_mutex_held_by_a_thread_that_no_longer_exists_is_reported_as_such() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let snap = sb.join("db.snap");
    let snap = snap.to_str().unwrap();
    let server = Server::start(&sb, &name, &["--save", snap]);
    ok(&sb, &name, &["put", "k", "committed"]);
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let tid = gone.id();
    gone.wait().unwrap();
    // The mutex is at offset 128 (src/layout.rs); its first word is the owner's thread id.
    support::Tamper::open(&name).write_at(&tid.to_le_bytes(), 128);

    let err = fails(&sb, &name, &["put", "k", "new"]);
    assert!(
        err.contains(&format!(
            "the writers' mutex has been held for 10 s by thread {tid}, which no longer exists"
        )),
        "{err}"
    );
    let rest = server.stop();
    assert!(
        rest.iter()
            .any(|l| l.contains("saving the committed records without it"))
            && rest.iter().any(|l| l.contains("saved 1 records to")),
        "{rest:?}"
    );
    let server = Server::start(&sb, &name, &["--load", snap]);
    assert_eq!(ok(&sb, &name, &["get", "k"]), "committed");
    server.stop();
}
