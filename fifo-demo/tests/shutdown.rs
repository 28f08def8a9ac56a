//! The daemon's shutdown under load: what writers were told was sent is what the log holds.

mod support;

use std::io::Write;
use std::process::Stdio;

use common::child::Supervised;
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Daemon, WAIT, fifo_demo, lines_of, pid_file};

const WRITERS: usize = 16;
const LINES: usize = 4000;

/// Start a `fifo-demo log` writer on `fifo` with its stdin piped.
fn writer(sb: &Sandbox, fifo: &std::path::Path) -> Supervised {
    let mut cmd = fifo_demo(sb);
    cmd.arg("log").arg("--fifo").arg(fifo).stdin(Stdio::piped());
    testkit::spawn(&mut cmd)
}

/// How many records a finished writer says reached the log: all of its lines if it exited 0,
/// else the count in its "N records were sent" error, which must not add that some of them
/// may be lost (it does when the daemon closed the FIFO with bytes unread).
fn reported(w: &Supervised, lines: usize) -> usize {
    let status = w.wait_timeout(WAIT).unwrap();
    if status.success() {
        return lines;
    }
    let err = w.stderr_lines().unwrap().rest(WAIT).unwrap().join("\n");
    assert!(!err.contains("bytes unread"), "{err}");
    err.split("; ")
        .find_map(|part| part.strip_suffix(" records were sent, the rest were not"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("writer {status:?} without a count: {err}"))
}

/// SIGTERM reaches the daemon while 16 writers are mid-stream, five times over. The daemon
/// drains until every writer has finished (they finish well within the drain timeout), so
/// the log holds exactly what the writers counted as sent. Before the fix the final drain
/// stopped at the first empty pipe while writers still held the FIFO: thousands of records
/// were missing, or the writers' counts overstated the log.
#[test]
fn sigterm_under_sixteen_writers_loses_nothing_they_were_told_was_sent() {
    for round in 0..5 {
        let sb = Sandbox::new();
        let daemon = Daemon::start(&sb, &["--log", "app.log", "--drain-timeout", "60"]);
        let writers: Vec<Supervised> = (0..WRITERS).map(|_| writer(&sb, &daemon.fifo)).collect();
        let feeders: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, child)| {
                let mut stdin = child.take_stdin().unwrap();
                std::thread::spawn(move || {
                    let text: String = (1..=LINES).map(|i| format!("w={w} seq={i}\n")).collect();
                    // A writer that already failed has closed its stdin; its status says why.
                    let _ = stdin.write_all(text.as_bytes());
                })
            })
            .collect();
        // Mid-stream: as soon as every writer has a record in the log, so every one of them
        // holds the FIFO open (a writer that opened it only after SIGTERM removed it would
        // fail with "no FIFO there", which is right, but not what this test is about).
        support::wait_until("a record of every writer in the log", || {
            let lines = lines_of(&daemon.log);
            (0..WRITERS).all(|w| {
                let tag = format!(" w={w} seq=");
                lines.iter().any(|l| l.contains(&tag))
            })
        });
        daemon.child.signal(Signal::SIGTERM).unwrap();
        let sent: usize = writers.iter().map(|w| reported(w, LINES)).sum();
        for f in feeders {
            f.join().unwrap();
        }
        let status = daemon.child.wait_timeout(WAIT).unwrap();
        assert!(status.success(), "round {round}: daemon {status:?}");
        let logged = lines_of(&daemon.log).len();
        assert_eq!(logged, sent, "round {round}: records logged vs sent");
        assert_eq!(
            sent,
            WRITERS * LINES,
            "round {round}: every writer finished"
        );
        assert!(!daemon.fifo.exists() && !pid_file(&daemon.fifo).exists());
    }
}

/// A writer that never finishes cannot hold the daemon up past --drain-timeout: the daemon
/// logs what came, closes the FIFO and exits; the writer's next record fails with EPIPE and
/// its count matches the log.
#[test]
fn a_writer_that_never_finishes_is_cut_off_at_the_drain_timeout() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log", "--drain-timeout", "0.2"]);
    let w = writer(&sb, &daemon.fifo);
    let mut stdin = w.take_stdin().unwrap();
    stdin.write_all(b"first\n").unwrap();
    support::wait_for_line(&daemon.log, |l| l.ends_with(" first"));
    daemon.child.signal(Signal::SIGTERM).unwrap();
    let status = daemon.child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "daemon {status:?}");
    let mut stderr = daemon.stderr;
    stderr
        .wait_for(|l| l.contains("writers still held"), WAIT)
        .unwrap();
    // The daemon has exited: the read end is closed, so this record cannot be accepted.
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    assert_eq!(reported(&w, 2), 1);
    assert_eq!(lines_of(&daemon.log).len(), 1);
}

/// A second SIGTERM during the drain exits at once (common::cleanup), like a double Ctrl-C;
/// the FIFO and the pid file are gone all the same. (`fifo-demo demo` meets this when it is
/// stopped twice: its teardown sends the daemon SIGTERM, and its hard exit sends another
/// through PR_SET_PDEATHSIG.) A writer that never finishes keeps the drain going, so the
/// second signal surely arrives during it.
#[test]
fn a_second_sigterm_during_the_drain_leaves_no_pid_file() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log", "--drain-timeout", "60"]);
    let w = writer(&sb, &daemon.fifo);
    let mut stdin = w.take_stdin().unwrap();
    stdin.write_all(b"first\n").unwrap();
    support::wait_for_line(&daemon.log, |l| l.ends_with(" first"));
    daemon.child.signal(Signal::SIGTERM).unwrap();
    // The drain has begun once the FIFO's name is gone.
    support::wait_until("the FIFO to be removed", || !daemon.fifo.exists());
    daemon.child.signal(Signal::SIGTERM).unwrap();
    let status = daemon.child.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(143), "the second signal exits at once");
    assert!(!pid_file(&daemon.fifo).exists(), "pid file left behind");
    drop(stdin);
}
