//! fifo-demo: a log daemon fed through a named pipe (FIFO) by many unrelated writers.
//!
//! # What it shows
//!
//! A FIFO is a pipe with a name, so processes that share no parent can meet at it. Writes of
//! at most PIPE_BUF bytes are atomic, so many writers can share it without tearing each
//! other's lines; the daemon keeps a write end of its own, or it sees EOF whenever the last
//! writer leaves; and a writer opens it non-blocking, so that with no daemon it fails at once
//! with ENXIO instead of waiting in `open` forever.
//!
//! # Roles
//!
//! Each is a subcommand in a module of its name; `fifo-demo` alone plays `demo`.
//! - `fifo-demo daemon [--fifo PATH] [--log FILE|-] [--pid-file FILE] [--drain-timeout SECS]`
//!   (`daemon.rs`) — terminal 1; prints `ready: pid N fifo PATH` on stdout once writers can
//!   start, and tells a service manager the same through `NOTIFY_SOCKET`
//!   (`common::lifecycle`); its log is `logfile.rs`;
//! - `fifo-demo log [--fifo PATH] [MESSAGE...]` (`log.rs`) — terminal 2 (no message: one
//!   record per stdin line); `echo hi > FIFO` works too and is logged with `pid=?`;
//! - `fifo-demo demo [--writers 8] [--lines 1000] [--keep]` (`demo.rs`) — everything,
//!   checked;
//! - `fifo-demo cleanup [--fifo PATH]` (`cleanup.rs`) — remove what a daemon killed with -9
//!   left behind (and an empty regular file that `echo hi > FIFO` made while no daemon ran),
//!   and the logs of demo runs that died before cleaning up;
//! - `fifo-demo path [fifo|pid-file|dir]` (`path.rs`) — where the objects live, for scripts:
//!   `echo hi > "$(fifo-demo path fifo)"`.
//!
//! Where the FIFO is and what may stand at its path: `fifo.rs`; the records on the wire and
//! in the log: `protocol.rs`.
//!
//! # System calls, in order
//!
//! - daemon: sigaction(SIGINT, SIGTERM, SIGHUP: flag + self-pipe) -> fcntl(F_SETLK) +
//!   flock(pid file) -> mkfifo(0600) (or lstat and vet a stale one) -> open(O_RDONLY |
//!   O_NONBLOCK) + fstat + fchmod(0600) + fcntl(F_SETPIPE_SZ) -> open(O_WRONLY) of its own ->
//!   open(log, O_APPEND | O_CREAT, 0600) -> loop: poll(fifo, self-pipes) -> read(64 KiB) ->
//!   write(log). At a stop: unlink(fifo), unlink(pid file), close(own write end) -> read
//!   until EOF or --drain-timeout -> close(read end).
//! - log: lstat(fifo) -> open(O_WRONLY | O_NONBLOCK) (ENXIO: no daemon) + fstat -> one
//!   write(record <= PIPE_BUF) per line; EAGAIN -> poll(POLLOUT); EPIPE -> ioctl(FIONREAD).
//! - demo: fork + execve(daemon), of N writers -> rename(log, log.1) + kill(SIGHUP) ->
//!   kill(SIGTERM) + waitpid -> read both logs and check.
//! - cleanup: flock(pid file) -> open(O_WRONLY | O_NONBLOCK) (ENXIO: nobody reads) ->
//!   unlink(fifo) -> unlink(pid file).
//!
//! # Pitfalls
//!
//! - **EOF whenever the last writer leaves**, and `poll` reporting POLLHUP for ever after (a
//!   busy loop): the daemon holds a write end of its own (`daemon::open_fifo`).
//! - **A blocking open waits for the other side**: the daemon opens its read end with
//!   O_NONBLOCK; a writer opens with O_NONBLOCK and takes ENXIO as "no daemon"
//!   (`log::Writer::open`).
//! - **Writes larger than PIPE_BUF may interleave**: one `write` per record, at most PIPE_BUF
//!   bytes; a longer message is refused, never cut (`protocol::encode`).
//! - **A full pipe**: a non-blocking write of at most PIPE_BUF bytes writes all or nothing
//!   (EAGAIN); the writer then sleeps in `poll(POLLOUT)`, dropping nothing
//!   (`log::Writer::send`).
//! - **Whatever stands at the path**: a symlink, another user's FIFO, a FIFO someone reads, or
//!   the regular file `echo hi > FIFO` creates while no daemon runs; each role vets the path
//!   (`fifo::existing_fifo`) and checks what it opened with `fstat`.
//! - **A signal must not wait for the work**: handlers only set a flag and write a self-pipe
//!   that `poll` watches; the reads per wake-up are bounded (`daemon::run`).
//! - **A stop while writers are mid-stream**: remove the name, close the daemon's own write
//!   end, read until EOF or `--drain-timeout`, close right after the last read, so a writer
//!   still writing gets EPIPE rather than a success for a record nobody reads (`daemon::run`,
//!   `Reader::drain`).
//! - **A log that cannot take more** (a full disk, `ulimit -f`: SIGXFSZ ignored) and **a
//!   stdout nobody reads** with `--log -`: never a silent loss, never a daemon deaf to
//!   SIGTERM (`logfile.rs`).
//!
//! # Cleanup
//!
//! SIGTERM/SIGINT make the daemon remove the FIFO, drain it until its writers have closed it
//! (or --drain-timeout), flush, and remove its pid file; SIGHUP does not stop it: it reopens
//! its log (rotation). After kill -9 the next daemon finds the pid file unlocked and reuses
//! them (or `fifo-demo cleanup` removes them). The demo's roles die with it even if it cannot
//! unwind (PR_SET_PDEATHSIG). An interrupted demo (SIGINT, SIGTERM, SIGHUP) stops its roles
//! and removes its logs; one that could not unwind (a second Ctrl-C, SIGKILL) leaves its logs
//! beside an unlocked `<tag>.pid`, and the next demo, `fifo-demo cleanup` or `make clean-ipc`
//! removes them.
//!
//! # Exit status
//!
//! 0 done (a daemon asked to stop included), 1 the check or the operation failed, 2 usage,
//! 128+N stopped by signal N before finishing (see `common::error`): the demo after cleaning
//! up; `log`, `cleanup` and `path` die of the signal (nothing to clean up). The daemon exits 0
//! on SIGTERM/SIGINT, 1 if records were lost on the way (the log could not take them, or a
//! stdout nobody read), 128+N on a second stop signal during its drain.
//!
//! # See also
//!
//! fifo(7), mkfifo(3), pipe(7) (PIPE_BUF, O_NONBLOCK), open(2) (ENXIO), poll(2), flock(2),
//! TLPI chapter 44 (`fifo_seqnum_server.c`).

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
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("fifo-demo", page);
    }
    let command = cli.command.unwrap_or_default();
    common::narrate::init(command.role(), cli.trace);
    let outcome = match &command {
        Command::Demo(args) => demo::run(args),
        Command::Daemon(args) => daemon::run(args),
        Command::Log(args) => log::run(args),
        Command::Cleanup(args) => cleanup::run(args),
        Command::Path(args) => path::run(args),
    };
    common::error::finish("fifo-demo", outcome)
}
