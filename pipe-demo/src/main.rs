//! pipe-demo: anonymous pipes by hand — `ls -l | grep 'txt$'`, `ps aux | grep ps | wc -l`,
//! `ls -l | less` — with pipe2, fork, dup2, close, execv and waitpid in plain sight.
//!
//! Roles (`pipe-demo help ROLE` for each):
//! - `pipe-demo` (= `pipe-demo demo`, also `pipe-demo filter`): the scenario. Lists a temporary directory with
//!   `ls -l` in a child, filters its output through a pipe in the parent, reaps the child,
//!   checks the result against `sh -c 'ls -l DIR | grep -E txt$'`, prints `ok: ...`.
//! - `ls -l | pipe-demo grep 'txt$'`: a fast grep for scripts (exit 0/1/2, quiet on EPIPE).
//! - `pipe-demo pipeline 'ps aux' 'grep ps' 'wc -l'`: an N-stage pipeline without a shell.
//! - `pipe-demo pager 'ls -l /usr/bin'`: through $PAGER on a terminal, unchanged otherwise.
//!
//! What happens (add `-v` to watch it): the parent makes a pipe with `pipe2(O_CLOEXEC)`, and
//! `fork`s; the child `dup2`s the pipe's write end onto its stdout, closes the originals and
//! `execv`s; the parent closes its own write end (else it never sees EOF), reads to EOF, and
//! `waitpid`s the child. A CLOEXEC error pipe per child tells the parent if the exec failed.
//!
//! Cleanup: no named objects. Every descriptor is O_CLOEXEC and closed as soon as it is not
//! needed; every child is reaped; the scenario's temporary directory is removed, on Ctrl-C too.
//!
//! See also: pipe(7), pipe(2), fork(2), dup(2), execve(2), waitpid(2), signal-safety(7);
//! TLPI chapter 44 (pipes/simple_pipe.c, pipes/pipe_ls_wc.c).

mod child_trace;
mod cli;
mod filter;
mod grep;
mod pager;
mod pipeline;
mod program;
mod spawn;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        return common::error::finish("pipe-demo", common::generate::run(Cli::command(), kind));
    }
    let command = cli
        .command
        .unwrap_or_else(|| Command::Demo(Default::default()));
    common::narrate::init(command.role(), cli.trace || command.trace());
    if common::narrate::enabled() {
        // The programs our stages exec inherit our environment: with this they narrate too
        // (common::child does the same for the children it starts).
        // SAFETY: nothing has started a thread yet (clap parses in this one), so no other
        // thread can be reading the environment while it changes.
        unsafe { std::env::set_var(common::narrate::ENV, "1") };
    }
    let outcome = match &command {
        Command::Demo(args) => filter::run(args),
        Command::Grep(args) => grep::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Pager(args) => pager::run(args),
    };
    common::error::finish("pipe-demo", outcome)
}
