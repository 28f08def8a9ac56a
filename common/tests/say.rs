//! `say!` waits for a slow reader, but never past a stop signal: with stdout on a pipe that
//! nobody reads, a process whose `say!` waits for room still hears SIGTERM, and ends with
//! `Error::Interrupted`, which `finish` makes exit status 143.
//!
//! This file is its own child: run with `child`, it installs a `Shutdown` and says lines
//! until an error stops it; otherwise it runs the test, which starts it again with stdout on
//! a pipe whose read end the test holds and never reads.

use std::os::fd::OwnedFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::child::{Options, Supervised};
use common::testkit;
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(60);

/// The child: lines until an error (the test's SIGTERM, while a line waits for room).
fn child() -> ExitCode {
    let outcome = (|| -> common::Result<ExitCode> {
        let _shutdown = common::cleanup::Shutdown::install()?;
        let line = "x".repeat(99);
        loop {
            common::say!("{line}")?;
        }
    })();
    common::error::finish("say-child", outcome)
}

fn a_stop_signal_ends_a_say_that_waits_for_room() {
    let (unread, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.arg("child")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped());
    let opts = Options {
        deadline: Some(WAIT),
        own_group: true,
    };
    let child = Supervised::spawn("say child", &mut cmd, opts).expect("spawn");
    drop(cmd); // Our copy of the write end: the pipe's only writer is now the child.
    // The pipe fills, and the child's next line waits for room: in poll with no timeout (as
    // it should), or asleep in write(2) (as `println!` would).
    let give_up = Instant::now() + WAIT;
    let waits = |pid| {
        testkit::in_poll(pid) == Some(false)
            || testkit::syscall(pid).is_some_and(|(n, _)| n == libc::SYS_write)
    };
    while !waits(child.pid()) {
        assert!(Instant::now() < give_up, "the child never waited for room");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.signal(Signal::SIGTERM).expect("SIGTERM");
    // Without the wait on the shutdown's self-pipe the child sleeps in write(2), SIGTERM only
    // sets its flag (SA_RESTART restarts the write), and this wait ends at the deadline.
    let status = child
        .wait_timeout(WAIT)
        .expect("the child exits on SIGTERM");
    let said = child
        .stderr_lines()
        .expect("piped")
        .rest(WAIT)
        .expect("stderr");
    assert_eq!(status.code(), Some(143), "{status:?}: {said:?}");
    assert_eq!(said, ["say-child: interrupted by SIGTERM"]);
    drop(unread);
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("child") {
        return child();
    }
    testkit::run_tests(&[(
        "a_stop_signal_ends_a_say_that_waits_for_room",
        a_stop_signal_ends_a_say_that_waits_for_room,
    )])
}
