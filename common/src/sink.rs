//! A descriptor we share with other processes, written without ever blocking.
//!
//! The one low-level piece under every line this workspace writes to a stdout or stderr that
//! someone else reads: [`crate::narrate`]'s trace, [`crate::out`]'s `say!` and daemon
//! [`crate::out::Output`]. It sits below both, so that neither depends on the other for it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::poll::{PollFd, PollFlags, poll};

/// A descriptor we share with other processes (our stdout or stderr), written without ever
/// blocking.
///
/// A process asleep in `write(2)` to a pipe, socket or terminal whose reader has stalled (a
/// frozen `| less`, a journald that fell behind, a terminal paused with Ctrl-S) runs nothing
/// else: not its event loop, not the self-pipe that says SIGTERM came. Setting `O_NONBLOCK`
/// on fd 1 or 2 itself is no way out: the flag belongs to the open file description, which
/// the user's shell and every sibling share, and they would all get EAGAIN from then on. So
/// each kind of descriptor gets the non-blocking write it allows on its own:
///
/// - a **pipe, FIFO or terminal** is opened a second time through `/proc/self/fd/N` with
///   `O_NONBLOCK | O_NOCTTY`: a new open file description of the same pipe or terminal, whose
///   flag is ours alone (and a terminal never becomes our controlling one);
/// - a **socket** gets `send(MSG_DONTWAIT | MSG_NOSIGNAL)`, non-blocking for that one call;
/// - a **regular file** (or anything we could not reopen) is written as it is: a file's
///   writes wait for the disk, never for a reader.
///
/// [`Sink::try_write`] never sleeps; [`Sink::wait_writable`] sleeps with a timeout, so the
/// caller decides how patient it is.
///
/// The sink holds what it writes to ([`Sink::new`] takes `std::io::stdout()`, not the number
/// 1): a bare descriptor number could be closed behind its back and reused by the next file
/// anyone opens, which would then receive our lines.
///
/// ```
/// use std::io::Read;
/// use common::sink::Sink;
///
/// let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
/// // The sink keeps the write end open for as long as it lives.
/// let sink = Sink::new(write_end);
/// assert_eq!(sink.try_write(b"hello\n"), Ok(6));
/// drop(sink);
/// let mut got = String::new();
/// std::fs::File::from(read_end).read_to_string(&mut got).unwrap();
/// assert_eq!(got, "hello\n");
/// ```
///
/// A borrowed descriptor is refused, since the sink could outlive what it borrows from:
///
/// ```compile_fail
/// use std::os::fd::AsFd;
/// let file = std::fs::File::create("/dev/null").unwrap();
/// let sink = common::sink::Sink::new(file.as_fd());
/// ```
pub struct Sink {
    fd: Box<dyn AsFd + Send + Sync>,
    kind: SinkKind,
}

enum SinkKind {
    Reopened(std::fs::File),
    Socket,
    Plain,
}

impl Sink {
    /// A sink for `fd`: `std::io::stdout()` or `std::io::stderr()`, or any descriptor it may
    /// keep (a pipe end, a file).
    pub fn new(fd: impl AsFd + Send + Sync + 'static) -> Sink {
        use nix::sys::stat::{SFlag, fstat};
        use std::os::unix::fs::OpenOptionsExt;

        let kind = match fstat(fd.as_fd()) {
            Ok(st) => match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
                SFlag::S_IFSOCK => SinkKind::Socket,
                SFlag::S_IFREG | SFlag::S_IFBLK => SinkKind::Plain,
                _ => std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                    .open(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
                    .map_or(SinkKind::Plain, SinkKind::Reopened),
            },
            // Not something fstat can look at (it always can, on an open descriptor): plain
            // writes, whose errors the caller sees.
            Err(_) => SinkKind::Plain,
        };
        Sink {
            fd: Box::new(fd),
            kind,
        }
    }

    /// The descriptor number, for messages.
    fn number(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Write what the descriptor takes now: the count of bytes written, or EAGAIN if it takes
    /// none (and EPIPE if the reader has gone). Never sleeps, except on a regular file.
    pub fn try_write(&self, bytes: &[u8]) -> nix::Result<usize> {
        use nix::sys::socket::{MsgFlags, send};
        loop {
            let result = match &self.kind {
                SinkKind::Reopened(file) => nix::unistd::write(file, bytes),
                SinkKind::Socket => send(
                    self.number(),
                    bytes,
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                ),
                SinkKind::Plain => nix::unistd::write(self.fd.as_fd(), bytes),
            };
            if result != Err(nix::errno::Errno::EINTR) {
                return result;
            }
        }
    }

    /// How the bytes get out, for the trace: `a non-blocking reopen of /proc/self/fd/1`.
    pub fn mechanism(&self) -> String {
        let fd = self.number();
        match self.kind {
            SinkKind::Reopened(_) => format!("a non-blocking reopen of /proc/self/fd/{fd}"),
            SinkKind::Socket => format!("send(MSG_DONTWAIT) on socket fd {fd}"),
            SinkKind::Plain => {
                format!("plain writes to fd {fd} (a file never waits for a reader)")
            }
        }
    }

    /// Wait until the descriptor has room, at most `timeout`: true if it has.
    pub fn wait_writable(&self, timeout: std::time::Duration) -> bool {
        let fd = self.as_fd();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
            match poll(&mut fds, crate::deadline::poll_timeout(left)) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
                Err(_) => return false,
            }
        }
    }
}

/// The descriptor to `poll` for `POLLOUT` (the reopened one, where there is one).
impl AsFd for Sink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            SinkKind::Reopened(file) => file.as_fd(),
            _ => self.fd.as_fd(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sink;
    use std::os::fd::AsRawFd;

    /// The unlucky instant of a sink that held a bare number: its descriptor closed behind
    /// it, and the next file opened takes that number. A sink that owns its descriptor keeps
    /// it open, so the new file gets another number and never sees the sink's bytes. (A
    /// regular file: the sink writes to its descriptor itself, where a pipe's would be
    /// reopened.)
    #[test]
    fn a_sink_keeps_its_descriptor_so_a_new_file_never_gets_its_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(tmp.path().join("log")).unwrap();
        let number = log.as_raw_fd();
        let sink = Sink::new(log);
        let other = std::fs::File::create(tmp.path().join("other")).unwrap();
        assert_ne!(
            other.as_raw_fd(),
            number,
            "the sink's number is still taken"
        );
        assert_eq!(sink.try_write(b"for the log\n"), Ok(12));
        drop(sink);
        assert_eq!(
            std::fs::read(tmp.path().join("log")).unwrap(),
            b"for the log\n"
        );
        assert_eq!(
            other.metadata().unwrap().len(),
            0,
            "the other file got nothing"
        );
    }
}
