//! `pipe-demo pager [CMD]`: `CMD | $PAGER`, or CMD alone when stdout is not a terminal.
//!
//! A pager is for a person at a terminal. When our stdout is a pipe or a file, `less` would
//! only copy its input through, so we skip it and let CMD write straight to our stdout — what
//! `git log` and `man` do. The check is `isatty(1)`. A `$PAGER` that cannot run (not found,
//! not executable) is skipped the same way, with a warning, rather than losing the output.
//! Without a pager, SIGPIPE to CMD means our own reader went away (`… | head -3`): exit 0.
//!
//! On a terminal this is a two-stage [`pipeline`](crate::pipeline): CMD's stdout is the write
//! end of a pipe, the pager's stdin its read end. When the user quits the pager early, CMD's
//! next write finds no reader and CMD dies of SIGPIPE, as in `ls -l | less`. The calls:
//!
//! ```text
//! isatty(1)                                  not a terminal: run CMD alone, exit with its status
//! sigaction(SIGINT, SIGQUIT, SIG_IGN)        saved, for the stages to restore (see below)
//! pipe2(O_CLOEXEC); fork: CMD, stdout on the pipe; fork: $PAGER, stdin on the pipe
//! waitpid(CMD); waitpid(PAGER)               exit with the pager's status
//! sigaction(SIGINT, SIGQUIT, saved)
//! ```
//!
//! # Pitfalls
//!
//! - **A pager nobody can see.** `less` on a pipe only copies its input; checking `isatty(1)`
//!   first is what `git log` and `man` do.
//! - **A `$PAGER` that cannot run** must not lose the output: it is skipped with a warning.
//! - **Ctrl-C while the pager runs** (below).
//!
//! # Ctrl-C while the pager runs
//!
//! Ctrl-C at the terminal sends SIGINT to the whole foreground process group: CMD, the pager
//! and us. `less` catches it (to stop a search, or to stop following a growing file) and
//! keeps the terminal; if we died of it, the shell would print its prompt while `less` still
//! owns the screen. So, like `system(3)` and git, we ignore SIGINT and SIGQUIT while we wait
//! for the pager, and put the old dispositions back afterwards. The stages are forked while
//! we ignore them, and an ignored signal stays ignored across `execv`, so each stage puts the
//! old dispositions back before it execs ([`crate::spawn::Wiring::restore`]): Ctrl-C still
//! interrupts `ls`, and `less` still sees its SIGINT.

use std::io::{self, Write};
use std::process::ExitCode;

use common::{Context, Result, trace};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::cli::PagerArgs;
use crate::pipeline::{exit_status, run_stages};
use crate::program::Program;
use crate::spawn::Status;

/// The pager when $PAGER is unset or empty.
const DEFAULT_PAGER: &str = "less";

/// Run the `pager` role. Exits with the last stage's status, as `CMD | $PAGER` would.
pub fn run(args: &PagerArgs) -> Result<ExitCode> {
    let cmd = Program::parse(&args.cmd)?;
    let tty = nix::unistd::isatty(io::stdout()).ctx("isatty", "stdout")?;
    trace!("isatty(1) -> {tty}");
    // Not a terminal: pass CMD's output through unchanged, with no pager in between.
    let pager = if tty { usable_pager() } else { None };
    let Some(pager) = pager else {
        let statuses = run_stages(&[cmd], &[])?;
        // CMD writes straight to our stdout, so SIGPIPE means that *our* reader went away
        // (`pipe-demo pager … | head -3`): for us that is a normal end, exit 0, as for every
        // role here, not the 141 a shell would report for CMD.
        if statuses.last() == Some(&Status::Signaled(Signal::SIGPIPE)) {
            return Ok(ExitCode::SUCCESS);
        }
        return Ok(ExitCode::from(exit_status(&statuses, false)));
    };
    let ignored = IgnoreInterrupts::install()?;
    let statuses = run_stages(&[cmd, pager], &ignored.saved)?;
    // `ignored` drops here: SIGINT and SIGQUIT are ours again.
    Ok(ExitCode::from(exit_status(&statuses, false)))
}

/// The pager named by $PAGER (or `less`), or None, with a warning, if it cannot run: then the
/// output is shown without one, as git and man do, rather than lost.
fn usable_pager() -> Option<Program> {
    let line = std::env::var("PAGER")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PAGER.to_owned());
    let why = match Program::parse(&line) {
        Ok(pager) => match pager.unrunnable() {
            None => return Some(pager),
            Some(why) => format!("{}: {why}", pager.name()),
        },
        Err(e) => e.to_string(),
    };
    let _ = writeln!(
        io::stderr().lock(),
        "pipe-demo: warning: $PAGER '{line}': {why}; showing the output without a pager"
    );
    None
}

/// SIGINT and SIGQUIT ignored by this process until dropped (see "Ctrl-C while the pager
/// runs" in the module docs).
struct IgnoreInterrupts {
    /// The dispositions before, to restore here on drop and in each stage before it execs.
    saved: Vec<(Signal, SigAction)>,
}

impl IgnoreInterrupts {
    fn install() -> Result<Self> {
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let mut this = IgnoreInterrupts { saved: Vec::new() };
        for sig in [Signal::SIGINT, Signal::SIGQUIT] {
            // SAFETY: SIG_IGN installs no handler, so no code of ours runs on a signal.
            let old = unsafe { sigaction(sig, &ignore) }.ctx("sigaction", sig)?;
            this.saved.push((sig, old));
        }
        trace!("sigaction(SIGINT, SIGQUIT, SIG_IGN) while the pager runs, as system(3) does");
        Ok(this)
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (sig, old) in &self.saved {
            // SAFETY: `old` is what sigaction returned for `sig` in `install`. Putting it back
            // restores the disposition this process had; if that was a handler, it is a
            // function of this program, still valid.
            let _ = unsafe { sigaction(*sig, old) };
        }
        trace!("sigaction(SIGINT, SIGQUIT): restored");
    }
}
