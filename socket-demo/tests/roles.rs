//! The other roles and the default scenario, run as a user would run them.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;

use common::child::Lines;
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::*;

#[test]
fn demo_plays_the_scenario_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let out = run(&sb, &[], b"");
    let stdout = testkit::stdout(&out);
    assert!(out.status.success(), "{stdout}\n{}", testkit::stderr(&out));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ok: 8 clients x 250 rounds, 8000 replies right, shared counter 2000"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok:")).count(), 1);
    assert!(stdout.contains("SCM_CREDENTIALS says pid="), "{stdout}");
    assert!(
        common::testkit::files_in(&sb.runtime_dir()).is_empty(),
        "{:?}",
        common::testkit::files_in(&sb.runtime_dir())
    );
}

#[test]
fn demo_with_trace_narrates_every_process_and_still_checks_out() {
    // With -v every child traces its calls on stderr: a stream the demo must not pipe
    // without reading, or the server blocks on it mid-scenario.
    let sb = Sandbox::new();
    let out = run(&sb, &["-v"], b"");
    let stdout = testkit::stdout(&out);
    let stderr = testkit::stderr(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("ok: 8 clients x 250 rounds"), "{stdout}");
    for (role, call) in [
        ("server", "] accept4() -> fd "),
        ("worker", "] connect("),
        ("dgram-server", "] recvmsg("),
        ("receiver", "] recvmsg("),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("[pid ") && l.contains(&format!(" {role}{call}"))),
            "no {role} line with {call:?} in the trace"
        );
    }
    assert!(
        common::testkit::files_in(&sb.runtime_dir()).is_empty(),
        "{:?}",
        common::testkit::files_in(&sb.runtime_dir())
    );
}

#[test]
fn client_without_a_server_says_so_in_one_line() {
    let sb = Sandbox::new();
    let out = run(&sb, &["client", "PING"], b"");
    assert_eq!(out.status.code(), Some(1));
    let want = format!(
        "socket-demo: connect {}: No such file or directory\n",
        sb.runtime_dir().join("kv.sock").display()
    );
    assert_eq!(testkit::stderr(&out), want);
    let out = run(&sb, &["client", "--tcp", "127.0.0.1:1", "PING"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        "socket-demo: connect 127.0.0.1:1: Connection refused\n"
    );
    let out = run(&sb, &["dgram-client", "PING"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("no datagram server at"),
        "{}",
        testkit::stderr(&out)
    );
    // Its own bound socket is removed even on that error path.
    assert!(common::testkit::files_in(&sb.runtime_dir()).is_empty());
}

#[test]
fn default_socket_path_in_the_runtime_dir() {
    let sb = Sandbox::new();
    let server = daemon(&sb, &["server"]);
    let sock = sb.runtime_dir().join("kv.sock");
    assert_eq!(server.serves("socket"), sock.display().to_string());
    let dir_mode = std::fs::metadata(sb.runtime_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let out = run(&sb, &["client", "SET", "k", "v"], b"");
    assert_eq!(testkit::stdout(&out), "OK\n");
    server.stop_with(Signal::SIGINT);
    assert!(!sock.exists());
}

#[test]
fn datagram_round_trip_and_cleanup() {
    let sb = Sandbox::new();
    let path = sb.join("kv-dgram.sock");
    let path_s = path.to_str().unwrap();
    let server = daemon(&sb, &["dgram-server", "--path", path_s]);
    let mode = std::fs::symlink_metadata(&path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = run(
        &sb,
        &["dgram-client", "--path", path_s, "SET", "k", "via datagram"],
        b"",
    );
    assert_eq!(testkit::stdout(&out), "OK\n");
    let out = run(
        &sb,
        &["dgram-client", "--path", path_s],
        b"GET k\nINCR n\nINCR n\nGET nope\nBAD\n",
    );
    // Raw, stdout being a pipe; formatted with --no-raw.
    assert_eq!(
        testkit::stdout(&out),
        "via datagram\n1\n2\n\nERR unknown command 'BAD'\n"
    );
    let out = run(
        &sb,
        &["dgram-client", "--path", path_s, "--no-raw"],
        b"GET k\nGET nope\nBAD\n",
    );
    assert_eq!(
        testkit::stdout(&out),
        "\"via datagram\"\n(nil)\n(error) ERR unknown command 'BAD'\n"
    );
    // Garbage datagrams get an error reply; the server carries on.
    let script = r#"
import socket, sys, os
me = sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(me)
try:
    s.connect(sys.argv[1])
    for d in [b"*2\r\n$3\r\nGET\r\n", b"PING\r\nPING\r\n", b"*1\r\n$-3\r\n"]:
        s.send(d)
        print(s.recv(1000))
finally:
    os.unlink(me)
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(script).arg(&path).arg(sb.join("py.sock"));
    let out = testkit::run(&mut cmd, b"");
    assert_eq!(
        testkit::stdout(&out),
        "b'-ERR Protocol error: incomplete request (one whole request per datagram)\\r\\n'\n\
         b'-ERR Protocol error: one request per datagram (extra bytes after it)\\r\\n'\n\
         b'-ERR Protocol error: invalid bulk length\\r\\n'\n",
        "{}",
        testkit::stderr(&out)
    );
    // Every client removed its own bound socket; only the server's remains.
    assert_eq!(
        common::testkit::files_in(&sb.runtime_dir()),
        Vec::<String>::new()
    );
    // A second server is refused; SIGTERM removes the socket.
    let out = run(&sb, &["dgram-server", "--path", path_s], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(testkit::stderr(&out).contains("another server is already listening"));
    server.stop();
    assert!(!path.exists());
}

#[test]
fn datagrams_from_unbound_senders_do_not_stop_the_server() {
    let sb = Sandbox::new();
    let path = sb.join("kv-dgram.sock");
    let path_s = path.to_str().unwrap();
    let mut server = daemon(&sb, &["dgram-server", "--path", path_s]);
    // Real unbound senders: the kernel hands the server an address of length 0. Then one
    // with an abstract address, which can be replied to.
    let script = r#"
import socket, sys
for d in [b"PING\r\n", b"SET k v\r\n", b""]:
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(d, sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(b"\0" + sys.argv[2].encode())
s.sendto(b"PING\r\n", sys.argv[1])
print(s.recv(100))
"#;
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .arg(&path)
        .arg(common::names::unique("abstract"));
    let out = testkit::run(&mut cmd, b"");
    assert_eq!(
        testkit::stdout(&out),
        "b'+PONG\\r\\n'\n",
        "{}",
        testkit::stderr(&out)
    );
    for _ in 0..3 {
        server.wait_stdout(|l| l.contains("no address to reply to"));
    }
    // Still serving, and none of the unbound senders' requests ran.
    let out = run(
        &sb,
        &["dgram-client", "--path", path_s, "--no-raw", "GET", "k"],
        b"",
    );
    assert_eq!(
        testkit::stdout(&out),
        "(nil)\n",
        "{}",
        testkit::stderr(&out)
    );
    server.stop();
    assert!(common::testkit::files_in(&sb.runtime_dir()).is_empty());
}

/// The datagram server's log on a pipe nobody reads for a while: it keeps serving (a blocking
/// write would stop it at the first full pipe), and once the pipe is read again the lines that
/// waited come out, then the note about those it had to drop, with no new event needed: it
/// polls its stdout for room beside its socket.
#[test]
fn a_dgram_server_whose_log_nobody_reads_keeps_serving() {
    let sb = Sandbox::new();
    let path = sb.join("kv-dgram.sock");
    let (server, log_pipe) =
        spawn_with_log_pipe(&sb, &["dgram-server", "--path", path.to_str().unwrap()]);
    // Each datagram from an unbound socket logs a line of about 70 bytes: 3000 of them are
    // more than the pipe and the server's backlog hold.
    let unbound = UnixDatagram::unbound().unwrap();
    for _ in 0..3000 {
        unbound.send_to(b"PING\r\n", &path).unwrap();
    }
    // One queue, in order: this reply means every datagram before it has been handled.
    let out = run(
        &sb,
        &["dgram-client", "--path", path.to_str().unwrap(), "PING"],
        b"",
    );
    assert_eq!(testkit::stdout(&out), "PONG\n", "{}", testkit::stderr(&out));
    let mut log = Lines::new(log_pipe);
    assert!(dropped_lines(&mut log) > 0);
    server.signal(Signal::SIGTERM).unwrap();
    log.wait_for(|l| l.starts_with("shutting down on SIGTERM"), WAIT)
        .unwrap();
    assert!(server.wait_timeout(WAIT).unwrap().success());
    assert!(!path.exists());
}

/// A server asked to stop, by SIGTERM, SIGINT or SIGHUP (the terminal it runs in closed),
/// stops as its job is: exit 0, its socket file and lock file removed, `shutting down on SIG`
/// its last line. Not 128+N: stopping is not a failure to finish.
#[test]
fn both_servers_asked_to_stop_exit_0_and_leave_nothing() {
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let sb = Sandbox::new();
        for role in ["server", "dgram-server"] {
            let path = sb.join(format!("{role}.sock"));
            let flag = if role == "server" { "--unix" } else { "--path" };
            let server = daemon(&sb, &[role, flag, path.to_str().unwrap()]);
            let stopped = server.stop_with(sig);
            assert!(
                stopped
                    .stdout
                    .last()
                    .is_some_and(|l| l.starts_with(&format!("shutting down on {sig}"))),
                "{role}: {:?}",
                stopped.stdout
            );
            assert!(
                common::testkit::files_in(sb.path())
                    .iter()
                    .all(|f| !f.starts_with(role)),
                "{role} after {sig}: {:?}",
                common::testkit::files_in(sb.path())
            );
        }
    }
}

#[test]
fn a_socket_path_too_long_for_sun_path_says_which_and_by_how_much() {
    let sb = Sandbox::new();
    let long = sb.join(format!("{}.sock", "s".repeat(120)));
    let len = long.as_os_str().len();
    let want = format!(
        "socket-demo: {}: too long for a Unix socket address: {len} bytes, {} over the \
         108-byte limit of sun_path (unix(7)); use a shorter path\n",
        long.display(),
        len - 108
    );
    let long_s = long.to_str().unwrap();
    for args in [
        &["server", "--unix", long_s][..],
        &["client", "--unix", long_s, "PING"],
        &["dgram-server", "--path", long_s],
        &["dgram-client", "--path", long_s, "PING"],
    ] {
        let out = run(&sb, args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(testkit::stderr(&out), want, "{args:?}");
    }
    // A deep runtime dir: the default socket path is what is too long.
    let deep = sb.join("d".repeat(100));
    std::fs::create_dir(&deep).unwrap();
    let mut cmd = sb.command(BIN);
    cmd.env("XDG_RUNTIME_DIR", &deep).arg("server");
    let out = testkit::run(&mut cmd, b"");
    assert_eq!(out.status.code(), Some(1));
    let default = deep.join("ipc-demo/kv.sock");
    assert!(
        testkit::stderr(&out).starts_with(&format!(
            "socket-demo: {}: too long for a Unix socket address: ",
            default.display()
        )),
        "{}",
        testkit::stderr(&out)
    );
    assert!(common::testkit::files_in(&deep.join("ipc-demo")).is_empty());
}

#[test]
fn pass_fd_hands_an_unlinked_file_to_another_process() {
    let sb = Sandbox::new();
    let out = run(&sb, &["pass-fd"], b"");
    let stdout = testkit::stdout(&out);
    assert!(out.status.success(), "{stdout}\n{}", testkit::stderr(&out));
    let sender = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sender pid "))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .to_owned();
    assert!(stdout.contains("got fd "), "{stdout}");
    assert!(
        stdout.contains(&format!("SCM_CREDENTIALS says pid={sender} uid=")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("SO_PEERCRED says pid={sender} ")),
        "{stdout}"
    );
    assert!(stdout.contains("(deleted)"), "{stdout}");
    assert!(
        stdout.contains(&format!("read \"a line only pid {sender} could read")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("ok: receiver pid")
    );
    assert!(common::testkit::files_in(&sb.runtime_dir()).is_empty());
    // The receiver alone, without a socket on stdin, explains what to run instead.
    let out = run(&sb, &["pass-fd", "--receive"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("stdin is not a Unix socket"),
        "{}",
        testkit::stderr(&out)
    );
}

#[test]
fn help_shows_examples_and_bad_flags_exit_2() {
    let sb = Sandbox::new();
    let out = run(&sb, &["--help"], b"");
    assert!(out.status.success());
    assert!(testkit::stdout(&out).contains("socket-demo client SET greeting hello"));
    let out = run(&sb, &["server", "--max-clients", "lots"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = run(&sb, &["server", "--max-clients", "0"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(testkit::stderr(&out).contains("0 is not in 1.."));
    let out = run(&sb, &["server", "--busy-poll-us", "20000"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(testkit::stderr(&out).contains("20000 is not in 0..=10000"));
    let out = run(&sb, &["server", "--tcp", "nonsense"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(testkit::stderr(&out).contains("--tcp nonsense: not an IP:PORT address"));
}

/// The options for clients on other hosts are checked before anything starts: they need
/// `--tcp`, and an `--allow-from` network must mean what it says.
#[test]
fn tcp_options_are_checked_at_start() {
    let sb = Sandbox::new();
    for (args, says) in [
        (&["server", "--keepalive", "60"][..], "--tcp"),
        (&["server", "--allow-from", "10.0.0.0/8"], "--tcp"),
        (
            &["server", "--tcp", "0.0.0.0:0", "--keepalive", "40000"],
            "40000 is not in 0..=32767",
        ),
        (
            &["server", "--tcp", "0.0.0.0:0", "--allow-from", "10.1.2.3/8"],
            "10.1.2.3/8 has host bits set: the network is 10.0.0.0/8, the address alone is \
             10.1.2.3",
        ),
        (
            &[
                "server",
                "--tcp",
                "0.0.0.0:0",
                "--allow-from",
                "10.0.0.0/33",
            ],
            "not an address or a CIDR network like 10.0.0.0/8: \"10.0.0.0/33\"",
        ),
        (&["client", "--timeout", "0", "PING"], "0 is not in 1.."),
    ] {
        let out = run(&sb, args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            testkit::stderr(&out).contains(says),
            "{args:?}: {}",
            testkit::stderr(&out)
        );
    }
    // A single address and an IPv6 network are accepted (this server is on loopback, where
    // the list does not matter, and only has to start).
    let server = daemon(
        &sb,
        &[
            "server",
            "--tcp",
            "127.0.0.1:0",
            "--allow-from",
            "127.0.0.1",
        ]
        .into_iter()
        .chain(["--allow-from", "2001:db8::/32", "--keepalive", "1"])
        .collect::<Vec<_>>(),
    );
    let addr = server.serves("tcp").to_owned();
    let out = run(
        &sb,
        &["client", "--tcp", &addr, "--timeout", "10", "PING"],
        b"",
    );
    assert_eq!(testkit::stdout(&out), "PONG\n");
}

/// SIGINT, SIGTERM or SIGHUP while the demo's server runs. The test hook
/// `--wait-for-signal-before-step 3` makes the instant certain: the demo waits for a signal
/// before step 3, so wherever the signal lands (during step 2 or in that wait), the demo is
/// still mid-scenario with its server up. It must stop every child, remove every socket, say
/// so instead of a verdict, and exit 128 + the signal's number.
#[test]
fn a_stop_signal_mid_run_stops_every_child_leaves_nothing_and_exits_128_plus_n() {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let mut cmd = sb.command(BIN);
        cmd.env(TEST_HOOKS, "1")
            .args(["demo", "--wait-for-signal-before-step", "3"]);
        let demo = testkit::spawn(&mut cmd);
        let mut out = demo.stdout_lines().unwrap();
        let line = out
            .wait_for(|l| l.trim_start().starts_with("server pid "), WAIT)
            .unwrap();
        let server_pid: i32 = line
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_end_matches(',')
            .parse()
            .unwrap();
        demo.signal(sig).unwrap();
        let rest = out.rest(WAIT).unwrap();
        let status = demo.wait_timeout(WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {rest:?}");
        assert_eq!(
            rest.last().cloned(),
            Some(format!("interrupted by {sig} before the check was done")),
            "{rest:?}"
        );
        assert!(
            !rest
                .iter()
                .any(|l| l.starts_with("3. ") || l.starts_with("ok:")),
            "{sig}: the run went on: {rest:?}"
        );
        assert_eq!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(server_pid), None),
            Err(nix::errno::Errno::ESRCH),
            "the demo's server (pid {server_pid}) outlived it"
        );
        assert!(sb.leftovers().is_empty(), "{sig}: {:?}", sb.leftovers());
    }
}
