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
//! atomic before it formats anything. A process that turns it on passes it to the children it
//! starts through the environment variable [`ENV`] (see [`crate::child`]), so a whole demo is
//! narrated by one `-v`.

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that turns tracing on in child processes (`IPC_DEMO_TRACE=1`).
pub const ENV: &str = "IPC_DEMO_TRACE";

static ENABLED: AtomicBool = AtomicBool::new(false);
static ROLE: OnceLock<String> = OnceLock::new();

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

/// Write one timeline line. Use [`trace!`](crate::trace), which skips the formatting when off.
pub fn emit(args: fmt::Arguments<'_>) {
    let role = ROLE.get().map_or("main", String::as_str);
    let line = format!("[pid {} {role}] {args}\n", std::process::id());
    // One write for the whole line; a failure to narrate is not worth failing the demo for.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
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
