//! A log that cannot be (re)opened or written, and a log that is the daemon's own FIFO: the
//! daemon reports it and goes on, or refuses to start with a clear error.

mod support;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Daemon, WAIT, after_stamp, fifo_demo, lines_of, log, wait_for_line};

/// `mv app.log app.log.1; mkdir app.log; kill -HUP`: the reopen fails. The daemon keeps
/// logging to app.log.1, says so once, and reopens app.log at the next SIGHUP that can.
#[test]
fn a_failed_reopen_keeps_the_old_file_and_is_retried_at_the_next_sighup() {
    let sb = Sandbox::new();
    let mut daemon = Daemon::start(&sb, &["--log", "app.log"]);
    let send = |words: &[&str]| {
        let out = log(&sb, &daemon.fifo, words, b"");
        assert!(out.status.success(), "{}", testkit::stderr(&out));
    };
    send(&["one"]);
    wait_for_line(&daemon.log, |l| l.ends_with(" one"));
    let rotated = sb.join("app.log.1");
    std::fs::rename(&daemon.log, &rotated).unwrap();
    std::fs::create_dir(&daemon.log).unwrap();
    daemon.child.signal(Signal::SIGHUP).unwrap();
    let report = daemon
        .stderr
        .wait_for(|l| l.contains("SIGHUP:"), WAIT)
        .unwrap();
    assert!(
        report.contains("Is a directory")
            && report.ends_with(
                "still logging to the file opened before; will try again at the next SIGHUP"
            ),
        "{report}"
    );
    send(&["two"]);
    wait_for_line(&rotated, |l| l.ends_with(" two"));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon died"
    );

    std::fs::remove_dir(&daemon.log).unwrap();
    daemon.child.signal(Signal::SIGHUP).unwrap();
    daemon
        .stderr
        .wait_for(|l| l.contains("SIGHUP: reopened"), WAIT)
        .unwrap();
    send(&["three"]);
    wait_for_line(&daemon.log, |l| l.ends_with(" three"));
    let old: Vec<String> = lines_of(&rotated)
        .iter()
        .map(|l| after_stamp(l).to_owned())
        .collect();
    assert_eq!(old.len(), 2, "{old:?}");
    assert!(
        old[0].ends_with(" one") && old[1].ends_with(" two"),
        "{old:?}"
    );
    daemon.stop();
}

/// `--log /dev/full`: every write fails with ENOSPC. The daemon says so once, goes on
/// reading (writers are not refused), and at SIGTERM reports what it dropped, exit 1.
#[test]
fn a_full_disk_is_reported_once_and_never_stops_the_daemon_silently() {
    let sb = Sandbox::new();
    let mut daemon = Daemon::start(&sb, &["--log", "/dev/full"]);
    for word in ["one", "two", "three"] {
        let out = log(&sb, &daemon.fifo, &[word], b"");
        assert!(out.status.success(), "{}", testkit::stderr(&out));
    }
    daemon
        .stderr
        .wait_for(
            |l| {
                l.contains(
                    "write /dev/full: No space left on device (os error 28); dropping records",
                )
            },
            WAIT,
        )
        .unwrap();
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon died"
    );
    daemon.child.signal(Signal::SIGTERM).unwrap();
    let status = daemon.child.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(1), "records were lost: exit 1");
    let rest = daemon.stderr.rest(WAIT).unwrap();
    let last = rest.last().expect("a final status line");
    assert!(
        last.contains("logged 0 records, dropped 3 that the log could not take"),
        "{last}"
    );
    let all = [daemon.stderr.seen(), &rest[..]].concat();
    let reports = all
        .iter()
        .filter(|l| l.contains("dropping records"))
        .count();
    assert_eq!(reports, 1, "reported once: {all:?}");
}

/// A file-size limit (`ulimit -f 2`: 1024 bytes) makes writes fail with EFBIG, and the
/// SIGXFSZ that comes with them would kill the daemon without a word. It keeps every whole
/// record that fitted, never half of one, and counts the rest as dropped.
#[test]
fn a_file_size_limit_keeps_whole_records_and_counts_the_rest() {
    let sb = Sandbox::new();
    let mut cmd = sb.command("sh");
    cmd.args([
        "-c",
        "ulimit -f 2 && exec \"$0\" daemon --log app.log",
        support::BIN,
    ]);
    let child = testkit::spawn(&mut cmd);
    let mut stderr = child.stderr_lines().unwrap();
    let mut stdout = child.stdout_lines().unwrap();
    stdout.wait_for(|l| l.starts_with("ready: "), WAIT).unwrap();
    let fifo = sb.runtime_dir().join("log.fifo");
    let input: String = (1..=100)
        .map(|i| format!("record number {i:03}\n"))
        .collect();
    let out = log(&sb, &fifo, &[], input.as_bytes());
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    stderr
        .wait_for(
            |l| l.contains("File too large") && l.contains("dropping records"),
            WAIT,
        )
        .unwrap();
    child.signal(Signal::SIGTERM).unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read(sb.join("app.log")).unwrap();
    assert!(
        text.len() <= 1024 && text.ends_with(b"\n"),
        "{} bytes",
        text.len()
    );
    let kept = lines_of(&sb.join("app.log"));
    for (i, line) in kept.iter().enumerate() {
        assert!(
            after_stamp(line).ends_with(&format!("record number {:03}", i + 1)),
            "{line}"
        );
    }
    let last = stderr.rest(WAIT).unwrap().pop().unwrap();
    let dropped = 100 - kept.len();
    assert!(
        last.contains(&format!(
            "logged {} records, dropped {dropped} that the log could not take",
            kept.len()
        )),
        "{last}"
    );
}

/// `--log` naming the FIFO itself (or its pid file), by the same name, another spelling or
/// a hard link: the daemon would read its own log lines back forever. A clear error instead.
#[test]
fn a_log_that_is_the_fifo_or_the_pid_file_is_refused() {
    let sb = Sandbox::new();
    let fifo = sb.join("app.fifo");
    let refused = |log: &str, what: &std::path::Path| {
        let out = testkit::run(
            fifo_demo(&sb)
                .args(["daemon", "--fifo"])
                .arg(&fifo)
                .args(["--log", log]),
            b"",
        );
        assert_eq!(out.status.code(), Some(1), "--log {log}");
        assert_eq!(
            testkit::stderr(&out).lines().last().unwrap_or(""),
            format!(
                "fifo-demo: --log {log}: is {} itself (the same file); choose another log file",
                what.display()
            )
        );
        assert!(!fifo.exists(), "--log {log}: the FIFO was removed again");
    };
    refused(fifo.to_str().unwrap(), &fifo);
    std::fs::create_dir(sb.join("sub")).unwrap();
    refused("sub/../app.fifo", &fifo);
    refused("app.fifo.pid", &sb.join("app.fifo.pid"));

    // A hard link to a stale FIFO that the daemon reuses.
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    std::fs::hard_link(&fifo, sb.join("link")).unwrap();
    let out = testkit::run(
        fifo_demo(&sb)
            .args(["daemon", "--fifo"])
            .arg(&fifo)
            .args(["--log", "link"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).ends_with(&format!(
            "fifo-demo: --log link: is {} itself (the same file); choose another log file\n",
            fifo.display()
        )),
        "{}",
        testkit::stderr(&out)
    );
}
