//! `socket-demo client`: send commands, print the replies as `redis-cli` does.
//!
//! With a command on the command line, it sends that one command and prints its reply; with
//! none, it reads one command per stdin line (words split like a shell would, so
//! `SET greeting "hello world"` works) and prints each reply: a script's client.
//! The exit status is 1 if any reply was an error, as with `redis-cli`. Like redis-cli, it
//! prints replies raw (`1000`, not `"1000"`) when stdout is not a terminal; `--raw` and
//! `--no-raw` force either.
//!
//! # System calls, in order
//!
//! 1. `socket(AF_UNIX | AF_INET, SOCK_STREAM | SOCK_CLOEXEC)`, blocking; with `--timeout`,
//!    `setsockopt(SO_SNDTIMEO)` and `setsockopt(SO_RCVTIMEO)`;
//! 2. `connect` to the server's path (or address; then `setsockopt(TCP_NODELAY)`);
//! 3. per command: `write` the request (RESP array of bulk strings), then `read` until a
//!    whole reply has arrived ([`crate::kv::protocol`] says when);
//! 4. `close` at exit.
//!
//! # Pitfalls
//!
//! - A stream socket has no message boundaries: one `read` may hold half a reply or several;
//!   replies are parsed from a buffer, never assumed to fit one `read`.
//! - A server that closes the connection while we write raises SIGPIPE, which would kill
//!   us silently; Rust ignores SIGPIPE, so the write fails with EPIPE, and the client then
//!   reads what the server said before closing (often the reason) before reporting.
//! - A server on another machine can go silent without closing anything: its link is down,
//!   or its machine has gone. Nothing then fails for minutes (TCP retries a SYN for about two,
//!   unacknowledged data for about fifteen), and a blocking `connect`, `write` or `read` just
//!   waits. With `--timeout S` each of them gives up after S seconds without progress (the
//!   socket timeouts of socket(7); see [`crate::sock::set_timeouts`]) and the client exits 1
//!   naming what it waited for.
//! - A reply's bytes come from another process: on a terminal they are shown quoted, with
//!   unprintable bytes escaped, as redis-cli does; `--raw` passes them through for scripts.

use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use common::{Context, Error, Result};

use crate::cli::ClientArgs;
use crate::kv::protocol::{self, Reply, ReplyParse};
use crate::sock::Target;

/// A connection to the server: blocking reads and writes, a buffer for replies that arrive
/// in pieces (or several at once).
pub struct Connection {
    // read(2)/write(2) work on any connected stream socket; a File is the plainest owner.
    sock: File,
    target: String,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// The server closed the connection while we were sending.
    closed_early: bool,
    /// `--timeout`: how long a read or write may make no progress (the socket's SO_RCVTIMEO
    /// and SO_SNDTIMEO), or None to wait as long as the kernel does.
    timeout: Option<Duration>,
}

impl Connection {
    /// Connect to `target`; with a `timeout`, see [`crate::sock::set_timeouts`].
    pub fn open(target: &Target, timeout: Option<Duration>) -> Result<Self> {
        let fd = target.connect(timeout)?;
        Ok(Connection {
            sock: File::from(fd),
            target: target.to_string(),
            buf: Vec::new(),
            out: Vec::new(),
            closed_early: false,
            timeout,
        })
    }

    /// Queue one request (sent by [`Connection::send`]).
    pub fn queue<S: AsRef<[u8]>>(&mut self, args: &[S]) {
        protocol::encode_request(args, &mut self.out);
    }

    /// Send every queued request in one write: a pipelined batch.
    ///
    /// If the server has already closed the connection (EPIPE, ECONNRESET), it may have said
    /// why first (`-ERR max number of clients reached`): that reply is kept for [`reply`] to
    /// return, rather than reporting a bare "Broken pipe", which would also read as a quiet
    /// success (exit 0) to `common::error::finish`.
    ///
    /// [`reply`]: Connection::reply
    pub fn send(&mut self) -> Result<()> {
        let res = self.sock.write_all(&self.out);
        self.out.clear();
        match res {
            Ok(()) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                self.closed_early = true;
                Ok(())
            }
            // SO_SNDTIMEO passed with the kernel's send buffer still full.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(Error::msg(format!(
                "{}: could not send the request within {:?} (--timeout)",
                self.target,
                self.timeout.unwrap_or_default()
            ))),
            Err(e) => Err(e).ctx("write", &self.target),
        }
    }

    /// Send one request and wait for its reply.
    pub fn call<S: AsRef<[u8]>>(&mut self, args: &[S]) -> Result<Reply> {
        self.queue(args);
        self.send()?;
        self.reply()
    }

    /// Wait for the next reply.
    pub fn reply(&mut self) -> Result<Reply> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match protocol::parse_reply(&self.buf) {
                ReplyParse::Complete(r, used) => {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                ReplyParse::Error(e) => {
                    return Err(Error::msg(format!("{}: bad reply: {e}", self.target)));
                }
                ReplyParse::Incomplete => {}
            }
            let n = loop {
                match self.sock.read(&mut chunk) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break 0,
                    // SO_RCVTIMEO passed without a byte.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Err(Error::msg(format!(
                            "{}: no reply within {:?} (--timeout)",
                            self.target,
                            self.timeout.unwrap_or_default()
                        )));
                    }
                    other => break other.ctx("read", &self.target)?,
                }
            };
            if n == 0 {
                let when = if self.closed_early {
                    "before our request was sent"
                } else {
                    "without a reply"
                };
                return Err(Error::msg(format!(
                    "{}: the server closed the connection {when}",
                    self.target
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// How a client prints replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// As redis-cli on a terminal: `"hello"`, `(integer) 1`, `(nil)`, numbered arrays.
    Formatted,
    /// As redis-cli in a pipe: `hello`, `1`, an empty line; one value per line.
    Raw,
}

impl Style {
    /// `forced` from `--raw` (true) or `--no-raw` (false); with neither, raw unless stdout is
    /// a terminal, as redis-cli decides.
    pub fn choose(forced: Option<bool>) -> Style {
        let raw = forced.unwrap_or_else(|| !io::stdout().is_terminal());
        if raw { Style::Raw } else { Style::Formatted }
    }

    /// Print one reply and flush it.
    pub fn print(self, out: &mut impl Write, reply: &Reply) -> Result<()> {
        let bytes = match self {
            Style::Formatted => format_reply(reply).into_bytes(),
            Style::Raw => format_reply_raw(reply),
        };
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .ctx("write", "stdout")
    }
}

/// Run the client role.
pub fn run(args: &ClientArgs) -> Result<ExitCode> {
    let target = Target::from_flags(args.unix.as_deref(), args.tcp.as_deref())?;
    let style = Style::choose(args.output.forced());
    let command = &args.command;
    let mut conn = Connection::open(&target, args.timeout.map(Duration::from_secs))?;
    let mut stdout = io::stdout().lock();
    let mut any_error = false;
    let mut show = |reply: &Reply, stdout: &mut io::StdoutLock<'_>| -> Result<()> {
        any_error |= matches!(reply, Reply::Error(_));
        style.print(stdout, reply)
    };
    if !command.is_empty() {
        let reply = conn.call(command)?;
        show(&reply, &mut stdout)?;
    } else {
        for (n, line) in io::stdin().lock().lines().enumerate() {
            let line = line.ctx("read", "stdin")?;
            let words = shell_words::split(&line)
                .map_err(|e| Error::msg(format!("stdin line {}: {e}", n + 1)))?;
            if words.is_empty() || words[0].starts_with('#') {
                continue;
            }
            let reply = conn.call(&words)?;
            show(&reply, &mut stdout)?;
        }
    }
    Ok(if any_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// The presentation of replies, as redis-cli prints them.

/// Format a reply as `redis-cli` does on a terminal (`cliFormatReplyTTY`): `"v"`,
/// `(integer) 3`, `(nil)`, `(error) ERR ...`, numbered arrays. Ends with a newline.
pub fn format_reply(reply: &Reply) -> String {
    let mut out = String::new();
    format_into(reply, "", &mut out);
    out
}

fn format_into(reply: &Reply, prefix: &str, out: &mut String) {
    match reply {
        Reply::Status(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Reply::Error(s) => {
            out.push_str("(error) ");
            out.push_str(s);
            out.push('\n');
        }
        Reply::Integer(n) => {
            out.push_str(&format!("(integer) {n}\n"));
        }
        Reply::Bulk(None) | Reply::Array(None) => out.push_str("(nil)\n"),
        Reply::Bulk(Some(b)) => {
            out.push_str(&repr(b));
            out.push('\n');
        }
        Reply::Array(Some(items)) if items.is_empty() => out.push_str("(empty array)\n"),
        Reply::Array(Some(items)) => {
            let width = items.len().to_string().len();
            // Nested arrays line up under their parent's first element.
            let nested = format!("{prefix}{}", " ".repeat(width + 2));
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(prefix);
                }
                out.push_str(&format!("{:>width$}) ", i + 1));
                format_into(item, &nested, out);
            }
        }
    }
}

/// A reply as `redis-cli --raw` prints it (what it prints when stdout is not a terminal):
/// values as they are, one per line, nothing quoted or labelled, so that a script gets
/// `1000`, not `"1000"` or `(integer) 1000`. Nothing (a nil, an empty array) is an empty line.
pub fn format_reply_raw(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    raw_into(reply, &mut out);
    if out.is_empty() {
        out.push(b'\n');
    }
    out
}

fn raw_into(reply: &Reply, out: &mut Vec<u8>) {
    match reply {
        Reply::Status(s) | Reply::Error(s) => out.extend_from_slice(s.as_bytes()),
        Reply::Integer(n) => protocol::decimal(out, *n),
        Reply::Bulk(Some(b)) => out.extend_from_slice(b),
        Reply::Bulk(None) | Reply::Array(None) => {}
        Reply::Array(Some(items)) => {
            for item in items {
                raw_into(item, out);
            }
            return;
        }
    }
    out.push(b'\n');
}

/// Quote bytes as `redis-cli` does (`sdscatrepr`): `"a\n\x00"`.
pub fn repr(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => s.push(char::from(b)),
            b => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}
