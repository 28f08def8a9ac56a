//! signal-demo: signals as notifications.
//!
//! What it shows: a daemon that ticks on a timer, reloads its config on SIGHUP (keeping the
//! old one if the new one is bad), stops gracefully on SIGTERM/SIGINT, reports on SIGUSR1, and
//! receives realtime signals that carry a value; that 100 SIGUSR2 sent while the daemon is
//! stopped arrive as one (standard signals coalesce) while 100 SIGRTMIN all arrive, in order
//! (they queue).
//!
//! How to run: `signal-demo` (= `signal-demo demo`) plays the whole scenario with a daemon
//! child and checks it. By hand: `signal-demo daemon --config cfg.toml --pid-file d.pid` in
//! one terminal, then `signal-demo send HUP --pid-file d.pid` (or `kill -HUP "$(cat d.pid)"`),
//! `send USR1`, `send RTMIN --value 42`, `send TERM` in another. Each role is one module with a
//! `run(args)` that `main` calls: `demo.rs`, `daemon.rs`, `send.rs`.
//!
//! What happens: the daemon calls sigprocmask(SIG_BLOCK, {HUP, INT, TERM, USR1, USR2,
//! RTMIN..RTMAX}) before anything else, then signalfd() on that set and timerfd_create() +
//! timerfd_settime(); it poll()s both, read()s a signalfd_siginfo per signal and a u64
//! expiration count per tick, and does all work in that loop: no signal handlers at all.
//! `send` calls kill(2), or sigqueue(3) with `--value`.
//!
//! Exit status (`common::error`): 0 done (the daemon stopped on SIGTERM/SIGINT included), 1
//! failed, 2 usage, 128+N stopped by signal N: the demo interrupted (after cleaning up), the
//! daemon by a second stop signal, `send` killed by one.
//!
//! Cleanup: the daemon's pid file (flock-locked) is removed on every exit but kill -9, and a
//! leftover is recognised as stale by the next daemon and by `send`. The demo removes its
//! config file, also on Ctrl-C.
//!
//! See also: signal(7), signal-safety(7), signalfd(2), timerfd_create(2), sigprocmask(2),
//! sigqueue(3), kill(2), poll(2), flock(2); TLPI chapters 20-22.

mod cli;
mod config;
mod daemon;
mod demo;
mod file;
mod send;
mod signals;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, DemoArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("signal-demo", page);
    }
    let command = cli
        .command
        .unwrap_or_else(|| Command::Demo(DemoArgs::default()));
    common::narrate::init(command.role(), cli.trace || command.trace());
    let outcome = match &command {
        Command::Demo(args) => demo::run(args),
        Command::Daemon(args) => daemon::run(args),
        Command::Send(args) => send::run(args),
    };
    common::error::finish("signal-demo", outcome)
}
