//! The daemon's shutdown under load: what writers were told was sent is what the log holds.

mod support;

use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use common::child::{Lines, Supervised};
use common::testkit::{self, Sandbox};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
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

/// A daemon logging to stdout (`--log -`), that stdout a one-page pipe the test holds the
/// read end of, full: `fifo-demo daemon --log - | less` with less stopped; and records the
/// daemon has begun to read, which it cannot write.
struct StalledStdout {
    daemon: Supervised,
    stderr: Lines,
    fifo: PathBuf,
    /// The pipe's read end: what reached the daemon's stdout.
    read_end: OwnedFd,
}

/// How a [`StalledStdout`] ended: its status, its stderr, and what its stdout got after the
/// bytes that filled it.
struct Outcome {
    status: std::process::ExitStatus,
    stderr: Vec<String>,
    stdout: Vec<u8>,
}

impl StalledStdout {
    /// Start the daemon, take its ready line from the pipe, fill the pipe, then write
    /// `records` straight into the FIFO as a shell writer would (`pid=?`), in one write that
    /// the FIFO's buffer takes whole, and wait until the daemon has read some of them.
    fn start(sb: &Sandbox, records: usize) -> StalledStdout {
        let fifo = sb.join("app.fifo");
        let (read_end, write_end) = testkit::small_pipe();
        // Ours, to fill the pipe with later; dropped then, so that EOF comes with the daemon's.
        let ours = write_end.try_clone().unwrap();
        let mut cmd = fifo_demo(sb);
        cmd.arg("daemon")
            .arg("--fifo")
            .arg(&fifo)
            .args(["--log", "-"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::piped());
        let options = common::child::Options {
            deadline: Some(testkit::DEADLINE),
            own_group: true,
        };
        let daemon = Supervised::spawn("daemon", &mut cmd, options).unwrap();
        drop(cmd); // The command's copy of the daemon's stdout.
        let stderr = daemon.stderr_lines().unwrap();
        let mut fds = [PollFd::new(read_end.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(WAIT).unwrap();
        assert_eq!(poll(&mut fds, timeout), Ok(1), "no ready line");
        let mut ready = [0u8; 4096];
        let n = nix::unistd::read(&read_end, &mut ready).unwrap();
        let ready = String::from_utf8_lossy(&ready[..n]);
        assert!(
            ready.starts_with("ready: pid ") && ready.ends_with('\n'),
            "{ready}"
        );
        // Nothing more fits now: bytes without a newline, never mistaken for a record.
        testkit::fill_pipe(&ours, b'x');
        drop(ours);

        let input: String = (1..=records).map(|i| format!("record {i}\n")).collect();
        let mut writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo)
            .unwrap();
        writer.write_all(input.as_bytes()).unwrap();
        support::wait_until("the daemon to read records", || {
            unread_bytes(&writer) < input.len()
        });
        StalledStdout {
            daemon,
            stderr,
            fifo,
            read_end,
        }
    }

    /// SIGTERM; wait for the daemon to exit, then read what its stdout got, to the end.
    fn stop(mut self) -> Outcome {
        self.daemon.signal(Signal::SIGTERM).unwrap();
        let status = self.daemon.wait_timeout(WAIT).unwrap();
        let stderr = self.stderr.rest(WAIT).unwrap();
        let mut stdout = Vec::new();
        std::fs::File::from(self.read_end)
            .read_to_end(&mut stdout)
            .unwrap();
        Outcome {
            status,
            stderr,
            stdout,
        }
    }
}

/// `fifo-demo daemon --log - | less`, with less stopped: the daemon's stdout is full and
/// nobody reads it. SIGTERM must still stop the daemon (a write(2) asleep on that pipe is
/// restarted after the signal's handler, SA_RESTART, and never returns), and the daemon must
/// say how many records it could not write.
#[test]
fn sigterm_stops_a_daemon_whose_stdout_log_nobody_reads_and_it_counts_what_it_could_not_write() {
    const RECORDS: usize = 1000;
    let sb = Sandbox::new();
    let stalled = StalledStdout::start(&sb, RECORDS);
    let fifo = stalled.fifo.clone();
    let ended = stalled.stop();
    let said = &ended.stderr;
    assert_eq!(
        ended.status.code(),
        Some(1),
        "records were lost: exit 1; {said:?}"
    );
    assert_eq!(
        said.last().map(String::as_str),
        Some(
            format!(
                "fifo-demo daemon: SIGTERM: logged 0 records, could not write {RECORDS} to \
                 stdout (nothing read it); removed {} and {}",
                fifo.display(),
                pid_file(&fifo).display()
            )
            .as_str()
        ),
        "{said:?}"
    );
    assert!(
        !ended.stdout.contains(&b'\n'),
        "a record reached the full pipe"
    );
    assert!(!fifo.exists() && !pid_file(&fifo).exists());
}

/// The other side of the same wait: a stdout reader that pauses, then reads on, loses
/// nothing. Until a stop comes the daemon waits for it as long as it takes (the FIFO fills,
/// and its writers wait in turn), never dropping a record.
#[test]
fn a_stdout_reader_that_pauses_loses_no_record() {
    const RECORDS: usize = 1000;
    let sb = Sandbox::new();
    let stalled = StalledStdout::start(&sb, RECORDS);
    // Read on: the filler's bytes, then every record, each as a line of its own.
    let read_end = stalled.read_end.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(std::fs::File::from(read_end));
    let mut line = String::new();
    for i in 1..=RECORDS {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_start_matches('x');
        assert!(
            line.ends_with(&format!(" pid=? record {i}\n")),
            "{i}: {line:?}"
        );
    }
    drop(reader);
    let ended = stalled.stop();
    assert_eq!(
        ended.status.code(),
        Some(0),
        "a daemon asked to stop: {:?}",
        ended.stderr
    );
    let logged = format!(": logged {RECORDS} records; removed ");
    assert!(
        ended.stderr.last().is_some_and(|l| l.contains(&logged)),
        "{:?}",
        ended.stderr
    );
    assert!(ended.stdout.is_empty(), "{:?}", ended.stdout);
}

/// Bytes in a pipe or FIFO not yet read (`ioctl(FIONREAD)`).
fn unread_bytes(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to `n`, alive and
    // writable for the whole call; the descriptor is open.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "ioctl(FIONREAD)");
    usize::try_from(n).unwrap()
}
