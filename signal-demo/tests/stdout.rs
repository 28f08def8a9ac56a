//! The daemon's stdout never holds it up: with stdout on a pipe or a socket that nobody
//! reads (a frozen `less`, a stalled log shipper, journald's socket), SIGTERM still stops it
//! and its pid file is removed; lines that find no room are dropped, counted and reported
//! once the reader catches up.
//!
//! Each test fills the pipe or socket buffer *before* the daemon starts, from a second,
//! non-blocking open file description of its own, so the daemon's very first line finds
//! no room: the stall is certain, not hoped for.

mod support;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::child::{Lines, Options, Supervised};
use common::testkit::{self, Sandbox};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, send, setsockopt, socketpair, sockopt,
};
use nix::unistd::Pid;
use support::{BIN, WAIT, count_in};

/// A pipe whose buffer is full: (read end, write end for the daemon's stdout).
fn full_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = testkit::small_pipe();
    // Empty lines, until not one more fits.
    testkit::fill_pipe(&w, b'\n');
    (r, w)
}

/// A Unix stream socket pair whose sending side is full: (reader, daemon's stdout).
fn full_socket() -> (OwnedFd, OwnedFd) {
    let (reader, writer) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    setsockopt(&writer, sockopt::SndBuf, &4096).unwrap();
    loop {
        // MSG_DONTWAIT: non-blocking for this call only, the socket stays blocking for the
        // daemon.
        match send(writer.as_raw_fd(), b"\n", MsgFlags::MSG_DONTWAIT) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("fill the socket: {e}"),
        }
    }
    (reader, writer)
}

/// Start the daemon in `sb` with `stdout` as its stdout, and return once it holds its pid
/// file (by then its signals are blocked and read from its signalfd).
fn start_daemon(sb: &Sandbox, config: &str, stdout: OwnedFd) -> Supervised {
    std::fs::write(sb.join("cfg.toml"), config).unwrap();
    let mut cmd: Command = sb.command(BIN);
    cmd.args(["daemon", "--config", "cfg.toml", "--pid-file", "d.pid"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::piped());
    let opts = Options {
        deadline: Some(common::testkit::DEADLINE),
        own_group: true,
    };
    let child = Supervised::spawn("daemon", &mut cmd, opts).unwrap();
    // The daemon cannot tell us it started (its stdout is full), so wait for the file.
    let pid_file = sb.join("d.pid");
    let end = Instant::now() + WAIT;
    while common::pidfile::read(&pid_file).ok() != Some(child.pid()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the daemon exited: {:?}",
            child.stderr_lines().map(|mut l| l.rest(WAIT))
        );
        assert!(Instant::now() < end, "no pid file from the daemon");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child
}

/// SIGTERM, then: exit 0 within the deadline (the daemon waits at most a second for the
/// reader at exit), pid file gone.
fn assert_stops_on_sigterm(sb: &Sandbox, child: &Supervised) {
    child.signal(Signal::SIGTERM).unwrap();
    let status = child.wait_timeout(WAIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(!sb.join("d.pid").exists(), "pid file left behind");
}

#[test]
fn sigterm_stops_a_daemon_whose_stdout_pipe_is_full() {
    let sb = Sandbox::new();
    let (_reader, w) = full_pipe();
    let child = start_daemon(&sb, "message = \"hi\"\ninterval_ms = 10\n", w);
    assert_stops_on_sigterm(&sb, &child);
}

#[test]
fn sigterm_stops_a_daemon_whose_stdout_socket_is_full() {
    let sb = Sandbox::new();
    let (_reader, w) = full_socket();
    let child = start_daemon(&sb, "message = \"hi\"\ninterval_ms = 10\n", w);
    assert_stops_on_sigterm(&sb, &child);
}

/// Wait until the daemon `pid` has read every signal sent to it and acted on them all: no
/// signal pending (`ShdPnd` in /proc/PID/status), *then* asleep in `poll` again
/// (/proc/PID/syscall), which it calls only after a whole batch is handled.
fn wait_batch_handled(pid: Pid) {
    let end = Instant::now() + WAIT;
    let mut read_all = false;
    loop {
        if !read_all {
            read_all = support::pending(pid) == 0;
        } else if common::testkit::in_poll(pid).is_some() {
            return;
        }
        assert!(
            Instant::now() < end,
            "daemon {pid} still busy with its signals"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Lines that find no room are dropped whole and counted, the loop goes on (every signal is
/// still counted), and once the reader reads, one line says how many were lost, right where
/// they were lost.
#[test]
fn lines_that_find_no_room_are_dropped_counted_and_reported() {
    let sb = Sandbox::new();
    let (r, w) = full_pipe();
    // No ticks during the test: only the realtime lines below are written.
    let child = start_daemon(&sb, "message = \"hi\"\ninterval_ms = 3600000\n", w);
    let send = support::run_in(
        &sb,
        &[
            "send",
            "RTMIN",
            "--pid-file",
            "d.pid",
            "--value",
            "1",
            "--count",
            "2000",
        ],
    );
    assert!(send.status.success(), "{send:?}");
    wait_batch_handled(child.pid());
    // Now read: the filler, the waiting lines, then the note.
    let mut lines = Lines::new(File::from(r));
    let note = lines
        .wait_for(|l| l.starts_with('('), WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let dropped: u64 = note
        .strip_prefix('(')
        .and_then(|n| n.strip_suffix(" lines dropped: stdout was not being read)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a note: {note:?}"));
    let values: Vec<u64> = lines
        .seen()
        .iter()
        .filter_map(|l| l.strip_prefix("rt signal value="))
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        lines.seen().iter().any(|l| l.starts_with("ready: pid ")),
        "the first line waited and was written"
    );
    // What waited is the first lines, whole and in order; the rest was dropped.
    assert_eq!(values, (1..=values.len() as u64).collect::<Vec<_>>());
    assert!(dropped > 0, "{note}");
    assert_eq!(values.len() as u64 + dropped, 2000, "{note}");
    // Every signal was counted, printed or not.
    nix::sys::signal::kill(child.pid(), Signal::SIGUSR1).unwrap();
    let status = lines
        .wait_for(|l| l.starts_with("status: "), WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count_in(&status, "RTMIN"), 2000);
    assert_stops_on_sigterm(&sb, &child);
}
