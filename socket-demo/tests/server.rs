//! The stream server from the outside: many clients, hostile clients, its socket file, its
//! admission rules, shutdown.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::child::Lines;
use common::pidfile::PidFile;
use common::testkit::{self, Sandbox};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
};
use support::*;

#[test]
fn five_hundred_concurrent_clients_get_every_reply_right() {
    concurrent_clients_get_every_reply_right(500, &[]);
}

#[test]
fn without_polling_before_sleeping_every_reply_is_right_too() {
    concurrent_clients_get_every_reply_right(100, &["--busy-poll-us", "0"]);
}

/// `clients` connections open at once, each doing 100 requests in turn, on a server started
/// with `extra`.
fn concurrent_clients_get_every_reply_right(clients: usize, extra: &[&str]) {
    const REQUESTS: usize = 100;
    let sb = Sandbox::new();
    let server = Server::start(&sb, extra);
    // Every client connects first, then all start at once: all connections open together.
    let barrier = Arc::new(Barrier::new(clients));
    let mut threads = Vec::new();
    for c in 0..clients {
        let sock = server.sock.clone();
        let barrier = Arc::clone(&barrier);
        let t = thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut s = connect(&sock);
                barrier.wait();
                let key = format!("key:{c}");
                let mut incrs = 0;
                for j in 0..REQUESTS {
                    match j % 3 {
                        0 => assert_eq!(
                            call(&mut s, &["SET", &key, &format!("v{c}:{j}")]),
                            "+OK\r\n"
                        ),
                        1 => assert_eq!(
                            call(&mut s, &["GET", &key]),
                            bulk(&format!("v{c}:{}", j - 1))
                        ),
                        _ => {
                            let r = call(&mut s, &["INCR", "shared"]);
                            assert!(r.starts_with(':'), "client {c}: INCR replied {r:?}");
                            incrs += 1;
                        }
                    }
                }
                incrs
            })
            .unwrap();
        threads.push(t);
    }
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, clients * 33);
    let mut s = server.connect();
    assert_eq!(call(&mut s, &["GET", "shared"]), bulk(&total.to_string()));
    assert_eq!(call(&mut s, &["DBSIZE"]), format!(":{}\r\n", clients + 1));
}

#[test]
fn an_idle_server_sleeps_after_polling_for_more() {
    let sb = Sandbox::new();
    // The longest poll allowed, so that a loop that never stopped polling would show.
    let server = Server::start(&sb, &["--busy-poll-us", "10000"]);
    let pid = server.child.pid().as_raw();
    let mut s = server.connect();
    for i in 0..1000 {
        assert_eq!(call(&mut s, &["INCR", "n"]), format!(":{}\r\n", i + 1));
    }
    // Idle now: once its 10 ms of polling are over it must sleep in epoll_wait ('S'), and
    // stay asleep.
    let deadline = Instant::now() + WAIT;
    while proc_stat(pid).0 != 'S' {
        assert!(
            Instant::now() < deadline,
            "the idle server never went to sleep"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let (_, before) = proc_stat(pid);
    // A measurement window, not synchronisation: no event can say "the server did not wake
    // up", so its absence is observed over 300 ms. A loaded machine can only make the server
    // use less CPU in that window, never more, so the check cannot fail by bad luck.
    thread::sleep(Duration::from_millis(300));
    let (state, after) = proc_stat(pid);
    assert_eq!(state, 'S', "the idle server woke up");
    // A server polling all the while would have used about 30 ticks of CPU time.
    assert!(
        after - before <= 1,
        "the idle server used {} ticks of CPU time",
        after - before
    );
}

/// A process's state letter and CPU time so far (user + system, in clock ticks).
fn proc_stat(pid: i32) -> (char, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name, in parentheses, may hold spaces: count fields after its ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let state = fields[0].chars().next().unwrap();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (state, ticks)
}

#[test]
fn clients_killed_mid_request_do_not_disturb_others() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let mut steady = server.connect();
    assert_eq!(call(&mut steady, &["SET", "k", "before"]), "+OK\r\n");
    // Real processes, killed with SIGKILL: one in the middle of a bulk string, one in the
    // middle of a big pipelined batch whose replies it never reads.
    let scripts = [
        "s.sendall(b'*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$100\\r\\nhalf')",
        "s.sendall(b'*2\\r\\n$4\\r\\nECHO\\r\\n$1000\\r\\n' + b'x'*1000 + b'\\r\\n' * 1)\n\
         s.setblocking(False)\n\
         import itertools\n\
         for _ in range(2000):\n  \
           try: s.send(b'*1\\r\\n$4\\r\\nPING\\r\\n' * 100)\n  \
           except BlockingIOError: break",
    ];
    for script in scripts {
        let code = format!(
            "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
             {script}\nprint('sent',flush=True)\ntime.sleep(120)"
        );
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c").arg(code).arg(&server.sock);
        let victim = testkit::spawn(&mut cmd);
        let mut out = victim.stdout_lines().unwrap();
        out.wait_for(|l| l == "sent", WAIT).unwrap();
        victim.signal(Signal::SIGKILL).unwrap();
        victim.wait_timeout(WAIT).unwrap();
        assert_eq!(call(&mut steady, &["GET", "k"]), bulk("before"));
    }
    assert_eq!(call(&mut steady, &["SET", "k", "after"]), "+OK\r\n");
    let mut fresh = server.connect();
    assert_eq!(call(&mut fresh, &["GET", "k"]), bulk("after"));
    assert_eq!(server.child.try_wait().unwrap(), None, "the server died");
}

#[test]
fn ten_mib_without_newline_is_cut_off_while_others_carry_on() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let mut flood = server.connect();
    let flooder = thread::spawn(move || {
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < 10 * 1024 * 1024 {
            match flood.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // EPIPE/ECONNRESET: cut off, as it should be
            }
        }
        (sent, read_to_eof(&mut flood))
    });
    let mut other = server.connect();
    for i in 0..200 {
        assert_eq!(call(&mut other, &["INCR", "n"]), format!(":{}\r\n", i + 1));
    }
    let (sent, reply) = flooder.join().unwrap();
    assert!(
        sent < 10 * 1024 * 1024,
        "the server took all {sent} bytes of a line with no end"
    );
    // The error reply is queued on the flooder's socket before the server closes it, so it
    // is there to read even after the write failed with EPIPE or ECONNRESET.
    assert_eq!(reply, "-ERR Protocol error: too big inline request\r\n");
    assert_eq!(call(&mut other, &["GET", "n"]), bulk("200"));
}

#[test]
fn protocol_errors_get_an_error_reply_then_the_connection_closes() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let cases: [(&[u8], &str); 5] = [
        (
            b"*1\r\n$-5\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n$2000000\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*5000\r\n",
            "-ERR Protocol error: invalid multibulk length (more than 1024 arguments)\r\n",
        ),
        (
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
    ];
    for (input, want) in cases {
        let mut s = server.connect();
        // A good request first: it is answered before the bad one closes the connection.
        s.write_all(b"PING\r\n").unwrap();
        s.write_all(input).unwrap();
        assert_eq!(read_to_eof(&mut s), format!("+PONG\r\n{want}"));
    }
    // Unknown commands and wrong arity are ordinary errors: the connection stays.
    let mut s = server.connect();
    assert_eq!(
        call(&mut s, &["FOO", "x"]),
        "-ERR unknown command 'FOO'\r\n"
    );
    assert_eq!(
        call(&mut s, &["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(call(&mut s, &["SET", "t", "x"]), "+OK\r\n");
    assert_eq!(
        call(&mut s, &["INCR", "t"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    // Inline commands, as typed into `nc -U`, and pipelining in one write.
    s.write_all(b"SET a 1\nINCR a\r\nEXISTS a b\nDEL a\nQUIT\n")
        .unwrap();
    assert_eq!(read_to_eof(&mut s), "+OK\r\n:2\r\n:1\r\n:1\r\n+OK\r\n");
}

#[test]
fn a_client_that_does_not_read_gets_backpressure_not_unbounded_memory() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let value = "v".repeat(4096);
    let mut setup = server.connect();
    assert_eq!(call(&mut setup, &["SET", "big", &value]), "+OK\r\n");
    // 40000 GETs = 160 MiB of replies, which the client does not read yet.
    const N: usize = 40_000;
    let mut slow = server.connect();
    slow.set_nonblocking(true).unwrap();
    let batch = resp(&["GET", "big"]).repeat(N);
    let mut sent = 0;
    let mut stalled_for = Instant::now();
    while sent < batch.len() {
        match slow.write(&batch[sent..]) {
            Ok(n) => {
                sent += n;
                stalled_for = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // The server has stopped reading from us: backpressure. (Polling the clock
                // here measures a stall; nothing waits on it for synchronisation.) No event
                // says "the server will read no more": it only shows as a lasting stall. A
                // loaded machine can only lengthen stalls, so this cannot fail by bad luck;
                // the RSS bound below is what proves the output stayed bounded.
                if stalled_for.elapsed() > Duration::from_secs(2) {
                    break;
                }
                thread::yield_now();
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        sent < batch.len(),
        "the server read every request without our reading a reply"
    );
    let rss_kib = rss_kib(server.child.pid().as_raw());
    assert!(
        rss_kib < 64 * 1024,
        "server RSS {rss_kib} KiB: output is not bounded"
    );
    // Others are served meanwhile.
    let mut other = server.connect();
    assert_eq!(call(&mut other, &["PING"]), "+PONG\r\n");
    // Now read: every reply arrives, in order, and the rest of the requests go through.
    slow.set_nonblocking(false).unwrap();
    let mut reader = slow.try_clone().unwrap();
    let rest = batch[sent..].to_vec();
    let writer = thread::spawn(move || slow.write_all(&rest).unwrap());
    let want = bulk(&value);
    let mut buf = vec![0u8; want.len()];
    for i in 0..N {
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(buf, want.as_bytes(), "reply {i}");
    }
    writer.join().unwrap();
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn socket_is_mode_0600_and_removed_on_sigterm() {
    let sb = Sandbox::new();
    let mut server = Server::start(&sb, &[]);
    let meta = std::fs::symlink_metadata(&server.sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // A client still connected at SIGTERM, with nothing in flight (for replies in flight, see
    // sigterm_sends_the_replies_in_flight_then_exits).
    let mut s = server.connect();
    assert_eq!(call(&mut s, &["SET", "k", "v"]), "+OK\r\n");
    server.child.signal(Signal::SIGTERM).unwrap();
    server
        .log
        .wait_for(|l| l.starts_with("shutting down on SIGTERM"), WAIT)
        .unwrap();
    let status = server.child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!server.sock.exists(), "socket file left behind");
    // The idle client sees EOF, not a hang.
    assert_eq!(read_to_eof(&mut s), "");
}

#[test]
fn stale_socket_is_replaced_and_live_one_is_not_taken() {
    let sb = Sandbox::new();
    let first = Server::start(&sb, &[]);
    // A second server on the same path is refused, and the first keeps working.
    let out = run(
        &sb,
        &["server", "--unix", first.sock.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    let want = format!(
        "another server is already listening there (pid {}, which holds",
        first.child.pid()
    );
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("refusing to take it over"), "{err}");
    let mut s = first.connect();
    assert_eq!(call(&mut s, &["SET", "k", "v"]), "+OK\r\n");
    // kill -9 leaves the socket file behind; the next server recognises it as stale.
    first.child.signal(Signal::SIGKILL).unwrap();
    first.child.wait_timeout(WAIT).unwrap();
    assert!(first.sock.exists());
    assert!(UnixStream::connect(&first.sock).is_err());
    let second = Server::start(&sb, &[]);
    assert!(
        second
            .log
            .seen()
            .iter()
            .any(|l| l.starts_with("removed stale socket"))
    );
    let mut s = second.connect();
    assert_eq!(call(&mut s, &["PING"]), "+PONG\r\n");
    // The lock the killed server left is taken over too, and removed with the socket.
    let lock = sb.join("kv.sock.pid");
    assert!(lock.exists());
    second.child.signal(Signal::SIGTERM).unwrap();
    assert!(second.child.wait_timeout(WAIT).unwrap().success());
    assert!(!second.sock.exists() && !lock.exists());
}

/// A Unix stream socket bound at `path`, listening with `listen_backlog` if given, but never
/// accepting.
fn bind_without_accepting(path: &std::path::Path, listen_backlog: Option<i32>) -> OwnedFd {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    if let Some(n) = listen_backlog {
        listen(&fd, Backlog::new(n).unwrap()).unwrap();
    }
    fd
}

#[test]
fn a_server_between_bind_and_listen_is_not_taken_for_stale() {
    // What a starting server looks like for a moment: its lock taken, its socket bound, not yet
    // listening. A probe alone would get ECONNREFUSED and call the socket stale.
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let _lock = PidFile::create(&sb.join("kv.sock.pid")).unwrap();
    let _bound = bind_without_accepting(&sock, None);
    let out = run(&sb, &["server", "--unix", sock.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    let want = format!(
        "another server is already listening there (pid {}, which holds",
        std::process::id()
    );
    assert!(err.contains(&want), "{err}");
    assert!(sock.exists(), "the starting server's socket was removed");
}

#[test]
fn a_live_server_with_a_full_backlog_is_refused_at_once() {
    // Some other program listens at the path but has stopped accepting, and its backlog is
    // full: a blocking probe would wait in connect for as long as that lasts.
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let _listener = bind_without_accepting(&sock, Some(0));
    // With a backlog of 0, one connection waiting to be accepted fills the queue.
    let _queued = UnixStream::connect(&sock).unwrap();
    let out = run(&sb, &["server", "--unix", sock.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    assert!(
        err.contains("another server is already listening there (its backlog is full)"),
        "{err}"
    );
    assert!(sock.exists());
}

#[test]
fn client_beyond_max_clients_is_refused_others_unaffected() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &["--max-clients", "2"]);
    let mut a = server.connect();
    let mut b = server.connect();
    assert_eq!(call(&mut a, &["PING"]), "+PONG\r\n");
    assert_eq!(call(&mut b, &["PING"]), "+PONG\r\n");
    let mut c = server.connect();
    assert_eq!(
        read_to_eof(&mut c),
        "-ERR max number of clients reached\r\n"
    );
    // Through the client role, the refusal is one clear line and exit 1.
    let out = run(
        &sb,
        &["client", "--unix", server.sock.to_str().unwrap(), "PING"],
        b"",
    );
    assert_eq!(testkit::stdout(&out), "ERR max number of clients reached\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(call(&mut a, &["SET", "k", "1"]), "+OK\r\n");
    assert_eq!(call(&mut b, &["GET", "k"]), bulk("1"));
    drop(a);
    // A slot is free again once a client leaves (wait for the server to see it go).
    let deadline = Instant::now() + WAIT;
    loop {
        let mut d = server.connect();
        // A refused client may be closed before its request is written: EPIPE is fine, the
        // error reply is already waiting to be read.
        let _ = d.write_all(b"PING\r\n");
        let got = read_reply(&mut d);
        if got == "+PONG\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed: {got:?}");
    }
}

#[test]
fn max_clients_fits_the_descriptor_limit() {
    // Under a hard limit of 64 open descriptors the default of 10 000 clients cannot be kept:
    // the server says so and lowers it, so client 33 gets an error reply, not a reset.
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let mut cmd = sb.command("sh");
    cmd.args([
        "-c",
        "ulimit -n 64 && exec \"$@\"",
        "sh",
        BIN,
        "server",
        "--unix",
    ])
    .arg(&sock);
    // sh execs the server: the ready line names sh's pid.
    let server = testkit::Daemon::start(&mut cmd);
    let lowered = "max clients lowered from 10000 to 32: at most 64 open descriptors";
    assert!(
        server.stdout.seen().iter().any(|l| l == lowered),
        "{:?}",
        server.stdout.seen()
    );
    let mut admitted: Vec<UnixStream> = (0..32).map(|_| connect(&sock)).collect();
    for s in &mut admitted {
        assert_eq!(call(s, &["PING"]), "+PONG\r\n");
    }
    for _ in 0..8 {
        let mut s = connect(&sock);
        assert_eq!(
            read_to_eof(&mut s),
            "-ERR max number of clients reached\r\n"
        );
    }
    assert_eq!(call(&mut admitted[0], &["DBSIZE"]), ":0\r\n");
}

#[test]
fn one_big_request_per_client_is_not_kept_while_it_idles() {
    const CLIENTS: usize = 64;
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let pid = server.child.pid().as_raw();
    let before = rss_kib(pid);
    let value = "x".repeat(1024 * 1024);
    // Each client sends one 1 MiB SET, then stays connected and idle.
    let idle: Vec<UnixStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = server.connect();
            assert_eq!(call(&mut s, &["SET", "big", &value]), "+OK\r\n");
            s
        })
        .collect();
    let grown = rss_kib(pid).saturating_sub(before);
    // Kept buffers would hold at least 64 MiB; the store holds one 1 MiB value.
    assert!(
        grown < 16 * 1024,
        "RSS grew by {grown} KiB for {CLIENTS} idle clients"
    );
    drop(idle);
}

#[test]
fn a_log_reader_that_stops_reading_does_not_stop_the_server() {
    // stdout is a pipe the test holds open but does not read until the end: once its 64 KiB
    // are full, a blocking log write would stall the event loop, and SIGTERM with it.
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let (server, log_pipe) =
        spawn_with_log_pipe(&sb, &["server", "--unix", sock.to_str().unwrap()]);
    // Each connection logs a line of about 40 bytes: 3000 of them overflow the pipe.
    for _ in 0..3000 {
        drop(UnixStream::connect(&sock).unwrap());
    }
    // A connect returns once the connection is queued, before the server accepts it. The
    // server accepts in order, so this PING's reply means all 3000 have been accepted and
    // logged (or dropped) before the test starts reading the log again.
    let mut s = connect(&sock);
    assert_eq!(call(&mut s, &["PING"]), "+PONG\r\n");
    // Once the log is read again, the lines that waited in the server's backlog come out,
    // then the note about those it had to drop: the server polls its stdout for room, so no
    // new event (no new log line) is needed for them.
    let mut log = Lines::new(log_pipe);
    assert!(dropped_lines(&mut log) > 0);
    // And it carries on, its log too.
    drop(UnixStream::connect(&sock).unwrap());
    log.wait_for(|l| l.starts_with("client connected: "), WAIT)
        .unwrap();
    server.signal(Signal::SIGTERM).unwrap();
    assert!(server.wait_timeout(WAIT).unwrap().success());
    assert!(!sock.exists(), "socket file left behind");
}

#[test]
fn a_socket_stdout_nobody_reads_does_not_stop_the_server() {
    // What systemd hands a service: stdout is a Unix stream socket to journald. This one is
    // never read after the first line; it fills after a few hundred lines.
    let (mut reader, writer) = UnixStream::pair().unwrap();
    a_stalled_stdout_does_not_stop_the_server(OwnedFd::from(writer), &mut reader);
}

#[test]
fn a_terminal_nobody_reads_does_not_stop_the_server() {
    // A pseudo-terminal whose master side nobody reads: writes to the terminal block once its
    // buffer is full, as they do on a real terminal stopped with Ctrl-S.
    let pty = nix::pty::openpty(None, None).unwrap();
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    }
    let mut master = std::fs::File::from(pty.master);
    a_stalled_stdout_does_not_stop_the_server(pty.slave, &mut master);
}

/// Start a server whose stdout is `stdout`, read its first line from `reader`, then read no
/// more: 5000 connections later (5000 log lines, about 200 KB, more than any of these can
/// hold) its clients must still be served, and SIGTERM must still stop it cleanly, with its
/// socket file and lock file removed.
fn a_stalled_stdout_does_not_stop_the_server(stdout: OwnedFd, reader: &mut dyn Read) {
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let server = spawn_with_stdout(&sb, &["server", "--unix", sock.to_str().unwrap()], stdout);
    assert_eq!(
        first_line(reader),
        format!("ready: pid {} socket {}", server.pid(), sock.display())
    );
    for _ in 0..5000 {
        drop(UnixStream::connect(&sock).unwrap());
    }
    // Accepted in order: the reply means all 5000 connections have been logged.
    let mut s = connect(&sock);
    assert_eq!(call(&mut s, &["PING"]), "+PONG\r\n");
    server.signal(Signal::SIGTERM).unwrap();
    assert!(server.wait_timeout(WAIT).unwrap().success());
    assert!(!sock.exists(), "socket file left behind");
    assert!(!sb.join("kv.sock.pid").exists(), "lock file left behind");
}

#[test]
fn a_log_file_opened_for_appending_is_appended_to() {
    // `server >> log`: the log must go where the shell's descriptor points, after what is
    // already there, not through a fresh open that would start writing at offset 0.
    let sb = Sandbox::new();
    let sock = sb.join("kv.sock");
    let path = sb.join("server.log");
    std::fs::write(&path, "before\n").unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let server = spawn_with_stdout(&sb, &["server", "--unix", sock.to_str().unwrap()], file);
    // The socket file appears at bind, a moment before the first line is written; the
    // first client's PONG comes after both.
    let deadline = Instant::now() + WAIT;
    let mut s = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "connect: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(call(&mut s, &["PING"]), "+PONG\r\n");
    server.signal(Signal::SIGTERM).unwrap();
    assert!(server.wait_timeout(WAIT).unwrap().success());
    let log = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "before", "{log}");
    assert_eq!(
        lines[1],
        format!("ready: pid {} socket {}", server.pid(), sock.display()),
        "{log}"
    );
    assert!(lines[2].starts_with("client connected: pid="), "{log}");
    assert!(lines[3].starts_with("shutting down on SIGTERM"), "{log}");
}

/// `--allow-uid` with a uid other than ours: our own client is the other user, so the test
/// needs no root to be refused by the server's SO_PEERCRED check.
#[test]
fn allow_uid_refuses_other_users() {
    let sb = Sandbox::new();
    let me = nix::unistd::Uid::effective().as_raw();
    let other = me.wrapping_add(1).to_string();
    let mut server = Server::start(&sb, &["--allow-uid", &other]);
    let sock = server.sock.display().to_string();
    let out = run(&sb, &["client", "--unix", &sock, "PING"], b"");
    assert_eq!(
        testkit::stdout(&out),
        format!("ERR uid {me} is not allowed here\n"),
        "stderr: {}",
        testkit::stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    let refused = format!("uid={me}");
    server
        .log
        .wait_for(
            |l| l.contains("refused client") && l.contains(&refused),
            WAIT,
        )
        .unwrap();
    server.child.signal(Signal::SIGTERM).unwrap();
    assert!(server.child.wait_timeout(WAIT).unwrap().success());

    // Our own uid is allowed.
    let server = Server::start(&sb, &["--allow-uid", &me.to_string()]);
    assert_eq!(call(&mut server.connect(), &["PING"]), "+PONG\r\n");
    server.child.signal(Signal::SIGTERM).unwrap();
    assert!(server.child.wait_timeout(WAIT).unwrap().success());
    assert!(!server.sock.exists());
}

#[test]
fn tcp_on_loopback_with_an_ephemeral_port() {
    let sb = Sandbox::new();
    let server = daemon(&sb, &["server", "--tcp", "127.0.0.1:0"]);
    let addr = server.serves("tcp").to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{}", server.ready);
    // Only TCP was asked for: no Unix socket in the runtime dir.
    assert!(common::testkit::files_in(&sb.runtime_dir()).is_empty());
    let out = run(
        &sb,
        &["client", "--tcp", &addr, "SET", "k", "over tcp"],
        b"",
    );
    assert_eq!(testkit::stdout(&out), "OK\n");
    let out = run(
        &sb,
        &["client", "--tcp", &addr],
        b"GET k\nINCR n\nGET missing\n",
    );
    assert_eq!(testkit::stdout(&out), "over tcp\n1\n\n");
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"PING hello\r\n").unwrap();
    assert_eq!(read_reply(&mut s), bulk("hello"));
    drop(s);
    server.stop();
}

#[test]
fn sigterm_sends_the_replies_in_flight_then_exits() {
    let sb = Sandbox::new();
    let value = "w".repeat(4096);
    let mut server = Server::start(&sb, &[]);
    let mut setup = server.connect();
    assert_eq!(call(&mut setup, &["SET", "big", &value]), "+OK\r\n");
    // Pile up replies: write GETs without reading until the server stops taking requests
    // (over a megabyte of replies is then waiting in its output buffer). The 2 s stall is
    // how "stopped taking requests" shows (no event says it); the check that matters, every
    // queued reply whole after SIGTERM, does not depend on it.
    let mut s = server.connect();
    s.set_nonblocking(true).unwrap();
    let batch = resp(&["GET", "big"]).repeat(20_000);
    let mut sent = 0;
    let mut stalled_for = Instant::now();
    while sent < batch.len() && stalled_for.elapsed() < Duration::from_secs(2) {
        match s.write(&batch[sent..]) {
            Ok(n) => {
                sent += n;
                stalled_for = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::yield_now(),
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(sent < batch.len(), "no backpressure");
    server.child.signal(Signal::SIGTERM).unwrap();
    // Read everything until EOF: whole replies only, at least the megabyte that was queued.
    s.set_nonblocking(false).unwrap();
    let got = read_to_eof(&mut s);
    let one = bulk(&value);
    assert_eq!(got.len() % one.len(), 0, "a torn reply at the end");
    assert!(
        got.len() / one.len() >= 256,
        "only {} replies",
        got.len() / one.len()
    );
    assert!(
        got.as_bytes()
            .chunks(one.len())
            .all(|c| c == one.as_bytes())
    );
    let line = server
        .log
        .wait_for(|l| l.starts_with("shutting down on SIGTERM"), WAIT)
        .unwrap();
    assert!(line.ends_with(", 0 cut off with replies unsent"), "{line}");
    assert!(server.child.wait_timeout(WAIT).unwrap().success());
    assert!(!server.sock.exists());
}
