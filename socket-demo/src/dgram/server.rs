//! `socket-demo dgram-server`: the commands over a Unix datagram socket, one request per
//! datagram, each reply sent to the sender's own bound path (see [`super`] for the calls and
//! the pitfalls).

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::cleanup::Shutdown;
use common::out::Output;
use common::{Error, Result, tell};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{MsgFlags, SockType, SockaddrLike, UnixAddr, recvmsg, sendto};

use super::{MAX_REQUEST_DATAGRAM, default_path};
use crate::cli::DgramServerArgs;
use crate::kv::protocol::{self, Parse};
use crate::kv::{self, Session, State};
use crate::sock;

/// Run the datagram server until SIGINT, SIGTERM or SIGHUP.
pub fn run(args: &DgramServerArgs) -> Result<ExitCode> {
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
pub(super) fn has_address(addr: &UnixAddr) -> bool {
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
