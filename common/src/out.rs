//! Lines on stdout and stderr that a reader sees at once, that never panic, and that never
//! hold up a stop.
//!
//! Two ways to write a line, one per kind of line:
//!
//! - **A step, a result, a verdict** ([`say!`](crate::say)): every line matters, so it waits
//!   for a slow reader, but never past a stop signal. `println!` would panic when stdout is a
//!   pipe whose reader has gone (Rust ignores SIGPIPE, so the write fails with EPIPE, and
//!   `println!` turns that into a panic); `say!` returns the error instead, named `write
//!   stdout: Broken pipe`, which [`crate::error::finish`] turns into a quiet exit 0, as `demo
//!   | head -1` expects. And where `write(2)` would sleep on a stdout whose reader has stopped
//!   reading (a stopped `| less`), deaf to the SIGTERM that the process's
//!   [`crate::cleanup::Shutdown`] turns into a flag (its handlers restart the write,
//!   SA_RESTART), `say!` sleeps in `poll` on stdout *and* that shutdown's self-pipe. Once a
//!   stop signal has come, it waits at most [`DRAIN`] more for room (a slow reader still gets
//!   a stopping role's last lines), then gives up with [`Error::Interrupted`]: the role
//!   unwinds through its guards and exits 128 + N. (A process without a `Shutdown` dies of
//!   the signal anyway.)
//! - **A daemon's status line** ([`Output`], [`tell!`](crate::tell)): the daemon's service
//!   comes first, so a line never waits at all. What the reader does not take waits in a
//!   bounded backlog that the daemon's `poll` loop offers again; past it lines are dropped,
//!   counted and reported. On stdout or on stderr.
//!
//! Each line is written whole and at once (no buffer that holds a step back): demos and
//! tests read these lines through pipes, where a line stuck in a buffer is a step nobody
//! sees, and a daemon's line must reach `| head -3` while the daemon is still running. Both
//! write through a [`Sink`], which never changes the flags of the descriptor the shell shares
//! with us.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::{Error, Result};
use crate::sink::Sink;

/// Write one line to stdout, at once. Use [`say!`](crate::say).
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    // The narration of the calls that led to this step comes before it, counts included.
    crate::narrate::flush();
    let mut text = args.to_string();
    text.push('\n');
    write_stdout(text.as_bytes())
}

/// Write `bytes` to stdout whole, waiting for room for as long as the reader needs, but not
/// long past a stop signal (see [`wait_for_room`]): [`Error::Interrupted`] then. A closed stdout
/// (EBADF: `demo >&-`) takes everything, as std's stdout does.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    // One process-wide sink, under a lock: lines from several threads never interleave.
    static STDOUT: Mutex<Option<Sink>> = Mutex::new(None);
    let mut stdout = STDOUT.lock().unwrap_or_else(PoisonError::into_inner);
    let sink = stdout.get_or_insert_with(|| Sink::new(std::io::stdout()));
    let mut rest = bytes;
    while !rest.is_empty() {
        match sink.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EAGAIN) => wait_for_room(sink)?,
            Err(Errno::EBADF) => return Ok(()),
            Err(e) => return Err(Error::sys("write", "stdout", e)),
        }
    }
    Ok(())
}

/// Sleep until `sink` has room. Once a stop signal has come (before this wait or during
/// it), wait at most [`DRAIN`] more, then give up with [`Error::Interrupted`]: a reader that is
/// only slow still gets a stopping role's last lines, a stalled one costs it a second.
///
/// `say!` waits through this; so does a role that writes data of its own through a [`Sink`]
/// after [`Sink::try_write`] said EAGAIN (fifo-demo's daemon with `--log -`): the reader sets
/// the pace, and a stop signal ends the wait, which a blocking `write(2)` never would.
/// POLLERR (the reader has gone) ends it too, with `Ok`: the next write says EPIPE.
pub fn wait_for_room(sink: &Sink) -> Result<()> {
    let wake = crate::cleanup::installed_wake_fd();
    let mut give_up = None;
    loop {
        let mut fds = vec![PollFd::new(sink.as_fd(), PollFlags::POLLOUT)];
        let timeout = match crate::cleanup::installed_signal() {
            Some(sig) => {
                let end = *give_up.get_or_insert_with(|| Instant::now() + DRAIN);
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    crate::trace!("write(stdout) -> EAGAIN for {DRAIN:?} after {sig}: given up");
                    return Err(Error::Interrupted(sig));
                }
                crate::deadline::poll_timeout(left)
            }
            // No stop yet: wait as long as the reader needs, or until one comes.
            None => {
                fds.extend(wake.map(|w| PollFd::new(w, PollFlags::POLLIN)));
                PollTimeout::NONE
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", "stdout", e)),
        }
        // POLLOUT, or POLLERR for a reader that has gone (the next write says EPIPE).
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(());
        }
    }
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
    write_stdout(&text)?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The end of a demo's default run: its last line and its exit status (see
/// [`crate::error`], "Exit status").
///
/// `outcome` is the scenario's verdict, `ok: …` or `FAILED: …` (a check that did not hold),
/// or the error that stopped it:
///
/// - [`Error::Interrupted`] (a stop signal before the end): `interrupted by SIGINT before the
///   check was done`, exit 128 + the signal's number. Call it once the roles are stopped and
///   the objects removed, so that the line tells the truth;
/// - a broken pipe is passed up unprinted (the reader of our output has gone; `finish` makes
///   it a quiet exit 0);
/// - any other error: `FAILED: <error>`, exit 1.
///
/// Exit 0 only for `ok:`.
pub fn verdict(outcome: Result<String>) -> Result<std::process::ExitCode> {
    let line = match outcome {
        Ok(line) => line,
        Err(e) if e.is_broken_pipe() => return Err(e),
        Err(e @ Error::Interrupted(_)) => {
            // Said if stdout takes it; the status tells the same either way, so a stdout that
            // is gone or stalled does not change it.
            let _ = crate::say!("{e} before the check was done");
            return Ok(std::process::ExitCode::from(e.exit_code()));
        }
        Err(e) => format!("FAILED: {e}"),
    };
    crate::say!("{line}")?;
    Ok(if line.starts_with("ok:") {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// `say!("tick {n}: {msg}")?`: one line on stdout, at once; an error, never a panic, and
/// never a wait past a stop signal (see the module docs).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `tell!(out, "worker pid {pid} started")?`: one status line through an [`Output`], which
/// never blocks (see [`Output::line`]).
#[macro_export]
macro_rules! tell {
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
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
/// How long [`Output::drain`] waits at exit for a stalled reader to take the last lines, and
/// `say!` for room once a stop signal has come.
pub const DRAIN: Duration = Duration::from_secs(1);

/// A daemon's status lines, on stdout or stderr, written without ever blocking, whatever the
/// descriptor is: the one way every daemon of the workspace writes them.
///
/// A daemon's output goes wherever its caller put it: a terminal, a file, a pipe into
/// `grep`, the socket journald hands a service. A reader that stops reading (a frozen
/// `less`, a stalled log shipper, a terminal paused with Ctrl-S) fills the pipe or socket
/// buffer, and an ordinary `write(2)` then sleeps until it drains. A daemon asleep in `write`
/// does not run its loop: it does not serve, and it does not look at its signals, so SIGTERM
/// waits until the reader wakes up (a handler installed with SA_RESTART restarts the write; a
/// signal read from a signalfd is not even delivered). So every write here is non-blocking,
/// and waiting for room is one more descriptor in the daemon's `poll`:
///
/// 1. At start, [`Sink`] looks at what the descriptor is (`fstat`) and picks the
///    non-blocking write that kind allows without touching the descriptor the shell shares
///    with us: a pipe, FIFO or terminal is opened a second time through `/proc/self/fd/N`
///    with `O_NONBLOCK` (a new open file description, so the flag is ours alone); a socket
///    gets `send(MSG_DONTWAIT)`; a regular file is written as it is (it never waits for a
///    reader).
/// 2. [`Output::line`] appends the line to what is waiting, then writes as much as the
///    descriptor takes, a line at a time: a line of at most PIPE_BUF bytes goes into a pipe
///    whole or not at all, so lines never tear against another process's (the `-v` trace on
///    the same stderr). What the descriptor does not take waits in a backlog of at most
///    [`BACKLOG`] bytes, and the daemon polls [`Output::waiting_fd`] for `POLLOUT` beside its
///    own descriptors (or lets the next line push it out). A line that finds the backlog full
///    is dropped and counted; one line says how many were lost, where they were lost, as soon
///    as there is room again: `(12 lines dropped: stdout was not being read)`. A file that
///    refuses a write (ENOSPC, EDQUOT, EFBIG) drops what waits the same way, with its cause.
/// 3. At exit, [`Output::drain`] waits at most [`DRAIN`] for the reader, and stops waiting at
///    once if the descriptor it is given becomes readable (a daemon that reads its signals
///    from a signalfd passes it: a second SIGTERM means now).
///
/// A reader that has gone away (EPIPE) is not a stall. On [`Output::stdout`] the error goes
/// up, and the daemon stops quietly with status 0, as `daemon | head -3` expects of a filter;
/// on [`Output::stderr`], or a stdout made [`Output::quiet_when_gone`], the output goes quiet
/// and the daemon carries on: its job is not its status lines.
///
/// ```
/// use std::io::Read;
///
/// // A daemon's stderr into a pipe that nobody reads yet: lines wait, never block.
/// let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
/// let mut out = common::out::Output::new(write_end, "stderr");
/// common::tell!(out, "reads {}", "/run/x.fifo").unwrap();
/// assert!(out.waiting_fd().is_none(), "a pipe with room took the line at once");
/// drop(out);
/// let mut got = String::new();
/// std::fs::File::from(read_end).read_to_string(&mut got).unwrap();
/// assert_eq!(got, "reads /run/x.fifo\n");
/// ```
pub struct Output {
    sink: Sink,
    /// What it writes to, for messages: `stdout`, `stderr`.
    name: &'static str,
    /// Lines not yet written, and the notes about lines dropped between them, in order.
    waiting: VecDeque<Pending>,
    /// Bytes of the first pending line already written.
    written: usize,
    /// Bytes in `waiting`.
    waiting_bytes: usize,
    /// Lines dropped since the last note about it.
    dropped: u64,
    /// Why they were dropped: None for a reader that did not read, else the write's error.
    dropped_by: Option<Errno>,
    /// What a reader that has gone means (see [`Output`]).
    when_gone: WhenGone,
}

/// A line waiting for room: one of the daemon's, or a note that stands for the lines it
/// reports dropped (so that a note lost in turn is counted as those lines).
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
}

/// What an [`Output`] does when its reader has gone (EPIPE).
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenGone {
    /// Fail the write: the daemon stops, as a filter does.
    Fail,
    /// Write nothing more, and say nothing.
    Quiet,
    /// Gone already (after `Quiet`).
    Silent,
}

impl Output {
    /// The daemon's stdout. A reader that goes away is an error from [`Output::line`] (EPIPE,
    /// which [`crate::error::finish`] turns into a quiet exit 0), unless
    /// [`Output::quiet_when_gone`].
    pub fn stdout() -> Self {
        Self::new(std::io::stdout(), "stdout")
    }

    /// The daemon's stderr, for status lines meant for a person. A reader that goes away
    /// silences it: the daemon carries on.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr(), "stderr").quiet_when_gone()
    }

    /// Status lines to any descriptor it may keep (see [`Sink::new`]), `name`d in messages;
    /// a reader that goes away is an error, as for [`Output::stdout`].
    pub fn new(fd: impl AsFd + Send + Sync + 'static, name: &'static str) -> Self {
        let sink = Sink::new(fd);
        crate::trace!("{name}: {}", sink.mechanism());
        Output {
            sink,
            name,
            waiting: VecDeque::new(),
            written: 0,
            waiting_bytes: 0,
            dropped: 0,
            dropped_by: None,
            when_gone: WhenGone::Fail,
        }
    }

    /// A reader that goes away silences the output instead of failing it: for a daemon whose
    /// stdout is a log for people, not data a pipeline waits for (socket-demo's servers).
    #[must_use]
    pub fn quiet_when_gone(mut self) -> Self {
        self.when_gone = WhenGone::Quiet;
        self
    }

    /// Write one line, or keep it for later, or drop it if [`BACKLOG`] is full: never
    /// sleeps (except on a regular file, whose writes wait for the disk, never for a reader).
    /// Fails only if the reader has gone (EPIPE) and this output fails then (see [`Output`]).
    /// With [`tell!`](crate::tell): `tell!(out, "tick {n}")?`.
    pub fn line(&mut self, text: fmt::Arguments<'_>) -> Result<()> {
        if self.when_gone == WhenGone::Silent {
            return Ok(());
        }
        let line = format!("{text}\n");
        // After a gap, the note that says so comes first, where the lost lines were; it is
        // made (and the count started again) only if the line fits after it.
        let need = self.note_text().map_or(0, |n| n.len()) + line.len();
        if self.waiting_bytes + need > BACKLOG {
            self.dropped += 1;
            crate::trace!("{} full: line dropped ({} so far)", self.name, self.dropped);
        } else {
            if let Some(note) = self.note() {
                self.push(note);
            }
            self.push(Pending {
                bytes: line.into_bytes(),
                lines: 1,
            });
        }
        self.flush()
    }

    /// Queue `p`.
    fn push(&mut self, p: Pending) {
        self.waiting_bytes += p.bytes.len();
        self.waiting.push_back(p);
    }

    /// `(N lines dropped: …)` for the lines dropped since the last note, if any.
    fn note_text(&self) -> Option<String> {
        match (self.dropped, self.dropped_by) {
            (0, _) => None,
            (n, None) => Some(format!(
                "({n} lines dropped: {} was not being read)\n",
                self.name
            )),
            (n, Some(e)) => Some(format!(
                "({n} lines dropped: {}: {})\n",
                self.name,
                e.desc()
            )),
        }
    }

    /// The note for the lines dropped since the last one, if any, to queue; the count starts
    /// again.
    fn note(&mut self) -> Option<Pending> {
        let text = self.note_text()?;
        let lines = std::mem::take(&mut self.dropped);
        self.dropped_by = None;
        Some(Pending {
            bytes: text.into_bytes(),
            lines,
        })
    }

    /// The descriptor to poll for `POLLOUT`, if lines are waiting for room.
    pub fn waiting_fd(&self) -> Option<BorrowedFd<'_>> {
        (!self.waiting.is_empty()).then(|| self.sink.as_fd())
    }

    /// Write what is waiting, a line at a time, as far as the descriptor takes it without
    /// blocking; then, if lines were dropped, the note that says so.
    pub fn flush(&mut self) -> Result<()> {
        while let Some(front) = self.waiting.front() {
            // One line per write: a line into a pipe goes whole or not at all.
            match self.sink.try_write(&front.bytes[self.written..]) {
                Ok(n) => {
                    self.written += n;
                    if self.written == front.bytes.len() {
                        self.waiting_bytes -= front.bytes.len();
                        self.waiting.pop_front();
                        self.written = 0;
                    }
                }
                Err(Errno::EAGAIN) => return Ok(()),
                // A file that takes no more: what waits is lost, and said so when a line gets
                // through.
                Err(e @ (Errno::ENOSPC | Errno::EDQUOT | Errno::EFBIG)) => {
                    self.dropped += self.waiting.iter().map(|p| p.lines).sum::<u64>();
                    self.dropped_by = Some(e);
                    self.clear();
                    return Ok(());
                }
                Err(e) => return self.gone(e),
            }
            if self.waiting.is_empty() {
                // The reader caught up: say now what it missed, not only with the next line.
                if let Some(note) = self.note() {
                    self.push(note);
                }
            }
        }
        Ok(())
    }

    /// Forget what waits.
    fn clear(&mut self) {
        self.waiting.clear();
        self.waiting_bytes = 0;
        self.written = 0;
    }

    /// The reader has gone, or the descriptor is unusable (`e`): fail or go quiet.
    fn gone(&mut self, e: Errno) -> Result<()> {
        self.clear();
        match self.when_gone {
            WhenGone::Fail => Err(Error::sys("write", self.name, e)),
            WhenGone::Quiet | WhenGone::Silent => {
                crate::trace!("write({}) -> {e}: nothing more is written there", self.name);
                self.when_gone = WhenGone::Silent;
                Ok(())
            }
        }
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
                Err(e) => return Err(Error::sys("poll", self.name, e)),
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
                "exit with {} bytes unwritten and {} lines dropped: {} was not being read",
                self.waiting_bytes - self.written,
                self.dropped,
                self.name
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{BACKLOG, Output, escape};
    use std::io::Read;
    use std::os::fd::OwnedFd;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
    }

    /// Nobody reads: lines fill the pipe, then the backlog, then are dropped and counted,
    /// and not one call blocks. Once the reader catches up, the note says what was lost,
    /// where it was lost, and the lines that waited come first.
    #[test]
    fn a_reader_that_stalls_costs_lines_never_a_block() {
        let (read_end, write_end) = pipe();
        let mut out = Output::new(write_end, "stdout");
        let line = "x".repeat(99);
        let mut n = 0;
        while out.waiting_fd().is_none() {
            crate::tell!(out, "{line}").unwrap();
            n += 1;
        }
        let in_pipe = n - 1;
        // The backlog (one line in it already), then 50 lines that find no room in it.
        let backlog = BACKLOG / 100;
        for _ in 0..backlog - 1 + 50 {
            crate::tell!(out, "{line}").unwrap();
        }
        let mut reader = std::fs::File::from(read_end);
        let mut buf = vec![0; in_pipe * 100];
        reader.read_exact(&mut buf).unwrap();
        out.flush().unwrap();
        crate::tell!(out, "last").unwrap();
        drop(out);
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        let lines: Vec<&str> = rest.lines().collect();
        assert!(lines[..lines.len() - 2].iter().all(|l| *l == line));
        assert_eq!(lines.len() - 2, backlog, "the backlog, whole lines only");
        assert_eq!(
            lines[lines.len() - 2..],
            ["(50 lines dropped: stdout was not being read)", "last"]
        );
    }

    #[test]
    fn a_gone_reader_fails_stdout_and_silences_stderr() {
        let (read_end, write_end) = pipe();
        drop(read_end);
        let mut stdout = Output::new(write_end, "stdout");
        let e = crate::tell!(stdout, "hello").unwrap_err();
        assert!(e.is_broken_pipe(), "{e}");

        let (read_end, write_end) = pipe();
        drop(read_end);
        let mut stderr = Output::new(write_end, "stderr").quiet_when_gone();
        for _ in 0..3 {
            crate::tell!(stderr, "hello").unwrap();
        }
        assert!(stderr.waiting_fd().is_none(), "nothing kept for nobody");
    }

    /// A file that refuses writes (/dev/full: ENOSPC) drops lines instead of keeping them for
    /// a POLLOUT that a file reports at once, which would make the daemon's loop spin.
    #[test]
    fn a_full_disk_drops_lines_and_leaves_nothing_to_poll() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut out = Output::new(full, "stdout");
        for _ in 0..3 {
            crate::tell!(out, "hello").unwrap();
            assert!(out.waiting_fd().is_none());
        }
        let note = out.note().expect("a note for the dropped lines");
        assert_eq!(
            (String::from_utf8(note.bytes).unwrap(), note.lines),
            (
                "(3 lines dropped: stdout: No space left on device)\n".into(),
                3
            )
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
