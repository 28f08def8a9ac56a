//! The daemon lifecycle every daemon shares (common::lifecycle): the readiness line, a
//! service manager's NOTIFY_SOCKET, and a stop when its own output goes away.

mod support;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Daemon, WAIT, fifo_demo, log, pid_file};

/// Receive one datagram from the daemon, as text.
fn receive(manager: &UnixDatagram) -> String {
    let mut buf = [0; 4096];
    let n = manager
        .recv(&mut buf)
        .expect("a notification before the deadline");
    String::from_utf8(buf[..n].to_vec()).expect("notifications are text")
}

/// The test plays systemd for a `Type=notify` service: it binds the datagram socket, hands its
/// path over in NOTIFY_SOCKET, and checks what arrives and when.
#[test]
fn a_service_manager_hears_ready_once_the_fifo_is_usable_and_stopping_on_sigterm() {
    let sb = Sandbox::new();
    let socket = sb.join("notify.sock");
    let manager = UnixDatagram::bind(&socket).unwrap();
    manager.set_read_timeout(Some(WAIT)).unwrap();
    let fifo = sb.join("app.fifo");
    let mut cmd = fifo_demo(&sb);
    cmd.args(["daemon", "--log", "app.log", "--fifo"])
        .arg(&fifo)
        .env("NOTIFY_SOCKET", &socket);
    let child = testkit::spawn(&mut cmd);

    let ready = receive(&manager);
    // At the moment READY=1 arrives, the FIFO is there and read: a writer succeeds at once.
    let kind = std::fs::symlink_metadata(&fifo).map(|m| m.file_type().is_fifo());
    assert!(
        matches!(kind, Ok(true)),
        "READY=1 came before the FIFO: {kind:?}"
    );
    let out = log(&sb, &fifo, &["hello"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let pid = child.pid();
    assert_eq!(
        ready.lines().collect::<Vec<_>>(),
        [
            "READY=1".to_owned(),
            format!("MAINPID={pid}"),
            format!("STATUS=fifo {}", fifo.display())
        ]
    );
    // The same readiness on stdout, for scripts.
    let mut stdout = child.stdout_lines().unwrap();
    let line = stdout.wait_for(|l| l.starts_with("ready: "), WAIT).unwrap();
    assert_eq!(line, format!("ready: pid {pid} fifo {}", fifo.display()));

    child.signal(Signal::SIGTERM).unwrap();
    assert_eq!(receive(&manager), "STOPPING=1\n");
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
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
    assert_eq!(out.status.code(), Some(1));
    let stderr = testkit::stderr(&out);
    assert!(
        stderr.contains(&format!(
            "fifo-demo: NOTIFY_SOCKET={}: sd_notify: No such file or directory",
            socket.display()
        )),
        "{stderr}"
    );
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
