//! The supervisor's stdout, written without ever blocking, whatever stdout is.
//!
//! (The same line buffer as signal-demo's `output.rs`, on the same `common::out::Sink`: the
//! buffer is a candidate for `common` too, now that two demos need it.)
//!
//! A daemon's output goes wherever its caller put it: a terminal, a file, a pipe into
//! `grep`, the socket journald hands a service. A reader that stops reading (a frozen
//! `less`, a stalled log shipper, a terminal paused with Ctrl-S) fills the pipe or socket
//! buffer, and an ordinary `write(2)` then sleeps until it drains. A daemon asleep in `write`
//! does not run its loop: it hands out no task, and it does not see its SIGTERM, whose handler
//! only sets a flag (SA_RESTART then restarts the `write`), so the stop waits until the reader
//! wakes up. So every write here is non-blocking, and waiting for room is one more descriptor
//! in the supervisor's `poll`:
//!
//! 1. At start, [`common::out::Sink`] looks at what stdout is (`fstat(1)`) and picks the
//!    non-blocking write that kind allows without touching the descriptor the shell shares
//!    with us: a pipe, FIFO or terminal is opened a second time through `/proc/self/fd/1`
//!    with `O_NONBLOCK` (a new open file description, so the flag is ours alone); a socket
//!    gets `send(MSG_DONTWAIT)`; a regular file is written as it is (it never waits for a
//!    reader). Setting `O_NONBLOCK` on fd 1 itself would change it for the shell and every
//!    sibling too, and could leave the shell with a non-blocking terminal after we exit.
//! 2. [`Output::line`] appends the line to what is waiting, then writes as much as the
//!    descriptor takes. What it does not take waits in a buffer of at most [`BACKLOG`] bytes,
//!    and the supervisor polls [`Output::waiting_fd`] for `POLLOUT` beside its queues and pidfds.
//!    A line that finds the buffer full is dropped and counted; one line says how many were
//!    lost, where they were lost, as soon as there is room again (the reader caught up, or the
//!    next line fits): `(12 lines dropped: stdout was not being read)`.
//!    A line is never torn: a line partly written is always finished first.
//! 3. At exit, [`Output::drain`] waits at most [`DRAIN`] for the reader (a second SIGTERM
//!    ends the process at once, see `common::cleanup::Shutdown`).
//!
//! A reader that has gone away (EPIPE) is not a stall: the error goes up, and the supervisor
//! stops its workers, removes its queues and exits quietly with status 0, as `run | head -3`
//! expects.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};

use common::out::Sink;
use common::{Error, Result};

/// Bytes of output that may wait for a slow reader before lines are dropped.
pub const BACKLOG: usize = 16 * 1024;
/// How long the supervisor waits at exit for a stalled reader to take its last lines.
pub const DRAIN: Duration = Duration::from_secs(1);

/// The supervisor's stdout.
pub struct Output {
    sink: Sink,
    /// Whole lines not yet written (the first one possibly in part).
    waiting: Vec<u8>,
    /// Lines dropped since the last note about it.
    dropped: u64,
}

impl Output {
    /// Look at stdout and pick the way to write it without blocking ([`Sink`]).
    pub fn new() -> Self {
        let sink = Sink::new(libc::STDOUT_FILENO);
        common::trace!("stdout: {}", sink.describe());
        Output {
            sink,
            waiting: Vec::new(),
            dropped: 0,
        }
    }

    /// Write one line, or keep it for later, or drop it if [`BACKLOG`] is full. Fails only if
    /// stdout is broken (EPIPE: the reader is gone) or unusable.
    pub fn line(&mut self, text: fmt::Arguments<'_>) -> Result<()> {
        let line = format!("{text}\n");
        // After a gap, the note that says so comes first, where the lost lines were.
        let note = self.note();
        if self.waiting.len() + note.len() + line.len() > BACKLOG {
            self.dropped += 1;
            common::trace!("stdout full: line dropped ({} so far)", self.dropped);
        } else {
            self.dropped = 0;
            self.waiting.extend_from_slice(note.as_bytes());
            self.waiting.extend_from_slice(line.as_bytes());
        }
        self.flush()
    }

    /// `(N lines dropped: …)` if lines were dropped since the last note, else nothing.
    fn note(&self) -> String {
        if self.dropped == 0 {
            return String::new();
        }
        format!(
            "({} lines dropped: stdout was not being read)\n",
            self.dropped
        )
    }

    /// The descriptor to poll for `POLLOUT`, if lines are waiting for room.
    pub fn waiting_fd(&self) -> Option<BorrowedFd<'_>> {
        (!self.waiting.is_empty()).then(|| self.sink.as_fd())
    }

    /// Write what is waiting, as far as the descriptor takes it without blocking; then, if
    /// lines were dropped, the note that says so.
    pub fn flush(&mut self) -> Result<()> {
        while !self.waiting.is_empty() {
            match self.sink.try_write(&self.waiting) {
                Ok(n) => {
                    self.waiting.drain(..n);
                }
                Err(Errno::EAGAIN) => return Ok(()),
                Err(e) => return Err(Error::sys("write", "stdout", e)),
            }
            if self.waiting.is_empty() && self.dropped > 0 {
                // The reader caught up: say now what it missed, not only with the next line.
                let note = self.note();
                self.dropped = 0;
                self.waiting.extend_from_slice(note.as_bytes());
            }
        }
        Ok(())
    }

    /// At exit: give a stalled reader up to [`DRAIN`] to take what is waiting. Whatever is
    /// still waiting then is lost, and said so on the trace.
    pub fn drain(&mut self) -> Result<()> {
        let end = Instant::now() + DRAIN;
        self.flush()?;
        while let Some(fd) = self.waiting_fd() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
            match poll(&mut fds, common::deadline::poll_timeout(left)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", "stdout", e)),
            }
            self.flush()?;
        }
        if !self.waiting.is_empty() || self.dropped > 0 {
            common::trace!(
                "exit with {} bytes unwritten and {} lines dropped: stdout was not being read",
                self.waiting.len(),
                self.dropped
            );
        }
        Ok(())
    }
}
