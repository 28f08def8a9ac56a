//! The daemon lifecycle every daemon of the workspace shares (`common::lifecycle`): the
//! `ready:` line on stdout once everything is usable, and a service manager's NOTIFY_SOCKET
//! (READY=1 at that same moment, STOPPING=1 when a stop begins).

mod support;

use std::process::Command;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{BIN, WAIT};

/// `signal-demo daemon --config cfg.toml EXTRA...` in `sb`, with a config that does not tick
/// during the test.
fn daemon(sb: &Sandbox, extra: &[&str]) -> Command {
    std::fs::write(
        sb.join("cfg.toml"),
        "message = \"hi\"\ninterval_ms = 3600000\n",
    )
    .unwrap();
    let mut cmd = sb.command(BIN);
    cmd.args(["daemon", "--config", "cfg.toml"]).args(extra);
    cmd
}

/// The test plays systemd for a `Type=notify` service: it binds the datagram socket, hands its
/// path over in NOTIFY_SOCKET, and checks what arrives and when.
#[test]
fn a_service_manager_hears_ready_once_signals_are_read_and_stopping_on_sigterm() {
    let sb = Sandbox::new();
    let manager = testkit::ServiceManager::bind(&sb);
    let socket = manager.path();
    let mut cmd = daemon(&sb, &["--pid-file", "d.pid"]);
    cmd.env("NOTIFY_SOCKET", socket);
    let child = testkit::spawn(&mut cmd);
    let pid = child.pid();

    manager.expect_ready(pid, "pid-file d.pid");
    // At the moment READY=1 arrives, the pid file names the daemon, and a signal sent now is
    // read from its signalfd (not acted on by default: USR1 would kill an unready process).
    assert_eq!(common::pidfile::read(&sb.join("d.pid")).unwrap(), pid);
    child.signal(Signal::SIGUSR1).unwrap();
    let mut out = child.stdout_lines().unwrap();
    assert_eq!(
        out.wait_for(|l| !l.is_empty(), WAIT).unwrap(),
        format!("ready: pid {pid} pid-file d.pid")
    );
    out.wait_for(|l| l.starts_with("status: "), WAIT).unwrap();

    child.signal(Signal::SIGTERM).unwrap();
    manager.expect_stopping();
    assert_eq!(child.wait_timeout(WAIT).unwrap().code(), Some(0));
    assert!(!sb.join("d.pid").exists());
}

/// Without a pid file, the readiness line names the config, the daemon's only object.
#[test]
fn without_a_pid_file_the_ready_line_names_the_config() {
    let sb = Sandbox::new();
    let child = testkit::spawn(&mut daemon(&sb, &[]));
    let mut out = child.stdout_lines().unwrap();
    assert_eq!(
        out.wait_for(|l| !l.is_empty(), WAIT).unwrap(),
        format!("ready: pid {} config cfg.toml", child.pid())
    );
    child.signal(Signal::SIGTERM).unwrap();
    assert_eq!(child.wait_timeout(WAIT).unwrap().code(), Some(0));
}

/// A NOTIFY_SOCKET nobody listens on: the manager would wait for a READY=1 that never comes,
/// so the daemon says why at once, exits 1, and leaves no pid file.
#[test]
fn an_unreachable_notify_socket_is_an_error_at_start() {
    let sb = Sandbox::new();
    let mut cmd = daemon(&sb, &["--pid-file", "d.pid"]);
    let socket = sb.join("nobody.sock");
    cmd.env("NOTIFY_SOCKET", &socket);
    let out = testkit::run(&mut cmd, b"");
    testkit::expect_unreachable_notify_socket(&out, "signal-demo", &socket);
    assert!(!sb.join("d.pid").exists());
}
