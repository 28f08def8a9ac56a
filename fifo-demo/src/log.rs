//! The `log` role: send records to the daemon through its FIFO.
//!
//! The calls, in order: `lstat` (a FIFO of ours stands at the path, see
//! [`crate::fifo::existing_fifo`]) -> `open(O_WRONLY | O_NONBLOCK)` (ENXIO: no daemon) +
//! `fstat` -> one `write` of at most PIPE_BUF bytes per record; EAGAIN -> `poll(POLLOUT)` and
//! the same write again; EPIPE -> `ioctl(FIONREAD)`.
//!
//! # Pitfalls
//!
//! - The FIFO is opened `O_WRONLY | O_NONBLOCK`. A blocking open for writing would wait,
//!   possibly forever, for a reader; the non-blocking one fails at once with ENXIO when no
//!   daemon has the FIFO open, and we say so.
//! - Each record is one `write()` of at most PIPE_BUF bytes (see [`crate::protocol`]), so the
//!   records of concurrent writers never interleave.
//! - When the pipe is full, a non-blocking write of at most PIPE_BUF bytes writes nothing and
//!   fails with EAGAIN (it is all or nothing, never a torn half). We then sleep in `poll` until
//!   the pipe has room (POLLOUT) and write the same record again: no record is dropped, and
//!   no CPU is spent spinning.
//! - If the daemon dies, the write fails with EPIPE (Rust ignores SIGPIPE, so the signal does
//!   not kill us first) and we stop with an error that says how many records got through.
//!   A successful write only means the kernel took the record into the pipe: if the daemon
//!   closed its end with bytes still unread, the last records written are lost with them. The
//!   pipe outlives its reader while we hold our end, so `ioctl(FIONREAD)` can still count those
//!   bytes, and the error says whether the count it gives is exact.

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{Mode, fstat};

use crate::cli::LogArgs;
use crate::fifo::{existing_fifo, fifo_path};
use crate::protocol::{self, END};

/// Run the `log` role.
pub fn run(args: &LogArgs) -> Result<ExitCode> {
    let fifo = fifo_path(args.fifo.as_deref())?;
    let mut writer = Writer::open(&fifo, args.fifo.as_deref())?;
    if !args.message.is_empty() {
        // The words form one message, as `logger(1)` does it.
        let words: Vec<&[u8]> = args.message.iter().map(|w| w.as_bytes()).collect();
        let message = words.join(&b' ');
        let message = message.strip_suffix(b"\n").unwrap_or(&message);
        // A newline would end the record early: each line becomes a record of its own.
        for line in message.split(|&b| b == END) {
            writer.send(line).map_err(|e| e.into_error(None))?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    // One record per line of stdin. An over-long line is reported and skipped, the others are
    // still sent, and the exit status says that something was refused.
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    let (mut number, mut refused) = (0u64, 0u64);
    loop {
        line.clear();
        if input.read_until(END, &mut line).ctx("read", "stdin")? == 0 {
            break;
        }
        number += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        match writer.send(text) {
            Ok(()) => {}
            Err(SendError::TooLong(e)) => {
                refused += 1;
                let _ = writeln!(std::io::stderr(), "fifo-demo: stdin line {number}: {e}");
            }
            Err(e) => return Err(e.into_error(Some(number))),
        }
    }
    if refused > 0 {
        return Err(Error::msg(format!(
            "{refused} of {number} lines refused as too long; the other {} were sent",
            number - refused
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a record was not sent.
enum SendError {
    TooLong(protocol::TooLong),
    Fatal(Error),
}

impl From<Error> for SendError {
    fn from(e: Error) -> Self {
        SendError::Fatal(e)
    }
}

impl SendError {
    fn into_error(self, line: Option<u64>) -> Error {
        match (self, line) {
            (SendError::TooLong(e), None) => Error::msg(e.to_string()),
            (SendError::TooLong(e), Some(n)) => Error::msg(format!("stdin line {n}: {e}")),
            (SendError::Fatal(e), _) => e,
        }
    }
}

/// The write end of the daemon's FIFO.
struct Writer {
    fd: OwnedFd,
    fifo: PathBuf,
    pid: u32,
    record: Vec<u8>,
    sent: u64,
}

impl Writer {
    fn open(fifo: &Path, arg: Option<&Path>) -> Result<Writer> {
        let absent = || {
            Error::msg(format!(
                "no log daemon is reading {} (no FIFO there)",
                fifo.display()
            ))
        };
        // Never follow a symlink or write into a regular file someone put at the path.
        if !existing_fifo(fifo, arg)? {
            return Err(absent());
        }
        let fd = match open(
            fifo,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENXIO) => {
                trace!("open({}, O_WRONLY|O_NONBLOCK) -> ENXIO", fifo.display());
                return Err(Error::msg(format!(
                    "no log daemon is reading {}",
                    fifo.display()
                )));
            }
            Err(Errno::ENOENT) => return Err(absent()),
            Err(e) => return Err(Error::sys("open", fifo.display(), e)),
        };
        trace!("open({}, O_WRONLY|O_NONBLOCK) -> ok", fifo.display());
        let st = fstat(&fd).ctx("fstat", fifo.display())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return Err(Error::msg(format!("{}: is not a FIFO", fifo.display())));
        }
        Ok(Writer {
            fd,
            fifo: fifo.to_owned(),
            pid: std::process::id(),
            record: Vec::with_capacity(protocol::PIPE_BUF),
            sent: 0,
        })
    }

    /// Send one record with a single `write()`, waiting for room if the pipe is full.
    fn send(&mut self, message: &[u8]) -> Result<(), SendError> {
        protocol::encode(self.pid, message, &mut self.record).map_err(SendError::TooLong)?;
        loop {
            match nix::unistd::write(&self.fd, &self.record) {
                Ok(n) if n == self.record.len() => {
                    trace!("write({}, {n} bytes) -> {n}", self.fifo.display());
                    self.sent += 1;
                    return Ok(());
                }
                // POSIX rules this out for a write of at most PIPE_BUF bytes to a pipe; if it
                // ever happened the record would be torn, so say so rather than go on.
                Ok(n) => {
                    return Err(Error::msg(format!(
                        "write {}: short write ({n} of {} bytes); the record is torn",
                        self.fifo.display(),
                        self.record.len()
                    ))
                    .into());
                }
                Err(Errno::EAGAIN) => self.wait_for_room()?,
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE) => {
                    let lost = match unread_bytes(&self.fd) {
                        Some(0) => String::new(),
                        Some(n) => format!(
                            "; but the daemon closed the FIFO with {n} bytes unread, so the \
                             last of them may not have been logged"
                        ),
                        None => "; whether the daemon read them all is unknown".to_owned(),
                    };
                    return Err(Error::msg(format!(
                        "write {}: the log daemon stopped reading (broken pipe); \
                         {} records were sent, the rest were not{lost}",
                        self.fifo.display(),
                        self.sent
                    ))
                    .into());
                }
                Err(e) => return Err(Error::sys("write", self.fifo.display(), e).into()),
            }
        }
    }

    /// The pipe is full: sleep until it has room for a record (or the reader is gone, which
    /// `poll` reports as POLLERR and the next write as EPIPE).
    fn wait_for_room(&self) -> Result<()> {
        trace!(
            "write({}) -> EAGAIN (pipe full); poll(POLLOUT)",
            self.fifo.display()
        );
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(Error::sys("poll", self.fifo.display(), e)),
        }
    }
}

/// How many bytes are in the pipe and not yet read (`ioctl(FIONREAD)`, which works on either end
/// of a pipe); None if the kernel will not say.
fn unread_bytes(fd: &OwnedFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to `n`, alive and
    // writable for the whole call; the descriptor is ours and open. (nix has no wrapper.)
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    (rc == 0).then(|| usize::try_from(n).ok()).flatten()
}
