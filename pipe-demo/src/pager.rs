//! `pipe-demo pager [CMD]`: `CMD | $PAGER`, or CMD alone when stdout is not a terminal.
//!
//! A pager is for a person at a terminal. When our stdout is a pipe or a file, `less` would
//! only copy its input through, so we skip it and let CMD write straight to our stdout — what
//! `git log` and `man` do. The check is `isatty(1)`.
//!
//! On a terminal this is a two-stage [`pipeline`](crate::pipeline): CMD's stdout is the write
//! end of a pipe, the pager's stdin its read end. When the user quits the pager early, CMD's
//! next write finds no reader and CMD dies of SIGPIPE, as in `ls -l | less`.

use std::io;
use std::process::ExitCode;

use common::{Context, Error, Result, trace};

use crate::cli::PagerArgs;
use crate::pipeline::{exit_status, run_stages};
use crate::spawn::Program;

/// The pager when $PAGER is unset or empty.
const DEFAULT_PAGER: &str = "less";

/// Run the `pager` role. Exits with the last stage's status, as `CMD | $PAGER` would.
pub fn run(args: &PagerArgs) -> Result<ExitCode> {
    let cmd = Program::parse(&args.cmd)?;
    let tty = nix::unistd::isatty(io::stdout()).ctx("isatty", "stdout")?;
    trace!("isatty(1) -> {tty}");
    let stages = if tty {
        let line = std::env::var("PAGER")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PAGER.to_owned());
        let pager =
            Program::parse(&line).map_err(|e| Error::Usage(format!("$PAGER '{line}': {e}")))?;
        vec![cmd, pager]
    } else {
        // Not a terminal: pass CMD's output through unchanged, with no pager in between.
        vec![cmd]
    };
    let statuses = run_stages(&stages)?;
    Ok(ExitCode::from(exit_status(&statuses, false)))
}
