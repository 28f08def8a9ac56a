//! The `log` role: no daemon, over-long messages, stdin mode, a daemon that dies.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use support::{Daemon, WAIT, after_stamp, fifo_demo, lines_of, log, wait_for_line};

#[test]
fn with_no_daemon_it_fails_at_once_with_enxio() {
    let sb = Sandbox::new();
    let fifo = sb.join("nobody.fifo");
    nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    let started = Instant::now();
    // A blocking open would hang here forever; the deadline turns that into a failure.
    let mut cmd = fifo_demo(&sb);
    cmd.arg("log").arg("--fifo").arg(&fifo).arg("hello");
    let out = testkit::run_with_deadline(&mut cmd, b"", Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!("fifo-demo: no log daemon is reading {}\n", fifo.display())
    );
    // Not a speed assertion: just the figure, for whoever reads the test log.
    eprintln!("ENXIO reported after {:?}", started.elapsed());

    // No FIFO at all (a daemon that exited cleanly removed it): the same, with the reason.
    std::fs::remove_file(&fifo).unwrap();
    let out = log(&sb, &fifo, &["hello"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "fifo-demo: no log daemon is reading {} (no FIFO there)\n",
            fifo.display()
        )
    );
}

#[test]
fn an_over_long_message_is_refused_and_nothing_of_it_is_sent() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    // 4083 bytes fit whatever the writer's pid (pid_max has at most 7 digits):
    // "pid=" + 7 digits + " " + 4083 + "\n" = 4096 = PIPE_BUF.
    let fits = "a".repeat(4083);
    let out = log(&sb, &daemon.fifo, &[&fits], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));

    let too_long = "b".repeat(4096);
    let out = log(&sb, &daemon.fifo, &[&too_long], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    assert!(
        err.starts_with("fifo-demo: message is 4096 bytes, but one atomic record holds at most ")
            && err.ends_with("; not sent\n")
            && err.lines().count() == 1,
        "{err}"
    );

    // In stdin mode the long line is reported and skipped; the others still go.
    let input = format!("first\n{too_long}\nthird\n");
    let out = log(&sb, &daemon.fifo, &[], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    assert!(
        err.starts_with("fifo-demo: stdin line 2: message is 4096 bytes"),
        "{err}"
    );
    assert!(
        err.ends_with("fifo-demo: 1 of 3 lines refused as too long; the other 2 were sent\n"),
        "{err}"
    );

    let lines = wait_for_line(&daemon.log, |l| l.ends_with(" third"));
    let msgs: Vec<String> = lines
        .iter()
        .map(|l| after_stamp(l).split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(msgs, [fits.as_str(), "first", "third"]);
    daemon.stop();
}

#[test]
fn words_make_one_record_and_stdin_lines_one_each() {
    // Recipe: `seq 3 | fifo-demo log` — any command's output, one record per line.
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    let out = log(&sb, &daemon.fifo, &["backup", "finished:", "42 files"], b"");
    assert!(out.status.success());
    // A newline inside a message would end the record: each line is a record of its own.
    let out = log(&sb, &daemon.fifo, &["two\nlines"], b"");
    assert!(out.status.success());
    let script = format!(
        "seq 3 | '{}' log --fifo '{}'",
        support::BIN,
        daemon.fifo.display()
    );
    let out = testkit::run(sb.command("sh").arg("-c").arg(script), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let lines = wait_for_line(&daemon.log, |l| l.ends_with(" 3"));
    let msgs: Vec<&str> = lines
        .iter()
        .map(|l| after_stamp(l).split_once(' ').unwrap().1)
        .collect();
    assert_eq!(
        msgs,
        ["backup finished: 42 files", "two", "lines", "1", "2", "3"]
    );
    // Every record carries a real pid, the same for all lines of one writer.
    let pids: Vec<&str> = lines
        .iter()
        .map(|l| after_stamp(l).split_once(' ').unwrap().0)
        .collect();
    assert!(pids.iter().all(|p| p.starts_with("pid=") && *p != "pid=?"));
    assert!(pids[1] == pids[2] && pids[0] != pids[1]);
    assert!(pids[3] == pids[4] && pids[4] == pids[5] && pids[1] != pids[3]);
    daemon.stop();
}

#[test]
fn a_writer_blocked_on_a_full_pipe_reports_a_daemon_that_died() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    // Freeze the daemon so the pipe fills up and the writer has to wait in poll(POLLOUT).
    // 2 MB of records: more than the 1 MiB pipe the daemon asks for.
    nix::sys::signal::kill(daemon.child.pid(), Signal::SIGSTOP).unwrap();
    let input = sb.join("input.txt");
    let text: String = (1..=200_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let mut cmd = fifo_demo(&sb);
    cmd.arg("-v").arg("log").arg("--fifo").arg(&daemon.fifo);
    cmd.stdin(Stdio::from(std::fs::File::open(&input).unwrap()));
    let writer = testkit::spawn(&mut cmd);
    let mut stderr = writer.stderr_lines().unwrap();
    stderr
        .wait_for(|l| l.contains("EAGAIN (pipe full); poll(POLLOUT)"), WAIT)
        .unwrap();
    // Records wait in the pipe and none is torn; now the daemon dies without reading them.
    daemon.child.signal(Signal::SIGKILL).unwrap();
    let status = writer.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(1));
    let line = stderr
        .wait_for(|l| l.starts_with("fifo-demo: "), WAIT)
        .unwrap();
    assert!(
        line.contains("the log daemon stopped reading (broken pipe);")
            && line.contains("records were sent, the rest were not; "),
        "{line}"
    );
    // "Sent" meant "in the pipe": the daemon read none of it, and the writer says so, with the
    // unread bytes it counted after the daemon was gone (ioctl FIONREAD).
    let unread: usize = line
        .split("closed the FIFO with ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no unread count: {line}"));
    assert!(unread > 0, "{line}");
    assert!(
        line.ends_with("bytes unread, so the last of them may not have been logged"),
        "{line}"
    );
    assert!(lines_of(&daemon.log).is_empty());
}

#[test]
fn a_hundred_identical_writes_are_traced_as_one_line_and_a_count() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    let mut cmd = fifo_demo(&sb);
    cmd.arg("-v").arg("log").arg("--fifo").arg(&daemon.fifo);
    let out = testkit::run(&mut cmd, "same\n".repeat(100).as_bytes());
    assert!(out.status.success());
    let stderr = testkit::stderr(&out);
    let writes: Vec<&str> = stderr.lines().filter(|l| l.contains("] write(")).collect();
    assert_eq!(writes.len(), 2, "{stderr}");
    // The count is written when the writer exits, after nothing else: never lost.
    assert_eq!(writes[1], format!("{} \u{d7}99 more", writes[0]));
    assert_eq!(stderr.lines().last(), Some(writes[1]), "{stderr}");
    wait_for_line(&daemon.log, |_| lines_of(&daemon.log).len() == 100);
    daemon.stop();
}

/// A writer has nothing to clean up, so it keeps the default action of SIGINT, SIGTERM and
/// SIGHUP: it dies of the signal (never blocking it in a read of stdin it cannot leave), and
/// the shell reports that as 128 + N, the status an interrupted run has everywhere.
#[test]
fn a_writer_stopped_by_a_signal_dies_of_it() {
    use std::os::unix::process::ExitStatusExt;
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let mut cmd = fifo_demo(&sb);
        cmd.arg("log")
            .arg("--fifo")
            .arg(&daemon.fifo)
            .stdin(Stdio::piped());
        let writer = testkit::spawn(&mut cmd);
        // Kept open: the writer waits for a line that never comes.
        let _stdin = writer.take_stdin();
        writer.signal(sig).unwrap();
        let status = writer.wait_timeout(WAIT).unwrap();
        assert_eq!(status.signal(), Some(sig as i32), "{status:?}");
    }
    daemon.stop();
}
