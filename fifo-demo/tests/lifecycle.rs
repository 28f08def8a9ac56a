//! The daemon lifecycle every daemon shares (common::lifecycle): the readiness line, a
//! service manager's NOTIFY_SOCKET, and a stop when its own output goes away.

mod support;

use std::os::unix::fs::FileTypeExt;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Daemon, WAIT, fifo_demo, log, pid_file};

/// The test plays systemd for a `Type=notify` service: it binds the datagram socket, hands its
/// path over in NOTIFY_SOCKET, and checks what arrives and when.
#[test]
fn a_service_manager_hears_ready_once_the_fifo_is_usable_and_stopping_on_sigterm() {
    let sb = Sandbox::new();
    let manager = testkit::ServiceManager::bind(&sb);
    let socket = manager.path();
    let fifo = sb.join("app.fifo");
    let mut cmd = fifo_demo(&sb);
    cmd.args(["daemon", "--log", "app.log", "--fifo"])
        .arg(&fifo)
        .env("NOTIFY_SOCKET", socket);
    let child = testkit::spawn(&mut cmd);

    let pid = child.pid();
    let what = format!("fifo {}", fifo.display());
    manager.expect_ready(pid, &what);
    // At the moment READY=1 arrives, the FIFO is there and read: a writer succeeds at once.
    let kind = std::fs::symlink_metadata(&fifo).map(|m| m.file_type().is_fifo());
    assert!(
        matches!(kind, Ok(true)),
        "READY=1 came before the FIFO: {kind:?}"
    );
    let out = log(&sb, &fifo, &["hello"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    // The same readiness on stdout, for scripts.
    testkit::expect_ready_line(&mut child.stdout_lines().unwrap(), pid, &what);

    child.signal(Signal::SIGTERM).unwrap();
    manager.expect_stopping();
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    // Exactly one STOPPING=1: with the daemon gone, anything it sent is already queued.
    manager.expect_no_more();
    assert!(!fifo.exists() && !pid_file(&fifo).exists());
}

#[test]
fn an_unreachable_notify_socket_is_a_clear_error_and_nothing_is_left() {
    let sb = Sandbox::new();
    let socket = sb.join("nobody-listens.sock");
    let out = testkit::run(
        fifo_demo(&sb)
            .args(["daemon", "--log", "app.log"])
            .env("NOTIFY_SOCKET", &socket),
        b"",
    );
    testkit::expect_unreachable_notify_socket(&out, "fifo-demo", &socket);
    let fifo = sb.runtime_dir().join("log.fifo");
    assert!(!fifo.exists() && !pid_file(&fifo).exists());
}

#[test]
fn without_notify_socket_the_ready_line_names_pid_and_fifo() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    assert_eq!(daemon.fifo, sb.runtime_dir().join("log.fifo"));
    daemon.stop();
}

/// `bash -o pipefail -c SCRIPT` in the sandbox, with this crate's binary first on PATH.
fn bash(sb: &Sandbox, script: &str) -> common::child::Supervised {
    let mut cmd = sb.command("bash");
    cmd.args(["-o", "pipefail", "-c", script]);
    testkit::spawn(support::with_bin_on_path(&mut cmd))
}

#[test]
fn log_to_stdout_into_head_stops_cleanly_as_soon_as_head_is_done() {
    // `fifo-demo daemon --log - | head -1`: head takes the ready line and leaves. The daemon
    // notices at once (no record has to come first), removes FIFO and pid file, exits 0.
    let sb = Sandbox::new();
    let fifo = sb.join("app.fifo");
    let pipeline = bash(
        &sb,
        &format!(
            "fifo-demo daemon --fifo '{}' --log - | head -1",
            fifo.display()
        ),
    );
    let status = pipeline.wait_timeout(WAIT).unwrap();
    let stderr = pipeline.stderr_lines().unwrap().rest(WAIT).unwrap();
    assert!(status.success(), "{status:?}: {stderr:?}");
    let stdout = pipeline.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    assert!(stdout[0].starts_with("ready: pid "), "{stdout:?}");
    assert!(
        stderr
            .last()
            .is_some_and(|l| l.contains("stdout has no reader any more: stopped; removed")),
        "{stderr:?}"
    );
    assert!(!fifo.exists() && !pid_file(&fifo).exists());
}

#[test]
fn once_its_output_is_gone_the_daemon_accepts_no_record_it_would_drop() {
    // head -2 takes the ready line and one record, then leaves. A record sent after that is
    // refused (no daemon), never accepted and silently dropped.
    let sb = Sandbox::new();
    let fifo = sb.join("app.fifo");
    let pipeline = bash(
        &sb,
        &format!(
            "fifo-demo daemon --fifo '{}' --log - | head -2",
            fifo.display()
        ),
    );
    let mut stderr = pipeline.stderr_lines().unwrap();
    stderr
        .wait_for(|l| l.contains("daemon: reads "), WAIT)
        .unwrap();
    let out = log(&sb, &fifo, &["first"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let status = pipeline.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}: {:?}", stderr.seen());
    let stdout = pipeline.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert_eq!(stdout.len(), 2, "{stdout:?}");
    assert!(stdout[1].ends_with(" first"), "{stdout:?}");
    let out = log(&sb, &fifo, &["second"], b"");
    assert_eq!(out.status.code(), Some(1), "the second record was accepted");
    assert!(
        testkit::stderr(&out).contains("no log daemon is reading"),
        "{}",
        testkit::stderr(&out)
    );
    assert!(!fifo.exists() && !pid_file(&fifo).exists());
}
