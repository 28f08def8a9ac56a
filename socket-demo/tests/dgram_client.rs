//! `dgram-client` against a datagram server whose receive queue is full.
//!
//! A Unix datagram socket queues at most `net.unix.max_dgram_qlen` datagrams (10 by default)
//! for its reader; past that, a blocking `send` sleeps in the kernel until the reader makes
//! room. The client must not sleep there: it has to give up at its `--timeout`, stop on the
//! first Ctrl-C, and remove its own bound socket either way. Each test stops a server with
//! SIGSTOP and fills its queue from the test itself, so the queue is full for certain.

mod support;

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::child::Supervised;
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use support::*;

/// A `dgram-server` stopped with SIGSTOP, its queue filled to the brim.
///
/// Dropping it sends SIGCONT before the server's own handle is dropped, so that handle's
/// SIGTERM finds a process able to act on it (a stopped one would only be SIGKILLed after the
/// grace period, leaving its socket file behind).
struct FullServer {
    server: Supervised,
    path: PathBuf,
    /// The socket that filled the queue; it stays bound so the server can reply to it later.
    filler: UnixDatagram,
    /// How many datagrams fitted in the queue.
    queued: usize,
}

impl FullServer {
    fn start(sb: &Sandbox) -> FullServer {
        let path = sb.join("kv-dgram.sock");
        let testkit::Daemon { child: server, .. } =
            daemon(sb, &["dgram-server", "--path", path.to_str().unwrap()]);
        server.signal(Signal::SIGSTOP).unwrap();
        // kill() returns before the server has actually stopped; until it has, it may still
        // take a datagram off the queue we are about to fill. The server is our child, so
        // waitid reports the stop; WNOWAIT leaves its state for the handle to reap later, and
        // WEXITED makes a server that died instead end the wait too (its deadline bounds it).
        let status = waitid(
            Id::Pid(server.pid()),
            WaitPidFlag::WSTOPPED | WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        )
        .unwrap();
        assert!(
            matches!(status, WaitStatus::Stopped(_, Signal::SIGSTOP)),
            "dgram-server did not stop: {status:?}"
        );
        let mut full = FullServer {
            server,
            path,
            filler: UnixDatagram::bind(sb.join("filler.sock")).unwrap(),
            queued: 0,
        };
        full.fill();
        full
    }

    /// Send PINGs without blocking until the kernel says the queue is full (EAGAIN).
    fn fill(&mut self) {
        self.filler.set_nonblocking(true).unwrap();
        let ping = resp(&["PING"]);
        loop {
            match self.filler.send_to(&ping, &self.path) {
                Ok(_) => self.queued += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("send_to {}: {e}", self.path.display()),
            }
            assert!(
                self.queued < 100_000,
                "the queue of a stopped server never filled"
            );
        }
        assert!(self.queued > 0, "not one datagram fitted in the queue");
    }

    fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Let the server run again, and check that it still serves and exits cleanly.
    fn resume_and_stop(self, sb: &Sandbox) {
        self.server.signal(Signal::SIGCONT).unwrap();
        // The request that timed out was never sent: nothing set k.
        let out = run(
            sb,
            &["dgram-client", "--path", self.path_str(), "GET", "k"],
            b"",
        );
        // Raw output, stdout being a pipe: nil is an empty line.
        assert_eq!(testkit::stdout(&out), "\n", "{}", testkit::stderr(&out));
        self.server.signal(Signal::SIGTERM).unwrap();
        assert!(self.server.wait_timeout(WAIT).unwrap().success());
        assert!(!self.path.exists());
    }
}

impl Drop for FullServer {
    fn drop(&mut self) {
        // Also on a failed assertion: never leave a stopped process to the handle's drop.
        let _ = self.server.signal(Signal::SIGCONT);
    }
}

/// The `dgram-client-*.sock` files in the runtime dir: the clients' own bound addresses.
fn client_sockets(runtime_dir: &Path) -> Vec<String> {
    common::testkit::files_in(runtime_dir)
        .into_iter()
        .filter(|n| n.starts_with("dgram-client-"))
        .collect()
}

#[test]
fn send_to_a_full_queue_times_out_and_removes_the_client_socket() {
    let sb = Sandbox::new();
    let full = FullServer::start(&sb);
    let started = Instant::now();
    let out = run(
        &sb,
        &[
            "dgram-client",
            "--path",
            full.path_str(),
            "--timeout",
            "1",
            "SET",
            "k",
            "v",
        ],
        b"",
    );
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{} queued; {}",
        full.queued,
        testkit::stderr(&out)
    );
    assert_eq!(testkit::stdout(&out), "");
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "socket-demo: send {}: the server's queue stayed full for 1s\n",
            full.path.display()
        )
    );
    // It waited for room until its deadline instead of giving up at the first EAGAIN.
    assert!(took >= Duration::from_secs(1), "gave up after {took:?}");
    assert_eq!(client_sockets(&sb.runtime_dir()), Vec::<String>::new());
    full.resume_and_stop(&sb);
}

#[test]
fn sigint_stops_a_send_blocked_on_a_full_queue() {
    let sb = Sandbox::new();
    let full = FullServer::start(&sb);
    let mut cmd = sb.command(BIN);
    // -v: the trace line for the EAGAIN tells us the client is now waiting for room.
    cmd.args(["-v", "dgram-client", "--path", full.path_str()])
        .args(["--timeout", "600", "SET", "k", "v"]);
    let client = testkit::spawn(&mut cmd);
    let mut errors = client.stderr_lines().unwrap();
    errors
        .wait_for(|l| l.contains("] send(") && l.contains("-> EAGAIN"), WAIT)
        .unwrap_or_else(|e| panic!("the client never found the queue full: {e}"));
    assert_eq!(
        client_sockets(&sb.runtime_dir()).len(),
        1,
        "the client's bound socket should exist while it waits"
    );
    client.signal(Signal::SIGINT).unwrap();
    let status = client.wait_timeout(WAIT).unwrap();
    let rest = errors.rest(WAIT).unwrap();
    // One SIGINT is enough, and it ends the run as any interrupted run ends, after removing
    // the client's socket: exit 130 (128 + SIGINT), one line.
    assert_eq!(status.code(), Some(130), "{status:?} {rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("socket-demo: interrupted by SIGINT"),
        "{rest:?}"
    );
    assert_eq!(client_sockets(&sb.runtime_dir()), Vec::<String>::new());
    full.resume_and_stop(&sb);
}

#[test]
fn sigint_stops_a_client_waiting_for_a_line_on_stdin() {
    let sb = Sandbox::new();
    let path = sb.join("kv-dgram.sock");
    let server = daemon(&sb, &["dgram-server", "--path", path.to_str().unwrap()]);
    assert_eq!(server.serves("socket"), path.display().to_string());
    // One command is answered, then the client waits for the next line, which never comes.
    let mut cmd = sb.command(BIN);
    cmd.args(["dgram-client", "--path"])
        .arg(&path)
        .stdin(std::process::Stdio::piped());
    let client = testkit::spawn(&mut cmd);
    let mut stdin = client.take_stdin().unwrap();
    stdin.write_all(b"PING\n").unwrap();
    let mut out = client.stdout_lines().unwrap();
    out.wait_for(|l| l == "PONG", WAIT).unwrap();
    client.signal(Signal::SIGINT).unwrap();
    let status = client.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let errors = client.stderr_lines().unwrap().rest(WAIT).unwrap();
    assert_eq!(errors, ["socket-demo: interrupted by SIGINT"]);
    assert_eq!(client_sockets(&sb.runtime_dir()), Vec::<String>::new());
    drop(stdin);
    server.stop();
}
