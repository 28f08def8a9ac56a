//! The daemon lifecycle the servers share with every daemon of the workspace
//! (common::lifecycle): the readiness line, a service manager's NOTIFY_SOCKET, `--pid-file`,
//! `path`, and a demo killed with SIGKILL leaving nothing behind.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::Instant;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use support::{BIN, Server, WAIT, call, connect, daemon, run};

/// The test plays systemd for a `Type=notify` service: it binds the datagram socket, hands its
/// path over in NOTIFY_SOCKET, and checks what arrives and when.
#[test]
fn a_service_manager_hears_ready_once_the_server_accepts_and_stopping_on_sigterm() {
    let sb = Sandbox::new();
    let manager = testkit::ServiceManager::bind(&sb);
    let sock = sb.join("kv.sock");
    let mut cmd = sb.command(BIN);
    cmd.args(["server", "--unix"])
        .arg(&sock)
        .env("NOTIFY_SOCKET", manager.path());
    let child = testkit::spawn(&mut cmd);

    let pid = child.pid();
    let what = format!("socket {}", sock.display());
    manager.expect_ready(pid, &what);
    // At the moment READY=1 arrives, a client is served.
    assert_eq!(call(&mut connect(&sock), &["PING"]), "+PONG\r\n");
    // The same readiness on stdout, for scripts.
    testkit::expect_ready_line(&mut child.stdout_lines().unwrap(), pid, &what);

    child.signal(Signal::SIGTERM).unwrap();
    manager.expect_stopping();
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        common::testkit::files_in(sb.path()),
        ["notify.sock"],
        "socket or pid file left"
    );
}

#[test]
fn the_dgram_server_tells_a_service_manager_too() {
    let sb = Sandbox::new();
    let manager = testkit::ServiceManager::bind(&sb);
    let sock = sb.join("kv-dgram.sock");
    let mut cmd = sb.command(BIN);
    cmd.args(["dgram-server", "--path"])
        .arg(&sock)
        .env("NOTIFY_SOCKET", manager.path());
    let child = testkit::spawn(&mut cmd);
    let ready = manager.receive();
    // Bound when READY=1 arrives: a datagram sent now is queued for the server.
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"PING", &sock)
        .unwrap();
    let pid = child.pid();
    assert_eq!(
        ready,
        format!("READY=1\nMAINPID={pid}\nSTATUS=socket {}\n", sock.display())
    );
    child.signal(Signal::SIGTERM).unwrap();
    assert_eq!(manager.receive(), "STOPPING=1\n");
    assert!(child.wait_timeout(WAIT).unwrap().success());
    assert_eq!(
        common::testkit::files_in(sb.path()),
        ["notify.sock"],
        "socket or pid file left"
    );
}

#[test]
fn an_unreachable_notify_socket_is_a_clear_error_and_nothing_is_left() {
    let sb = Sandbox::new();
    let socket = sb.join("nobody-listens.sock");
    let out = testkit::run(
        sb.command(BIN)
            .args(["server", "--unix"])
            .arg(sb.join("kv.sock"))
            .env("NOTIFY_SOCKET", &socket),
        b"",
    );
    testkit::expect_unreachable_notify_socket(&out, "socket-demo", &socket);
    assert!(
        common::testkit::files_in(sb.path()).is_empty(),
        "{:?}",
        common::testkit::files_in(sb.path())
    );
}

#[test]
fn pid_file_names_the_lock_and_holds_the_pid() {
    let sb = Sandbox::new();
    let pid_file = sb.join("my-server.pid");
    let pid_arg = pid_file.display().to_string();
    let server = Server::start(&sb, &["--pid-file", &pid_arg]);
    let held = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(held.trim(), server.child.pid().to_string());
    assert!(
        !sb.join("kv.sock.pid").exists(),
        "the default lock was taken too"
    );
    // The named pid file is the lock: a second server on the same socket is refused.
    let sock = server.sock.display().to_string();
    let out = run(
        &sb,
        &["server", "--unix", &sock, "--pid-file", &pid_arg],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", testkit::stderr(&out));
    server.child.signal(Signal::SIGTERM).unwrap();
    assert!(server.child.wait_timeout(WAIT).unwrap().success());
    assert!(
        common::testkit::files_in(sb.path()).is_empty(),
        "{:?}",
        common::testkit::files_in(sb.path())
    );
}

#[test]
fn a_tcp_only_server_keeps_a_pid_file_when_asked() {
    let sb = Sandbox::new();
    let pid_file = sb.join("tcp.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let server = daemon(
        &sb,
        &["server", "--tcp", "127.0.0.1:0", "--pid-file", pid_arg],
    );
    assert!(
        server.serves("tcp").starts_with("127.0.0.1:"),
        "{}",
        server.ready
    );
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        server.pid().to_string()
    );
    server.stop();
    assert!(!pid_file.exists());
}

#[test]
fn path_prints_where_the_objects_live() {
    let sb = Sandbox::new();
    let dir = sb.runtime_dir();
    let out = run(&sb, &["path"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let d = dir.display();
    assert_eq!(
        testkit::stdout(&out),
        format!(
            "socket {d}/kv.sock\npid-file {d}/kv.sock.pid\ndgram-socket {d}/kv-dgram.sock\n\
             dgram-pid-file {d}/kv-dgram.sock.pid\ndir {d}\n"
        )
    );
    let out = run(&sb, &["path", "socket"], b"");
    assert_eq!(testkit::stdout(&out), format!("{d}/kv.sock\n"));
    let out = run(
        &sb,
        &["path", "dgram-pid-file", "--dgram", "/tmp/x.sock"],
        b"",
    );
    assert_eq!(testkit::stdout(&out), "/tmp/x.sock.pid\n");
}

/// The recipe in `path --help`, verbatim: a client reaches the server at
/// `"$(socket-demo path socket)"`, and `kill "$(cat "$(socket-demo path pid-file)")"` stops it.
#[test]
fn the_path_recipes_reach_and_stop_the_server() {
    let sb = Sandbox::new();
    // The server creates the runtime dir; `path` then names what is in it.
    let server = daemon(&sb, &["server"]);
    let script = format!(
        "{BIN} client --raw PING; b={BIN}; sock=\"$($b path socket)\"; \
         {BIN} client --unix \"$sock\" --raw ECHO hi; kill \"$(cat \"$($b path pid-file)\")\""
    );
    let out = testkit::run(sb.command("sh").args(["-c", &script]), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    assert_eq!(testkit::stdout(&out), "PONG\nhi\n");
    // Stopped by the recipe's kill: exit 0, as a server asked to stop.
    assert_eq!(server.wait().status.code(), Some(0));
    assert!(common::testkit::files_in(&sb.runtime_dir()).is_empty());
}

/// A demo that dies without unwinding (SIGKILL) cannot stop its children; the kernel does
/// (PR_SET_PDEATHSIG): the server gets SIGTERM, exits, and removes its socket file.
#[test]
fn a_demo_killed_with_sigkill_leaves_no_server_or_socket_file() {
    let sb = Sandbox::new();
    let mut cmd = sb.command(BIN);
    cmd.arg("demo");
    let demo = testkit::spawn(&mut cmd);
    let mut out = demo.stdout_lines().unwrap();
    // `   server pid N, socket mode 0600, TCP ADDR`: the server is up and serving.
    let line = out
        .wait_for(|l| l.starts_with("   server pid "), WAIT)
        .unwrap();
    let pid: i32 = line["   server pid ".len()..]
        .split(',')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let server = Pid::from_raw(pid);
    demo.signal(Signal::SIGKILL).unwrap();
    demo.wait_timeout(WAIT).unwrap();
    // The server is not our child: watch /proc until it has gone (no event to wait for).
    let give_up = Instant::now() + WAIT;
    while !testkit::not_running(server) {
        if Instant::now() > give_up {
            // Not ours to reap, and nobody else will stop it: do it before failing.
            let _ = nix::sys::signal::kill(server, Signal::SIGKILL);
            panic!("server {pid} still running after the demo was killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let left: Vec<String> = common::testkit::files_in(&sb.runtime_dir())
        .into_iter()
        .filter(|n| n.ends_with(".sock") || n.ends_with(".pid"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `server -v` narrates the whole life of a connection: socket, epoll_create1, epoll_ctl,
/// accept4, read and send with their payload escaped, close.
#[test]
fn server_trace_shows_every_call_and_escaped_payloads() {
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let server = daemon(&sb, &["server", "-v", "--unix", sock.to_str().unwrap()]);
    let mut s = connect(&sock);
    assert_eq!(call(&mut s, &["ECHO", "a\x1b[2Jb"]), "$6\r\na\x1b[2Jb\r\n");
    drop(s);
    let text = server.stop().stderr.join("\n");
    for want in [
        "] socket(AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC) -> fd ",
        "] epoll_create1(EPOLL_CLOEXEC) -> fd ",
        ", EPOLLIN) (listener)",
        "] accept4() -> fd ",
        "\"*2\\x0d\\x0a$4\\x0d\\x0aECHO\\x0d\\x0a$6\\x0d\\x0aa\\x1b[2Jb\\x0d\\x0a\"",
        "] send(fd ",
        "] epoll_ctl(DEL, fd ",
        "] close(fd ",
        ") (listener)",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    assert!(
        !text.contains('\x1b'),
        "a raw escape reached the trace:\n{text}"
    );
}
