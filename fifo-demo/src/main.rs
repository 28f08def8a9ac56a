//! fifo-demo: a log daemon fed through a named pipe (FIFO) by many unrelated writers.
//!
//! What it shows: a FIFO is a pipe with a name, so processes that share no parent can meet
//! at it; writes of at most PIPE_BUF bytes are atomic, so many writers can share it without
//! tearing each other's lines; and the daemon must keep a write end of its own, or it sees
//! EOF whenever the last writer leaves.
//!
//! Roles (each a subcommand; `fifo-demo` alone plays `demo`):
//! - `fifo-demo daemon [--fifo PATH] [--log FILE|-] [--pid-file FILE] [--drain-timeout SECS]` —
//!   terminal 1; prints `ready: pid N fifo PATH` on stdout once writers can start, and tells a
//!   service manager the same through `NOTIFY_SOCKET` (see `common::lifecycle`);
//! - `fifo-demo log [--fifo PATH] [MESSAGE...]` — terminal 2 (no message: one record per
//!   stdin line); `echo hi > <fifo>` works too and is logged with `pid=?`;
//! - `fifo-demo demo [--writers 8] [--lines 1000] [--keep]` — everything, checked;
//! - `fifo-demo cleanup [--fifo PATH]` — remove what a daemon killed with -9 left behind (and
//!   an empty regular file that `echo hi > FIFO` made while no daemon ran), and the logs of
//!   demo runs that died before cleaning up;
//! - `fifo-demo path [fifo|pid-file|dir]` — where the objects live, for scripts:
//!   `echo hi > "$(fifo-demo path fifo)"`.
//!
//! What happens: daemon: fcntl(F_SETLK) + flock(pid file) -> mkfifo(0600) (or vet a stale
//! one) -> open(O_RDONLY|O_NONBLOCK) -> open(O_WRONLY) of its own -> poll(fifo, signal pipes)
//! -> read(64 KiB) -> write(log). Writer: open(O_WRONLY|O_NONBLOCK) (ENXIO: no daemon) ->
//! write(record <= PIPE_BUF) per line, poll(POLLOUT) when the pipe is full.
//!
//! Exit status (`common::error`): 0 done (the daemon stopped on SIGTERM/SIGINT included), 1
//! failed, 2 usage, 128+N a demo stopped by signal N (after cleaning up), or a writer or
//! cleanup killed by it.
//!
//! Cleanup: SIGTERM/SIGINT make the daemon remove the FIFO, drain it until its writers have
//! closed it (or --drain-timeout), flush, and remove its pid file; after kill -9 the next
//! daemon finds the pid file unlocked and reuses them (or `fifo-demo cleanup` removes them).
//! The demo's roles die with it even if it cannot unwind (PR_SET_PDEATHSIG). An interrupted
//! demo stops its roles, removes its logs and exits 128 + the signal's number (130 for
//! Ctrl-C); one that could not unwind (a second Ctrl-C, SIGKILL) leaves its logs beside an
//! unlocked `<tag>.pid`, and the next demo, `fifo-demo cleanup` or `make clean-ipc` removes
//! them.
//!
//! See also: fifo(7), mkfifo(3), pipe(7) (PIPE_BUF, O_NONBLOCK), open(2) (ENXIO), poll(2),
//! flock(2), TLPI chapter 44 (fifo_seqnum_server.c).

mod cleanup;
mod cli;
mod daemon;
mod demo;
mod fifo;
mod log;
mod logfile;
mod path;
mod protocol;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, DemoArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("fifo-demo", page);
    }
    common::narrate::init(
        cli.command.as_ref().map_or("demo", Command::role),
        cli.trace || cli.command.as_ref().is_some_and(Command::trace),
    );
    let outcome = match &cli.command {
        Some(Command::Daemon(args)) => daemon::run(args),
        Some(Command::Log(args)) => log::run(args),
        Some(Command::Cleanup(args)) => cleanup::run(args),
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::Path(args)) => path::run(args),
        None => demo::run(&DemoArgs::default()),
    };
    common::error::finish("fifo-demo", outcome)
}
