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

use crate::error::{Context, Result};

/// Write one line to stdout and flush it. Use [`say!`](crate::say).
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    let mut text = args.to_string();
    text.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .ctx("write", "stdout")
}

/// `say!("tick {n}: {msg}")?`: one flushed line on stdout; an error, never a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
