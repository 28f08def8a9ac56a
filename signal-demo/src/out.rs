//! Lines on stdout that a pipe reader sees at once, and that never panic.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (EPIPE; Rust ignores SIGPIPE,
//! so the write fails instead of killing the process). [`say!`](crate::say) returns the error
//! instead, named `write stdout: Broken pipe`, which `common::error::finish` turns into a quiet
//! exit 0, as `yes | head -1` expects. Each line is written with one `write_all` and flushed at
//! once: the tests and the demo read the daemon through a pipe, where stdout is otherwise
//! block-buffered by convention, and a tick line stuck in a buffer is a tick nobody sees.

use std::fmt;
use std::io::{self, Write};

use common::{Context, Result};

/// Write one line to stdout and flush it.
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    let mut text = args.to_string();
    text.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .ctx("write", "stdout")
}

/// `say!("tick {n}: {msg}")?`: one flushed line on stdout, errors returned, never a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
