//! `socket-demo dgram-client`: send commands to the datagram server from a socket bound to a
//! path of our own, and print the replies as `client` does (see [`super`] for the calls and
//! the pitfalls).

use std::io::{self, BufRead};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::{Context, Error, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, connect, recv, send, socket};

use super::{MAX_REPLY_DATAGRAM, MAX_REQUEST_DATAGRAM, default_path};
use crate::cli::DgramClientArgs;
use crate::client::Style;
use crate::kv::protocol::{self, Reply, ReplyParse};
use crate::sock;

/// Run the datagram client: one command from the arguments, or one per stdin line.
pub fn run(args: &DgramClientArgs) -> Result<ExitCode> {
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
    shutdown.err_if_requested()?;
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
        // A stop signal: Error::Interrupted, which unwinds through the guard that removes our
        // bound socket before `main` exits 128 + its number.
        Ok(_) | Err(Errno::EINTR) => shutdown.err_if_requested()?,
        Err(e) => return Err(Error::sys("poll", object, e)),
    }
    // Ready, timed out or interrupted: the caller's next call, and the deadline check on the
    // next round, tell which.
    Ok(Waited::TryAgain)
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
    shutdown.err_if_requested()?;
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
