//! sem-demo: semaphores guarding a shared resource.
//!
//! What it shows: a binary semaphore making read-modify-write updates of a shared file safe
//! (and the updates lost without it); a counting semaphore letting at most K processes in at
//! once (a K-lane bridge); POSIX named semaphores and System V semaphore sets side by side,
//! and the one difference that matters when a holder is killed: SysV's SEM_UNDO gives the
//! permit back, a POSIX semaphore has no owner and loses it.
//!
//! Roles (each a subcommand; `sem-demo` alone plays `demo`):
//! - `sem-demo counter [--procs N] [--iters M] [--no-lock] [--sysv]` — N `update` processes,
//!   each `sem-demo update --file F --iters M --name NAME` (usable by hand too);
//! - `sem-demo bridge [--cars N] [--lanes K] [--sysv]` — N `sem-demo car` processes, K permits,
//!   occupancy on a shared-memory board;
//! - `sem-demo run [--name NAME] [--limit K] [--timeout S] -- CMD ARGS...` — flock(1)-like;
//! - `sem-demo post|wait|trywait|value|unlink NAME [--posix|--sysv] [--timeout S]`;
//! - `sem-demo demo` — all of it, checked.
//!
//! What happens: POSIX: sem_open(/ipc-demo-NAME, O_CREAT|O_EXCL, 0600, value) (or an
//! existing one, checked to be ours with open(O_NOFOLLOW) + fstat) -> sem_wait /
//! sem_timedwait / sem_trywait -> sem_post -> sem_close; sem_unlink by the creator. SysV:
//! semget(0x1dc0xxxx, 4, IPC_CREAT|IPC_EXCL|0600) -> one semop that initialises the set only
//! if nobody has (sets sem_otime; an opener that finds it 0 makes the same semop itself) ->
//! semop/semtimedop(-1, SEM_UNDO) -> semop(+1, SEM_UNDO) -> semctl(IPC_RMID) by the creator.
//!
//! Cleanup: the demo roles remove what they create (sem_unlink, IPC_RMID, shm_unlink) on every
//! exit but kill -9, also on Ctrl-C. Names used by `run` and the primitives are meant to
//! persist between commands, like a lock file: `sem-demo unlink NAME` removes one, and
//! `make clean-ipc` sweeps /dev/shm/sem.ipc-demo-* and our SysV keys.
//!
//! See also: sem_overview(7), sem_open(3), sem_wait(3), sem_post(3), sem_getvalue(3),
//! sem_unlink(3), semget(2), semop(2), semctl(2), flock(1), TLPI chapters 47 and 53,
//! Stevens UNP vol. 2 §11.2 (the SysV initialisation race).

mod board;
mod bridge;
mod cli;
mod counter;
mod creation;
mod demo;
mod posix;
mod primitives;
mod procs;
mod run;
mod sem;
mod spawn;
mod stale;
mod sysv;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, DemoArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        return common::error::finish("sem-demo", common::generate::run(Cli::command(), kind));
    }
    common::narrate::init(
        cli.command.as_ref().map_or("demo", Command::role),
        cli.trace,
    );
    let outcome = match &cli.command {
        None => demo::run(&DemoArgs::default()),
        Some(Command::Demo(args)) => demo::run(args),
        Some(Command::Counter(args)) => counter::run(args),
        Some(Command::Update(args)) => counter::update(args),
        Some(Command::Bridge(args)) => bridge::run(args),
        Some(Command::Car(args)) => bridge::car(args),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Post(args)) => primitives::post(args),
        Some(Command::Wait(args)) => primitives::wait(args),
        Some(Command::Trywait(args)) => primitives::trywait(args),
        Some(Command::Value(args)) => primitives::value(args),
        Some(Command::Unlink(args)) => primitives::unlink(args),
    };
    common::error::finish("sem-demo", outcome)
}
