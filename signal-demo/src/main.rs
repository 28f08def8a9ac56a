//! signal-demo: signals as notifications, steering a daemon that ticks on a timer.
//!
//! # What it shows
//!
//! A daemon that ticks on a timer, reloads its config on SIGHUP (keeping the old one if the
//! new one is bad), stops gracefully on SIGTERM/SIGINT, reports on SIGUSR1, and receives
//! realtime signals that carry a value, with no signal handler at all: it blocks its signals
//! and reads them from a signalfd. And the two ways the kernel keeps pending signals: 100
//! SIGUSR2 sent while the daemon is stopped arrive as one (standard signals coalesce), 100
//! SIGRTMIN all arrive, in order (they queue).
//!
//! # Roles
//!
//! Each is a subcommand in a module of its name; `signal-demo` alone plays `demo`.
//! - `signal-demo demo [--interval-ms 100]` (`demo.rs`) — the whole scenario with a daemon
//!   child, checked;
//! - `signal-demo daemon --config FILE [--pid-file FILE]` (`daemon.rs`) — terminal 1; prints
//!   `ready: pid N pid-file PATH` once its signals are read (and tells a service manager
//!   through `NOTIFY_SOCKET`); its config file is `config.rs`;
//! - `signal-demo send SIGNAL (--pid PID | --pid-file FILE) [--value N] [--count K]`
//!   (`send.rs`) — terminal 2: `send HUP`, `send USR1`, `send RTMIN --value 42`, `send TERM`
//!   (or `kill -HUP "$(cat d.pid)"`).
//!
//! Signal numbers and names, kill(2) and sigqueue(3): `signals.rs`; opening a file that
//! someone may have replaced with a FIFO: `file.rs`.
//!
//! # System calls, in order
//!
//! - daemon: sigprocmask(SIG_BLOCK, {HUP, INT, TERM, USR1, USR2, RTMIN..RTMAX}) before
//!   anything else -> signalfd(that set) -> open + fstat + read(config) -> flock(pid file) ->
//!   timerfd_create + timerfd_settime -> loop: poll(signalfd, timerfd) -> read(signalfd) a
//!   signalfd_siginfo per signal, read(timerfd) a u64 count per tick -> unlink(pid file).
//! - send: open + flock(LOCK_SH) of the pid file -> kill(2), or sigqueue(3) with `--value`.
//! - demo: open(O_CREAT | O_EXCL, 0600) of the config -> fork + execve(daemon) ->
//!   rename(config) + kill(SIGHUP) -> kill(SIGSTOP) + waitid(WSTOPPED) -> kill(SIGUSR2) or
//!   sigqueue(SIGRTMIN) x 100 -> kill(SIGCONT) -> kill(SIGTERM) + waitpid.
//!
//! # Pitfalls
//!
//! - **Signal handlers may only call async-signal-safe functions**: the daemon has none; it
//!   blocks its signals first (before any thread exists: the mask is per thread) and reads
//!   them as data (`daemon.rs`).
//! - **Standard signals coalesce, realtime signals queue**; how many of a burst arrive at a
//!   running receiver is the scheduler's luck, so the demo stops the daemon while it sends
//!   (`demo.rs`).
//! - **SIGRTMIN is not a constant** (glibc keeps the first realtime signals): asked at run
//!   time (`signals::rtmin`).
//! - **A stdout nobody reads** must not make the daemon deaf to SIGTERM: its lines never
//!   wait (`common::out::Output`, `daemon.rs`).
//! - **A FIFO where a file should be** would block `open` for ever: refused (`file.rs`).
//! - **A stale pid file names a stranger**; pid 0 and -1 are process groups to kill(2):
//!   refused (`send.rs`).
//!
//! # Cleanup
//!
//! The daemon's pid file (flock-locked) is removed on every exit but kill -9 (SIGHUP does not
//! stop the daemon: it reloads the config); a leftover is recognised as stale by the next
//! daemon and by `send`. The demo removes its config file and stops its daemon on Ctrl-C,
//! SIGTERM and SIGHUP too; its daemon stops with it if it dies without unwinding
//! (PR_SET_PDEATHSIG).
//!
//! # Exit status
//!
//! 0 done (a daemon asked to stop included), 1 the check or the operation failed, 2 usage,
//! 128+N stopped by signal N before finishing (see `common::error`): the demo after cleaning
//! up, the daemon on a second stop signal (pid file removed), `send` killed by one.
//!
//! # See also
//!
//! signal(7), signal-safety(7), signalfd(2), timerfd_create(2), sigprocmask(2), sigqueue(3),
//! kill(2), poll(2), flock(2); TLPI chapters 20-22.

mod cli;
mod config;
mod daemon;
mod demo;
mod file;
mod send;
mod signals;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("signal-demo", page);
    }
    let command = cli.command.unwrap_or_default();
    common::narrate::init(command.role(), cli.trace);
    let outcome = match &command {
        Command::Demo(args) => demo::run(args),
        Command::Daemon(args) => daemon::run(args),
        Command::Send(args) => send::run(args),
    };
    common::error::finish("signal-demo", outcome)
}
