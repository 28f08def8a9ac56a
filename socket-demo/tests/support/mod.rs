//! Helpers for the socket-demo integration tests: start a server in a sandbox
//! (`testkit::Daemon`), talk RESP to it from the test (the test is the external user), read
//! its log.
#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::child::{Lines, Options, Supervised};
use common::testkit::{self, Sandbox};

pub const BIN: &str = env!("CARGO_BIN_EXE_socket-demo");
/// How long a test waits for anything; only reached when it is failing already.
pub const WAIT: Duration = testkit::DEADLINE;
/// The environment variable that gives the parser its test hooks: the `worker` role and
/// `demo --wait-for-signal-before-step` (see `src/cli.rs`).
pub const TEST_HOOKS: &str = "IPC_DEMO_TEST_HOOKS";

/// Start `socket-demo ARGS` in the sandbox and wait for its `ready:` line
/// (`testkit::Daemon::start`): a server or a dgram-server.
pub fn daemon(sb: &Sandbox, args: &[&str]) -> testkit::Daemon {
    let mut cmd = sb.command(BIN);
    cmd.args(args);
    testkit::Daemon::start(&mut cmd)
}

/// A stream server started by a test on a Unix socket: `testkit::Daemon`'s fields (its stdout
/// is its log, its stderr the errors and the trace), and its socket path.
pub struct Server {
    pub child: Supervised,
    pub log: Lines,
    pub errors: Lines,
    pub ready: String,
    pub sock: PathBuf,
}

impl Server {
    /// Start `socket-demo server --unix <sandbox>/kv.sock` plus `extra`, and wait until it is
    /// listening.
    pub fn start(sb: &Sandbox, extra: &[&str]) -> Server {
        Self::start_at(sb, &sb.join("kv.sock"), extra)
    }

    pub fn start_at(sb: &Sandbox, sock: &Path, extra: &[&str]) -> Server {
        let mut cmd = sb.command(BIN);
        cmd.arg("server").arg("--unix").arg(sock).args(extra);
        let server = testkit::Daemon::start(&mut cmd);
        assert_eq!(server.serves("socket"), sock.display().to_string());
        let testkit::Daemon {
            child,
            stdout,
            stderr,
            ready,
        } = server;
        Server {
            child,
            log: stdout,
            errors: stderr,
            ready,
            sock: sock.to_owned(),
        }
    }

    pub fn connect(&self) -> UnixStream {
        connect(&self.sock)
    }

    /// Ask it to stop with `sig` and check that it exits 0 (`testkit::Daemon::stop_with`),
    /// its socket file and lock file removed.
    pub fn stop_with(self, sig: nix::sys::signal::Signal) -> testkit::Stopped {
        let Server {
            child,
            log,
            errors,
            ready,
            sock,
        } = self;
        let stopped = testkit::Daemon {
            child,
            stdout: log,
            stderr: errors,
            ready,
        }
        .stop_with(sig);
        assert!(!sock.exists(), "socket file left behind");
        let lock = PathBuf::from(format!("{}.pid", sock.display()));
        assert!(!lock.exists(), "lock file left behind");
        stopped
    }
}

/// Start `socket-demo ARGS` with its stdout on `stdout` (a pipe or a socket the test reads
/// when it chooses, a terminal, a file) and its stderr on /dev/null, in a process group of its
/// own, killed at the deadline or on drop. The command, and with it our copy of `stdout`, is
/// dropped before this returns: EOF on the test's end means the server has gone.
pub fn spawn_with_stdout(sb: &Sandbox, args: &[&str], stdout: impl Into<Stdio>) -> Supervised {
    let mut cmd = sb.command(BIN);
    cmd.args(args).stdout(stdout).stderr(Stdio::null());
    let opts = Options {
        deadline: Some(WAIT),
        own_group: true,
    };
    Supervised::spawn(args[0], &mut cmd, opts).unwrap()
}

/// Start `socket-demo ARGS` (a server) with its stdout on a pipe of the test's, read its
/// `ready:` line, and return the pipe's read end for the test to read the rest of the log when
/// it chooses: until then nobody reads it (a `Lines` reader would drain it at once).
pub fn spawn_with_log_pipe(sb: &Sandbox, args: &[&str]) -> (Supervised, std::fs::File) {
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let server = spawn_with_stdout(sb, args, write_end);
    let mut log = std::fs::File::from(read_end);
    let ready = first_line(&mut log);
    let want = format!("ready: pid {} ", server.pid());
    assert!(ready.starts_with(&want), "not {want}...: {ready:?}");
    (server, log)
}

/// Wait for the note a server's log writes once its reader is back, `(N lines dropped: stdout
/// was not being read)`, and return N.
pub fn dropped_lines(log: &mut Lines) -> u64 {
    let note = log
        .wait_for(
            |l| l.ends_with(" lines dropped: stdout was not being read)"),
            WAIT,
        )
        .unwrap();
    note[1..].split(' ').next().unwrap().parse().unwrap()
}

/// The first line from `reader`, without its newline (nor the CR a terminal puts before it),
/// read byte by byte so that nothing after it is taken from the descriptor.
pub fn first_line(reader: &mut dyn Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while reader.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).unwrap()
}

pub fn connect(sock: &Path) -> UnixStream {
    let s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {}: {e}", sock.display()));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Encode a request as a RESP array.
pub fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Read exactly one reply (status, error, integer, bulk; arrays of those) and return its raw
/// bytes as text, e.g. `+OK\r\n` or `$1\r\nv\r\n`. Panics on EOF.
pub fn read_reply(s: &mut impl Read) -> String {
    let mut raw = Vec::new();
    read_one(s, &mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

fn read_line(s: &mut impl Read, raw: &mut Vec<u8>) -> String {
    let start = raw.len();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => panic!(
                "EOF in the middle of a reply; got {:?}",
                String::from_utf8_lossy(raw)
            ),
            Ok(_) => {
                raw.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(raw)),
        }
    }
    String::from_utf8_lossy(&raw[start..]).trim_end().to_owned()
}

fn read_one(s: &mut impl Read, raw: &mut Vec<u8>) {
    let line = read_line(s, raw);
    match line.as_bytes().first() {
        Some(b'$') => {
            let n: i64 = line[1..].parse().unwrap();
            if n >= 0 {
                let mut body = vec![0u8; n as usize + 2];
                s.read_exact(&mut body).unwrap();
                raw.extend_from_slice(&body);
            }
        }
        Some(b'*') => {
            let n: i64 = line[1..].parse().unwrap();
            for _ in 0..n.max(0) {
                read_one(s, raw);
            }
        }
        _ => {}
    }
}

/// Send one request and return its raw reply.
pub fn call(s: &mut UnixStream, args: &[&str]) -> String {
    s.write_all(&resp(args)).unwrap();
    read_reply(s)
}

/// A bulk reply as raw text.
pub fn bulk(v: &str) -> String {
    format!("${}\r\n{v}\r\n", v.len())
}

/// Read until EOF (or an error such as ECONNRESET), returning what arrived.
pub fn read_to_eof(s: &mut impl Read) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// Run `socket-demo ARGS` to completion in the sandbox.
pub fn run(sb: &Sandbox, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut cmd: Command = sb.command(BIN);
    cmd.args(args);
    testkit::run(&mut cmd, input)
}
