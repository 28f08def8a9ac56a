//! `socket-demo dgram-server` / `dgram-client`: the same commands over a Unix datagram socket.
//!
//! A datagram socket keeps message boundaries, so there is no parsing across reads: one
//! `recvmsg` is one whole request, and one `sendto` one whole reply. There is no connection
//! either, so the server learns where to reply from the sender's address, which exists only
//! if the client *bound* its socket to a path. The client therefore binds a unique path in the
//! runtime dir (and removes it when it exits, on Ctrl-C too), and `connect`s its socket to the
//! server's path, which both sets the default destination and makes the kernel drop datagrams
//! from anyone else.
//!
//! # System calls, in order
//!
//! Server: `socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`, `umask(0177)` +
//! `bind`, the ready line, then loop: `poll` (socket and shutdown pipe), `recvmsg` until
//! EAGAIN, `sendto` the sender's path. Client: `socket`, `bind` to its own path, `connect` to
//! the server's, then per command `send(MSG_DONTWAIT)` (`poll` for POLLOUT on EAGAIN), `poll` +
//! `recv` of the reply; `unlink` of its path at exit.
//!
//! # Pitfalls
//!
//! - A datagram larger than the receive buffer is silently truncated; `recvmsg` reports
//!   MSG_TRUNC, and the server refuses such a request instead of executing half of it.
//! - A client that stops reading fills its receive queue, and a blocking `sendto` would then
//!   stall the server for everyone. The server's socket is non-blocking: that reply is dropped
//!   and logged.
//! - A reply too large for one datagram (EMSGSIZE) is replaced by an error reply.
//! - A sender that never bound its socket has no address to reply to; its datagram is logged
//!   and dropped (see [`has_address`]: its address must not even be looked at).
//! - A server that stops reading (stopped, or just busy) lets its queue fill up: Linux queues
//!   at most `net.unix.max_dgram_qlen` datagrams (10 by default) per socket. A blocking `send`
//!   to it then sleeps in the kernel, where neither a timeout nor Ctrl-C reaches it (SA_RESTART
//!   restarts the call after the handler). The client sends with MSG_DONTWAIT and, on EAGAIN,
//!   `poll`s for POLLOUT beside the shutdown self-pipe, under the same deadline as the reply.

use std::io::{self, BufRead, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::out::Output;
use common::{Context, Error, Result, tell};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, SockaddrLike, UnixAddr, connect, recv, recvmsg,
    send, sendto, socket,
};

use crate::cli::{DgramClientArgs, DgramServerArgs};
use crate::client::Style;
use crate::kv::protocol::{self, Parse, Reply, ReplyParse};
use crate::kv::{self, Session, State};
use crate::sock;

/// The largest request datagram the server accepts.
pub const MAX_REQUEST_DATAGRAM: usize = 64 * 1024;
/// The largest reply datagram a client can receive.
const MAX_REPLY_DATAGRAM: usize = 256 * 1024;

fn default_path(path: Option<&Path>) -> Result<PathBuf> {
    match path {
        Some(p) => Ok(p.to_owned()),
        None => common::names::runtime_path(sock::DEFAULT_DGRAM_SOCKET),
    }
}

/// Run the datagram server until SIGINT, SIGTERM or SIGHUP.
pub fn server(args: &DgramServerArgs) -> Result<ExitCode> {
    // SIGHUP too: closing the terminal it runs in must not leave its socket file behind.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    let path = default_path(args.path.as_deref())?;
    // A log for people, not data: a reader that goes away silences it, the server serves on.
    let mut log = Output::stdout().quiet_when_gone();
    let lock = args
        .pid_file
        .clone()
        .unwrap_or_else(|| sock::pid_path_for(&path));
    let bound = sock::bind_unix(&path, SockType::Datagram, &lock)?;
    if bound.replaced_stale {
        tell!(log, "removed stale socket {}", path.display())?;
    }
    let fd = bound.fd;
    let _guard = bound.guard;
    // Bound: a datagram sent now is queued for us. The line goes through the log, which never
    // blocks, rather than `lifecycle::ready`, which waits for a slow reader.
    let reach = format!("socket {}", path.display());
    tell!(log, "{}", common::lifecycle::ready_line(&reach))?;
    common::lifecycle::notify_ready(&reach)?;
    let mut state = State::new(0);
    let mut buf = vec![0u8; MAX_REQUEST_DATAGRAM];
    let mut out = Vec::new();
    while !shutdown.requested() {
        let mut fds = vec![
            PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
        ];
        // Log lines waiting for a reader that has fallen behind: wake when it takes more.
        fds.extend(log.waiting_fd().map(|w| PollFd::new(w, PollFlags::POLLOUT)));
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", path.display(), e)),
        }
        let room = fds
            .get(2)
            .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()));
        drop(fds);
        if room {
            log.flush()?;
        }
        // Drain every datagram that is queued, then poll again.
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let (len, truncated, from) =
                match recvmsg::<UnixAddr>(fd.as_raw_fd(), &mut iov, None, MsgFlags::MSG_DONTWAIT) {
                    Ok(m) => (m.bytes, m.flags.contains(MsgFlags::MSG_TRUNC), m.address),
                    Err(Errno::EAGAIN | Errno::EINTR) => break,
                    Err(e) => return Err(Error::sys("recvmsg", path.display(), e)),
                };
            let Some(from) = from.filter(has_address) else {
                tell!(
                    log,
                    "datagram from an unbound socket: no address to reply to; dropped"
                )?;
                continue;
            };
            // The sender chose its path: escape it before it reaches a terminal.
            let peer = from.path().map_or_else(
                || "abstract socket".to_owned(),
                |p| common::out::escape(p.as_os_str().as_bytes()),
            );
            common::trace!(
                "recvmsg({}) -> {len} bytes from {peer} {}",
                path.display(),
                sock::preview(&buf[..len])
            );
            out.clear();
            if truncated {
                protocol::error(
                    &mut out,
                    &format!(
                        "ERR Protocol error: datagram larger than {MAX_REQUEST_DATAGRAM} bytes"
                    ),
                );
            } else {
                answer(&buf[..len], &mut state, &mut out);
            }
            reply(&fd, &from, &peer, &mut out, &mut log)?;
        }
    }
    common::lifecycle::stopping();
    let signal = shutdown.signal().map_or("signal", |s| s.as_str());
    tell!(log, "shutting down on {signal}")?;
    log.drain(None)?;
    Ok(ExitCode::SUCCESS)
}

/// True if a sender's address, as `recvmsg` filled it in, names a socket to reply to.
///
/// A socket that never bound (Python's `socket(AF_UNIX, SOCK_DGRAM).sendto(...)`, `socat -
/// UNIX-SENDTO:...`) has no address, and the kernel reports a length of 0: not even the
/// family. nix's accessors (`path`, `is_unnamed`) assert that the length covers the family
/// and would panic, so the length is checked before the address is asked anything. Anything
/// longer than the family carries a path or an abstract name.
fn has_address(addr: &UnixAddr) -> bool {
    addr.len() as usize > std::mem::offset_of!(libc::sockaddr_un, sun_path)
}

/// Execute the one request in `dgram`, appending the reply to `out`.
fn answer(dgram: &[u8], state: &mut State, out: &mut Vec<u8>) {
    match protocol::parse(dgram) {
        Parse::Complete(args, used) if used == dgram.len() => {
            if args.is_empty() {
                protocol::error(out, "ERR empty request");
            } else {
                // Each datagram stands alone: a session of its own. (QUIT means nothing
                // without a connection; it still answers +OK.)
                kv::execute(state, &mut Session::datagram(), &args, out);
            }
        }
        Parse::Complete(..) => protocol::error(
            out,
            "ERR Protocol error: one request per datagram (extra bytes after it)",
        ),
        Parse::Incomplete => protocol::error(
            out,
            "ERR Protocol error: incomplete request (one whole request per datagram)",
        ),
        Parse::Error(e) => protocol::error(out, &format!("ERR {e}")),
    }
}

/// Send `out` to the client at `to` (`peer` in the log), never waiting for it.
fn reply(
    fd: &OwnedFd,
    to: &UnixAddr,
    peer: &str,
    out: &mut Vec<u8>,
    log: &mut Output,
) -> Result<()> {
    let flags = MsgFlags::MSG_DONTWAIT;
    match sendto(fd.as_raw_fd(), out, to, flags) {
        Ok(_) => {
            common::trace!(
                "sendto({peer}, {}) -> {} bytes",
                sock::preview(out),
                out.len()
            );
            Ok(())
        }
        Err(Errno::EMSGSIZE) => {
            let size = out.len();
            out.clear();
            protocol::error(
                out,
                &format!("ERR reply of {size} bytes is too large for one datagram"),
            );
            let _ = sendto(fd.as_raw_fd(), out, to, flags);
            Ok(())
        }
        Err(Errno::EAGAIN) => {
            tell!(
                log,
                "client {peer} is not reading its replies; reply dropped"
            )
        }
        Err(e @ (Errno::ECONNREFUSED | Errno::ENOENT)) => {
            tell!(log, "client {peer} is gone ({}); reply dropped", e.desc())
        }
        Err(e) => tell!(log, "sendto {peer}: {}", e.desc()),
    }
}

/// Run the datagram client: one command from the arguments, or one per stdin line.
pub fn client(args: &DgramClientArgs) -> Result<ExitCode> {
    // SIGHUP too: the client's own bound socket must go when its terminal closes.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    let timeout = Duration::from_secs(args.timeout);
    let style = Style::choose(args.output.forced());
    let command = &args.command;
    let server = default_path(args.path.as_deref())?;
    let server_addr = sock::unix_addr(&server)?;
    let own =
        common::names::runtime_path(&format!("{}.sock", common::names::unique("dgram-client")))?;
    let own_addr = sock::unix_addr(&own)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("socket", "AF_UNIX")?;
    // Our own address, for the replies: mode 0600 like the server's. Every send and receive on
    // this socket is MSG_DONTWAIT and waits in `poll` instead (see `send_request`), so that
    // `--timeout` and Ctrl-C can end any wait and this guard gets to remove the file.
    let _guard = sock::bind_private(&fd, &own, &own_addr)?;
    connect(fd.as_raw_fd(), &server_addr).map_err(|e| match e {
        Errno::ENOENT | Errno::ECONNREFUSED => Error::msg(format!(
            "no datagram server at {} ({})",
            server.display(),
            e.desc()
        )),
        e => Error::sys("connect", server.display(), e),
    })?;
    common::trace!("connect({}) (default destination)", server.display());
    let mut stdout = io::stdout().lock();
    let mut any_error = false;
    let mut call = |words: &[String]| -> Result<()> {
        let mut req = Vec::new();
        protocol::encode_request(words, &mut req);
        if req.len() > MAX_REQUEST_DATAGRAM {
            return Err(Error::msg(format!(
                "request of {} bytes is over the {MAX_REQUEST_DATAGRAM}-byte datagram limit",
                req.len()
            )));
        }
        // One deadline for the whole command: waiting for room in the server's queue and
        // waiting for the reply both count against `--timeout`.
        let end = Instant::now() + timeout;
        send_request(&fd, &req, &server, end, timeout, &shutdown)?;
        let reply = receive(&fd, &server, end, timeout, &shutdown)?;
        any_error |= matches!(reply, Reply::Error(_));
        style.print(&mut stdout, &reply)
    };
    if !command.is_empty() {
        call(command)?;
    } else {
        // Our own buffered reader on a duplicate of fd 0 (F_DUPFD_CLOEXEC): its buffer, unlike
        // that of `io::stdin()`, can be asked whether a line is already waiting in it.
        let stdin = io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ctx("dup", "stdin")?;
        let mut input = io::BufReader::new(std::fs::File::from(stdin));
        let mut line = String::new();
        for n in 1.. {
            // Wait for input beside the shutdown self-pipe: a `read` blocked on a terminal
            // would not notice Ctrl-C (SA_RESTART), and a second one would exit at once,
            // without removing our socket file.
            if input.buffer().is_empty() {
                wait_for(
                    input.get_ref().as_fd(),
                    PollFlags::POLLIN,
                    "stdin",
                    None,
                    &shutdown,
                )?;
            }
            line.clear();
            if input.read_line(&mut line).ctx("read", "stdin")? == 0 {
                break;
            }
            let words = shell_words::split(&line)
                .map_err(|e| Error::msg(format!("stdin line {n}: {e}")))?;
            if !words.is_empty() && !words[0].starts_with('#') {
                call(&words)?;
            }
        }
    }
    Ok(if any_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The error for a wait that SIGINT, SIGTERM or SIGHUP ended. Returning it (rather than exiting) lets the
/// guard remove our bound socket on the way out.
fn interrupted(shutdown: &Shutdown) -> Error {
    Error::msg(format!(
        "interrupted by {}",
        shutdown.signal().map_or("a signal", |sig| sig.as_str())
    ))
}

/// How a [`wait_for`] ended when no signal asked us to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waited {
    /// The socket may be ready (or poll was interrupted): try the non-blocking call again.
    /// Readiness is only a hint; the MSG_DONTWAIT call that follows decides.
    TryAgain,
    /// `end` has passed.
    DeadlinePassed,
}

/// Wait until `fd` (named `object` in errors) reports one of `events`, a shutdown signal
/// arrives, or `end` passes (if there is one).
///
/// The signal handlers are installed with SA_RESTART, so a signal does not interrupt `poll`
/// either; the self-pipe in the same poll set is what wakes us.
fn wait_for(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    object: impl std::fmt::Display,
    end: Option<Instant>,
    shutdown: &Shutdown,
) -> Result<Waited> {
    if shutdown.requested() {
        return Err(interrupted(shutdown));
    }
    let timeout = match end {
        None => PollTimeout::NONE,
        Some(end) => {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Waited::DeadlinePassed);
            }
            common::deadline::poll_timeout(left)
        }
    };
    let mut fds = [
        PollFd::new(fd, events),
        PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
    ];
    match poll(&mut fds, timeout) {
        Ok(_) | Err(Errno::EINTR) if shutdown.requested() => Err(interrupted(shutdown)),
        // Ready, timed out or interrupted: the caller's next call, and the deadline check on
        // the next round, tell which.
        Ok(_) | Err(Errno::EINTR) => Ok(Waited::TryAgain),
        Err(e) => Err(Error::sys("poll", object, e)),
    }
}

/// Send one request datagram, waiting until `end` for room in the server's queue.
fn send_request(
    fd: &OwnedFd,
    req: &[u8],
    server: &Path,
    end: Instant,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<()> {
    // A signal that came while we were reading stdin: the user has given up on this request.
    if shutdown.requested() {
        return Err(interrupted(shutdown));
    }
    let mut said_full = false;
    loop {
        match send(fd.as_raw_fd(), req, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => {
                common::trace!("send({}) -> {n} bytes", server.display());
                return Ok(());
            }
            // The server's queue is full (or our own send buffer is). A connected datagram
            // socket reports POLLOUT once the server has taken a datagram off its queue.
            Err(Errno::EAGAIN) => {
                if !said_full {
                    common::trace!(
                        "send({}) -> EAGAIN: the server's queue is full; poll for POLLOUT",
                        server.display()
                    );
                    said_full = true;
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("send", server.display(), e)),
        }
        if wait_for(
            fd.as_fd(),
            PollFlags::POLLOUT,
            server.display(),
            Some(end),
            shutdown,
        )? == Waited::DeadlinePassed
        {
            return Err(Error::msg(format!(
                "send {}: the server's queue stayed full for {timeout:?}",
                server.display()
            )));
        }
    }
}

/// Receive the reply to the request just sent, waiting until `end`.
fn receive(
    fd: &OwnedFd,
    server: &Path,
    end: Instant,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Reply> {
    let mut buf = vec![0u8; MAX_REPLY_DATAGRAM];
    loop {
        if wait_for(
            fd.as_fd(),
            PollFlags::POLLIN,
            server.display(),
            Some(end),
            shutdown,
        )? == Waited::DeadlinePassed
        {
            return Err(Error::msg(format!(
                "no reply from {} within {timeout:?}",
                server.display()
            )));
        }
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => {
                common::trace!("recv({}) -> {n} bytes", server.display());
                return match protocol::parse_reply(&buf[..n]) {
                    ReplyParse::Complete(r, _) => Ok(r),
                    _ => Err(Error::msg(format!(
                        "{}: reply is not one RESP value",
                        server.display()
                    ))),
                };
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            // The server's socket went away after our send (ECONNREFUSED on a connected
            // datagram socket).
            Err(e) => return Err(Error::sys("recv", server.display(), e)),
        }
    }
}
