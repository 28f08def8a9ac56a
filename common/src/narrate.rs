//! The `-v/--trace` timeline: one line per IPC call on stderr, tagged with pid and role.
//!
//! ```text
//! [pid 4242 filter] pipe2(O_CLOEXEC) -> read=3 write=4
//! [pid 4243 ls] dup2(4, 1)
//! ```
//!
//! Lines from several processes interleave on the terminal in the order the calls happened, so
//! a reader can watch a mechanism work across processes. Each line is written with a single
//! `write(2)` so that lines from different processes do not tear.
//!
//! Tracing is off by default, and free when off: [`trace!`](crate::trace) tests one relaxed
//! atomic before it formats anything.
//!
//! # `IPC_DEMO_TRACE`: one `-v` narrates every process
//!
//! A process whose tracing is on passes it to the children it starts through the environment
//! variable [`ENV`]: `IPC_DEMO_TRACE=1` ([`crate::child::Supervised`] sets it; a demo that
//! starts programs itself, such as pipe-demo's pipeline stages, exports it). [`init`] turns
//! tracing on when it finds `IPC_DEMO_TRACE=1`, as if `-v` had been given, so a whole demo,
//! every role and stage included, is narrated by one `-v`. It can also be set by hand to
//! narrate a process that a script starts: `IPC_DEMO_TRACE=1 fifo-demo log hello`. Any other
//! value, or none, leaves tracing to the `-v` flag.
//!
//! # Repeated lines are collapsed
//!
//! A loop that makes the same call a hundred times would bury the timeline. A line identical
//! to the one this process wrote just before it is counted instead of written, and the count
//! follows as one line, `[pid 4242 sender] kill(4243, SIGUSR2) ×99 more`, as soon as:
//!
//! - the process narrates a different line (the count comes first, then that line);
//! - it prints a step on stdout with [`say!`](crate::say);
//! - it waits for a child or a child's output through [`crate::child`];
//! - it exits through [`crate::error::finish`];
//! - it calls [`flush`], which a role does before a wait of its own that may block for long
//!   (fifo-demo's daemon before `poll`).
//!
//! So the first line of a run is never delayed, and its count is never lost nor held
//! past the process's next step. A repeat of exactly one is written as the line itself.
//!
//! # A stalled stderr
//!
//! Narration must never hold a process up: a daemon asleep in `write(2)` to a stderr whose
//! reader has stopped reading (a pipe nobody drains, a terminal paused with Ctrl-S) would not
//! hear SIGTERM. Lines go out through a [`Sink`] (a non-blocking write that leaves the shared
//! descriptor's flags alone). A line that finds no room waits up to [`PATIENCE`] for the
//! reader; if it does not come, the line is dropped, and so is every later line that finds
//! no room, at once, until one gets through, preceded by
//! `(N trace lines dropped: stderr was not being read)`.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::sink::Sink;

/// The environment variable that turns tracing on in child processes (`IPC_DEMO_TRACE=1`);
/// see the module docs.
pub const ENV: &str = "IPC_DEMO_TRACE";

static ENABLED: AtomicBool = AtomicBool::new(false);
static ROLE: OnceLock<String> = OnceLock::new();
/// True while a count of repeated lines waits to be written.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Name this process's role for the timeline, and turn tracing on if `flag` is set or the
/// parent asked for it through [`ENV`]. Call once, right after parsing the command line.
pub fn init(role: &str, flag: bool) {
    let _ = ROLE.set(role.to_owned());
    let inherited = std::env::var_os(ENV).is_some_and(|v| v == "1");
    ENABLED.store(flag || inherited, Ordering::Relaxed);
}

/// True if tracing is on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Write one timeline line, or count it if it repeats the last one. Use
/// [`trace!`](crate::trace), which skips the formatting when off.
pub fn emit(args: fmt::Arguments<'_>) {
    let role = ROLE.get().map_or("main", String::as_str);
    let line = format!("[pid {} {role}] {args}", std::process::id());
    let mut out = String::new();
    // Written under the lock, so that two threads' lines and counts keep their order.
    let mut repeats = repeats();
    repeats.line(&line, &mut out);
    write(&mut repeats, &out);
}

/// Write the count of repeated lines that is still pending, if any (see the module docs).
pub fn flush() {
    // Free when nothing is pending, which is always the case with tracing off.
    if !PENDING.load(Ordering::Relaxed) {
        return;
    }
    let mut out = String::new();
    let mut repeats = repeats();
    repeats.flush(&mut out);
    write(&mut repeats, &out);
}

/// How long one trace write waits for room on a stderr nobody is reading before lines are
/// dropped. A terminal or pipe that is merely slow takes a burst within it; a stalled one
/// costs the process this much once, not once per line.
pub const PATIENCE: Duration = Duration::from_millis(500);

/// Write `text` to stderr without ever blocking for long (see the module docs, "A stalled
/// stderr"). A failure to narrate is not worth failing the demo for, so nothing is returned.
/// Called with the state's lock held, so lines and counts keep their order.
fn write(state: &mut Repeats, text: &str) {
    if text.is_empty() || state.gone {
        return;
    }
    let sink = state
        .sink
        .get_or_insert_with(|| Sink::new(std::io::stderr()));
    let mut out = String::new();
    if state.torn {
        // The end of a line that was cut short, so the next line starts on a line of its own.
        out.push('\n');
    }
    if state.dropped > 0 {
        let role = ROLE.get().map_or("main", String::as_str);
        let _ = writeln!(
            out,
            "[pid {} {role}] ({} trace lines dropped: stderr was not being read)",
            std::process::id(),
            state.dropped
        );
    }
    out.push_str(text);
    let mut rest = out.as_bytes();
    let mut written_any = false;
    while !rest.is_empty() {
        match sink.try_write(rest) {
            Ok(n) => {
                rest = &rest[n..];
                written_any = true;
                state.torn = false;
                state.dropped = 0;
                state.stalled = false;
            }
            // No room. While the reader is known to be stalled, drop at once; otherwise wait
            // for room, within PATIENCE.
            Err(nix::errno::Errno::EAGAIN) if !state.stalled && sink.wait_writable(PATIENCE) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                state.stalled = true;
                if written_any {
                    state.torn = true;
                } else {
                    state.dropped += 1;
                }
                return;
            }
            // EPIPE and the like: nobody will read the trace again.
            Err(_) => {
                state.gone = true;
                return;
            }
        }
    }
}

/// This process's collapsing state.
fn repeats() -> MutexGuard<'static, Repeats> {
    static REPEATS: Mutex<Repeats> = Mutex::new(Repeats::new());
    let mut state = REPEATS.lock().unwrap_or_else(PoisonError::into_inner);
    // A child made by fork() without exec inherits its parent's pending count: that count is
    // the parent's to report.
    let pid = std::process::id();
    if state.pid != pid {
        *state = Repeats::new();
        state.pid = pid;
    }
    state
}

/// This process's narration state: the last line written and how many identical lines came
/// after it, and how stderr is written.
struct Repeats {
    pid: u32,
    last: String,
    more: u64,
    /// stderr, written without blocking; made at the first line.
    sink: Option<Sink>,
    /// stderr had no room within PATIENCE: lines are dropped at once until it takes one.
    stalled: bool,
    /// Lines dropped since the last that got through, reported before the next.
    dropped: u64,
    /// A line was cut short by a stall: the next write starts with its newline.
    torn: bool,
    /// The reader has gone (EPIPE): narrate nothing more.
    gone: bool,
}

impl Repeats {
    const fn new() -> Self {
        Repeats {
            pid: 0,
            last: String::new(),
            more: 0,
            sink: None,
            stalled: false,
            dropped: 0,
            torn: false,
            gone: false,
        }
    }

    /// Add to `out` what to write for `line`: nothing if it repeats the last line (it is
    /// counted), else the pending count, if any, then the line.
    fn line(&mut self, line: &str, out: &mut String) {
        if !self.last.is_empty() && self.last == line {
            self.more += 1;
            PENDING.store(true, Ordering::Relaxed);
            return;
        }
        self.flush(out);
        out.push_str(line);
        out.push('\n');
        line.clone_into(&mut self.last);
    }

    /// Add the pending count to `out`, and start counting afresh.
    fn flush(&mut self, out: &mut String) {
        match self.more {
            0 => {}
            1 => {
                out.push_str(&self.last);
                out.push('\n');
            }
            n => {
                let _ = writeln!(out, "{} \u{d7}{n} more", self.last);
            }
        }
        self.more = 0;
        PENDING.store(false, Ordering::Relaxed);
    }
}

/// Narrate one IPC call when `--trace` is on: `trace!("mkfifo({}, 0600)", path.display())`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::narrate::enabled() {
            $crate::narrate::emit(format_args!($($arg)*));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Repeats;

    /// Feed `lines` (and `None` for a flush) and return everything written.
    fn run(steps: &[Option<&str>]) -> String {
        let mut r = Repeats::new();
        let mut out = String::new();
        for step in steps {
            match step {
                Some(line) => r.line(line, &mut out),
                None => r.flush(&mut out),
            }
        }
        out
    }

    #[test]
    fn a_run_of_identical_lines_becomes_the_line_and_a_count() {
        let mut steps = vec![Some("kill(43, SIGUSR2)"); 100];
        steps.push(Some("waitpid(43)"));
        assert_eq!(
            run(&steps),
            "kill(43, SIGUSR2)\nkill(43, SIGUSR2) \u{d7}99 more\nwaitpid(43)\n"
        );
    }

    #[test]
    fn the_first_line_is_written_at_once_and_the_count_at_a_flush() {
        let mut r = Repeats::new();
        let mut out = String::new();
        r.line("read(3)", &mut out);
        assert_eq!(out, "read(3)\n", "never held back");
        out.clear();
        for _ in 0..3 {
            r.line("read(3)", &mut out);
        }
        assert_eq!(out, "", "repeats are counted");
        r.flush(&mut out);
        assert_eq!(out, "read(3) \u{d7}3 more\n");
        out.clear();
        r.flush(&mut out);
        assert_eq!(out, "", "a count is written once");
    }

    #[test]
    fn a_single_repeat_is_written_as_itself_and_different_lines_pass() {
        assert_eq!(
            run(&[Some("a"), Some("a"), Some("b"), Some("a")]),
            "a\na\nb\na\n"
        );
        assert_eq!(run(&[Some("a"), Some("a"), None]), "a\na\n");
        assert_eq!(run(&[None]), "");
    }

    #[test]
    fn after_a_flush_repeats_of_the_same_line_count_again() {
        assert_eq!(
            run(&[
                Some("x"),
                Some("x"),
                Some("x"),
                None,
                Some("x"),
                Some("x"),
                Some("x"),
                None
            ]),
            "x\nx \u{d7}2 more\nx \u{d7}3 more\n"
        );
    }
}
