//! The servers' log: one line per event on stdout, never allowed to hold a server up.
//!
//! A server must not stop serving its clients because nobody reads its log, and it must
//! still hear SIGTERM. A blocking `write` to a stdout whose reader has stalled sleeps in the
//! kernel until the reader drains it, and neither the event loop nor the signal's self-pipe
//! is looked at meanwhile (the handlers use SA_RESTART, so the signal does not even interrupt
//! the call). Every kind of stdout can stall like that:
//!
//! - a **pipe** or FIFO whose reader has stopped (a stopped `| less`, a stuck collector);
//! - a **socket**: systemd hands a service's stdout to journald as a Unix stream socket, and a
//!   journald that falls behind (or is stopped) stops taking lines;
//! - a **terminal** whose output is stopped (Ctrl-S, a pty whose master nobody reads).
//!
//! So every write the log makes is non-blocking, through [`common::sink::Sink`], in the way
//! each kind allows without touching the descriptor we share with others (setting O_NONBLOCK on fd 1 itself would change it for
//! every process that shares the open file, the user's shell included):
//!
//! - a socket gets `send(MSG_DONTWAIT | MSG_NOSIGNAL)`: non-blocking for that one call;
//! - a pipe, a FIFO or a terminal is opened a second time through `/proc/self/fd/1`, with
//!   O_NONBLOCK (and O_NOCTTY, so a terminal never becomes our controlling one). The flag
//!   belongs to the new open file description alone;
//! - a regular file is written as it is: its writes wait for the disk, never for a reader,
//!   and reopening it would lose the shell's offset and O_APPEND. A full disk (ENOSPC) counts
//!   as a dropped line, like a full pipe.
//!
//! A line that meets a full stdout (EAGAIN) is dropped and counted, and the count is logged
//! once lines get through again. A line the kernel takes only in part (a stream socket or a
//! terminal with a little room) is finished before anything else is written, so lines never
//! interleave; the next lines are dropped while its tail waits. If the reader has gone
//! (EPIPE: the terminal closed, `| head` exited), the log goes quiet.
//!
//! Each line is one `write` of at most a few hundred bytes, under PIPE_BUF, so lines from
//! several processes sharing a pipe do not tear.

use common::sink::Sink;
use nix::errno::Errno;

/// The server's log on stdout.
pub struct Log {
    sink: Sink,
    /// The unsent tail of a line the kernel took only in part.
    tail: Vec<u8>,
    /// Lines dropped because stdout was full, not yet reported.
    dropped: u64,
    /// The reader has gone: write nothing more.
    broken: bool,
}

impl Log {
    /// A log on stdout.
    pub fn new() -> Self {
        Log {
            sink: Sink::new(std::io::stdout()),
            tail: Vec::new(),
            dropped: 0,
            broken: false,
        }
    }

    /// Write one line (or drop it, if stdout is full).
    pub fn line(&mut self, text: std::fmt::Arguments<'_>) {
        if self.broken {
            return;
        }
        if !self.finish_tail() {
            self.dropped += 1;
            return;
        }
        if self.dropped > 0 {
            let note = format!("({} log lines dropped: stdout was full)\n", self.dropped);
            if !self.put(note.as_bytes()) {
                self.dropped += 1;
                return;
            }
            self.dropped = 0;
        }
        if !self.put(format!("{text}\n").as_bytes()) {
            self.dropped += 1;
        }
    }

    /// Send what is left of a partly written line. True once nothing is left.
    fn finish_tail(&mut self) -> bool {
        while !self.tail.is_empty() {
            let written = self.sink.try_write(&self.tail);
            match self.taken(written) {
                Some(0) => return false,
                Some(n) => {
                    self.tail.drain(..n);
                }
                None => return true,
            }
        }
        true
    }

    /// Start writing `line`: false if it was dropped because stdout is full. A part the
    /// kernel did not take is kept for [`Log::finish_tail`].
    fn put(&mut self, line: &[u8]) -> bool {
        let written = self.sink.try_write(line);
        match self.taken(written) {
            Some(0) => false,
            Some(n) => {
                self.tail.extend_from_slice(&line[n..]);
                true
            }
            None => true,
        }
    }

    /// What a write's result means for the log: the bytes taken (0 if stdout is full), or
    /// None once the reader has gone for good.
    fn taken(&mut self, written: nix::Result<usize>) -> Option<usize> {
        match written {
            Ok(n) => Some(n),
            Err(Errno::EAGAIN | Errno::ENOSPC | Errno::EDQUOT) => Some(0),
            Err(_) => {
                // EPIPE and the like: nobody will read the log again.
                self.broken = true;
                self.tail.clear();
                None
            }
        }
    }
}
