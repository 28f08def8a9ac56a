//! Lines on stdout that a pipe reader sees at once, and that never panic.
//!
//! `println!` panics when stdout is a pipe whose reader has gone: Rust ignores SIGPIPE, so the
//! write fails with EPIPE instead of killing the process, and `println!` turns that failure
//! into a panic. [`say!`](crate::say) returns the error instead, named
//! `write stdout: Broken pipe`, which [`crate::error::finish`] turns into a quiet exit 0, as
//! `demo | head -1` expects.
//!
//! Each line is written with one `write_all` and flushed at once. Demos and tests read these
//! lines through pipes, where a line stuck in a buffer is a step nobody sees; and a daemon's
//! line must reach `| head -3` while the daemon is still running.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};

use crate::error::{Context, Error, Result};

/// Write one line to stdout and flush it. Use [`say!`](crate::say).
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    // The narration of the calls that led to this step comes before it, counts included.
    crate::narrate::flush();
    let mut text = args.to_string();
    text.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .ctx("write", "stdout")
}

/// The `path` subcommand of every demo: where its named objects live, so that scripts never
/// spell the runtime dir out (it is `$XDG_RUNTIME_DIR/ipc-demo` in a desktop session and
/// `/tmp/ipc-demo-$UID` without one; see [`crate::names`]).
///
/// `objects` lists each object as (the subcommand's value for it, its name, its path). With
/// `only`, just that object's path is printed, bare (`"$(fifo-demo path fifo)"`); without,
/// every object as `NAME PATH`. Paths are written as their bytes, not re-encoded, so a name
/// that is not UTF-8 still names the same file when a shell passes it on; everything goes out
/// in one write.
pub fn paths<T: PartialEq + Copy>(
    objects: &[(T, &str, &std::path::Path)],
    only: Option<T>,
) -> Result<std::process::ExitCode> {
    use std::os::unix::ffi::OsStrExt;
    let mut text = Vec::new();
    for &(object, name, path) in objects {
        match only {
            Some(wanted) if wanted != object => continue,
            Some(_) => {}
            None => {
                text.extend_from_slice(name.as_bytes());
                text.push(b' ');
            }
        }
        text.extend_from_slice(path.as_os_str().as_bytes());
        text.push(b'\n');
    }
    let mut out = io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .ctx("write", "stdout")?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The end of a demo's default run: its last line and its exit status.
///
/// `outcome` is the scenario's verdict, `ok: …` or `FAILED: …` (a check that did not hold),
/// or the error that stopped it, which is printed as `FAILED: <error>`. Exit 0 only for
/// `ok:`. A broken pipe is passed up unprinted (the reader of our output has gone; `finish`
/// makes it a quiet exit 0).
pub fn verdict(outcome: Result<String>) -> Result<std::process::ExitCode> {
    let line = match outcome {
        Ok(line) => line,
        Err(e) if e.is_broken_pipe() => return Err(e),
        Err(e) => format!("FAILED: {e}"),
    };
    crate::say!("{line}")?;
    Ok(if line.starts_with("ok:") {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// `say!("tick {n}: {msg}")?`: one flushed line on stdout; an error, never a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

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
/// use common::out::Sink;
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
/// let sink = common::out::Sink::new(file.as_fd());
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
    pub fn describe(&self) -> String {
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

/// Bytes that another process sent (a log record, a config value, a key), made safe to print
/// on a terminal or into a log file that a terminal will show.
///
/// A writer controls these bytes, and a terminal obeys some of them: ESC starts an escape
/// sequence that can recolour, retitle or clear the reader's screen, BEL rings, CR overwrites
/// the line, and the Unicode bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE…) reorder what
/// follows, so a line can display as something other than what it says. Each of those is
/// written as a visible escape instead: `\x1b`, `\x07`, `\u{202e}`; a byte that is not UTF-8
/// as `\xff`. Tab is kept. Printable text, the common case, is copied as it is, in one pass.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        out.extend_from_slice(bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\t' || !(c.is_control() || is_bidi_control(c)) {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            } else if c.is_ascii() {
                out.extend_from_slice(format!("\\x{:02x}", u32::from(c)).as_bytes());
            } else {
                out.extend_from_slice(format!("\\u{{{:x}}}", u32::from(c)).as_bytes());
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
    }
}

/// [`escape_into`] for one value: the text as it may be printed.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    // escape_into writes whole UTF-8 characters and ASCII escapes only.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The Unicode characters that change the display order of the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Bytes of output that may wait for a slow reader before lines are dropped.
pub const BACKLOG: usize = 16 * 1024;
/// How long the daemon waits at exit for a stalled reader to take its last lines.
pub const DRAIN: Duration = Duration::from_secs(1);

/// A daemon's stdout, written without ever blocking, whatever stdout is (signal-demo's daemon,
/// mqueue-demo's supervisor).
///
/// A daemon's output goes wherever its caller put it: a terminal, a file, a pipe into
/// `grep`, the socket journald hands a service. A reader that stops reading (a frozen
/// `less`, a stalled log shipper, a terminal paused with Ctrl-S) fills the pipe or socket
/// buffer, and an ordinary `write(2)` then sleeps until it drains. A daemon asleep in `write`
/// does not run its loop: it does not tick, and it does not read its signalfd, so SIGTERM
/// waits, blocked, until the reader wakes up (the kernel sleep in `pipe_write` is interruptible,
/// but our stop signals are blocked by design, and are read, not delivered). So every write
/// here is non-blocking, and waiting for room is one more descriptor in the daemon's `poll`:
///
/// 1. At start, [`common::out::Sink`] looks at what stdout is (`fstat(1)`) and picks the
///    non-blocking write that kind allows without touching the descriptor the shell shares
///    with us: a pipe, FIFO or terminal is opened a second time through `/proc/self/fd/1`
///    with `O_NONBLOCK` (a new open file description, so the flag is ours alone); a socket
///    gets `send(MSG_DONTWAIT)`; a regular file is written as it is (it never waits for a
///    reader). Setting `O_NONBLOCK` on fd 1 itself would change it for the shell and every
///    sibling too, and could leave the shell with a non-blocking terminal after we exit.
/// 2. [`Output::line`] appends the line to what is waiting, then writes as much as the
///    descriptor takes. What it does not take waits in a buffer of at most [`BACKLOG`] bytes,
///    and the daemon polls [`Output::waiting_fd`] for `POLLOUT` beside its own descriptors.
///    A line that finds the buffer full is dropped and counted; one line says how many were
///    lost, where they were lost, as soon as there is room again (the reader caught up, or the
///    next line fits): `(12 lines dropped: stdout was not being read)`.
///    A line is never torn: a line partly written is always finished first.
/// 3. At exit, [`Output::drain`] waits at most [`DRAIN`] for the reader, and stops waiting at
///    once if the descriptor it is given becomes readable (a daemon that reads its signals
///    from a signalfd passes it: a second SIGTERM means now).
///
/// A reader that has gone away (EPIPE) is not a stall: the error goes up, and the daemon stops
/// quietly with status 0, as `daemon | head -3` expects.
pub struct Output {
    sink: Sink,
    /// Whole lines not yet written (the first one possibly in part).
    waiting: Vec<u8>,
    /// Lines dropped since the last note about it.
    dropped: u64,
}

impl Output {
    /// Look at stdout and pick the way to write it without blocking ([`Sink`]).
    pub fn stdout() -> Self {
        let sink = Sink::new(io::stdout());
        crate::trace!("stdout: {}", sink.describe());
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
            crate::trace!("stdout full: line dropped ({} so far)", self.dropped);
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

    /// At exit: give a stalled reader up to [`DRAIN`] to take what is waiting, but stop at once
    /// if `stop` (a signalfd) becomes readable: another signal means "now". Whatever is
    /// still waiting then is lost, and said so on the trace.
    pub fn drain(&mut self, stop: Option<BorrowedFd<'_>>) -> Result<()> {
        let end = Instant::now() + DRAIN;
        self.flush()?;
        while let Some(fd) = self.waiting_fd() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds = vec![PollFd::new(fd, PollFlags::POLLOUT)];
            fds.extend(stop.map(|s| PollFd::new(s, PollFlags::POLLIN)));
            match poll(&mut fds, crate::deadline::poll_timeout(left)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", "stdout", e)),
            }
            if fds
                .get(1)
                .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()))
            {
                break;
            }
            self.flush()?;
        }
        if !self.waiting.is_empty() || self.dropped > 0 {
            crate::trace!(
                "exit with {} bytes unwritten and {} lines dropped: stdout was not being read",
                self.waiting.len(),
                self.dropped
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Sink, escape};
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

    #[test]
    fn printable_text_is_unchanged() {
        assert_eq!(escape(b"pid=42 hello\tworld"), "pid=42 hello\tworld");
        assert_eq!(
            escape("caf\u{e9} \u{1f600}".as_bytes()),
            "caf\u{e9} \u{1f600}"
        );
    }

    #[test]
    fn terminal_controls_are_made_visible() {
        assert_eq!(
            escape(b"\x1b[2Jboom\x07\r\n"),
            "\\x1b[2Jboom\\x07\\x0d\\x0a"
        );
        assert_eq!(escape(b"\x7f"), "\\x7f");
        assert_eq!(escape("a\u{85}b".as_bytes()), "a\\u{85}b");
    }

    #[test]
    fn bidi_overrides_and_bad_utf8_are_made_visible() {
        assert_eq!(
            escape("evil\u{202e}txt.exe".as_bytes()),
            "evil\\u{202e}txt.exe"
        );
        assert_eq!(
            escape("\u{2066}x\u{2069}".as_bytes()),
            "\\u{2066}x\\u{2069}"
        );
        assert_eq!(escape(b"ok\xff\xfe"), "ok\\xff\\xfe");
    }
}
