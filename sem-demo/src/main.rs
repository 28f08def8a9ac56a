//! sem-demo: semaphores guarding a shared resource, POSIX named semaphores and System V sets
//! side by side.
//!
//! # What it shows
//!
//! A binary semaphore making read-modify-write updates of a shared file safe (and the
//! updates lost without it); a counting semaphore letting at most K processes in at once (a
//! K-lane bridge); and the one difference between the two kinds that matters when a holder is
//! killed: System V's `SEM_UNDO` gives the permit back, a POSIX semaphore has no owner and
//! loses it. `sem-demo run` is a `flock(1)`-like runner for scripts built on that property:
//! the permit lives exactly as long as the command it guards.
//!
//! # Roles
//!
//! Each is a subcommand; `sem-demo` alone plays `demo`. One terminal is enough for all.
//! - `sem-demo demo [--procs N] [--iters M] [--cars N] [--lanes K]` — everything below,
//!   played with real processes and checked;
//! - `sem-demo counter [--procs N] [--iters M] [--no-lock] [--sysv]` — N `update` processes
//!   on one file, the result checked;
//! - `sem-demo update --file F --iters M (--name NAME | --no-lock) [--sysv]` — one updater
//!   (started by `counter`; by hand too, on any file holding a number);
//! - `sem-demo bridge [--cars N] [--lanes K] [--cross-ms MS] [--quiet] [--sysv]` — N `car`
//!   processes, K permits, the occupancy on a shared-memory board, the timeline checked;
//! - `sem-demo car --name NAME --board NAME --id I [--cross-ms MS] [--sysv]` — one car
//!   (started by `bridge`);
//! - `sem-demo run [--name NAME] [--limit K] [--timeout S] [--posix] -- CMD ARGS...` — run
//!   CMD holding one of K permits, from a script;
//! - `sem-demo post|wait|trywait|value|unlink NAME [--posix|--sysv]` (`wait --timeout S`) —
//!   the primitives, one call each.
//!
//! # System calls, in order
//!
//! - POSIX open (`posix.rs`): `sem_open(/ipc-demo-NAME, O_CREAT|O_EXCL, 0600, V)`, or
//!   `sem_open(NAME, 0)` then `open(/dev/shm/sem.NAME, O_NOFOLLOW)` + `fstat` + the mapping
//!   in `/proc/self/maps` compared with it; `sem_close` on drop, `sem_unlink` by the creator.
//! - SysV open (`sysv.rs`): `semget(0x1dc0xxxx, 4, IPC_CREAT|IPC_EXCL|0600)` → one `semop`
//!   that initialises the set only if nobody has (it sets `sem_otime`); or `semget(key, 0, 0)`
//!   → `semctl(IPC_STAT)` (owner, mode, size, initialised) → `semctl(GETVAL)` of the name's
//!   check values; `semctl(IPC_RMID)` by the creator.
//! - `update` (`update.rs`): per update `sem_wait` / `semop(-1, SEM_UNDO)` → `pread` →
//!   `pwrite` → `sem_post` / `semop(+1, SEM_UNDO)`.
//! - `car` (`car.rs`): `shm_open` + `fstat` + `mmap` of the board → wait → one atomic add on
//!   the board → `nanosleep` → another → post.
//! - `counter`, `bridge`, `demo`: create the objects (`O_EXCL`) → `fork` + `execve` of each
//!   role → wait on each role's pidfd and the shutdown's self-pipe in `poll` → read the
//!   result → remove the objects.
//! - `run` (`run.rs`, `spawn.rs`): open → `semtimedop(-1, SEM_UNDO)` → `sigprocmask(SIG_BLOCK)`
//!   → `clone(CLONE_VM|CLONE_VFORK|CLONE_SYSVSEM)` + `execvp` → `sigwait` (passing signals on)
//!   → `waitpid` → `semop(+1, SEM_UNDO)` → exit with the command's status.
//!
//! # Pitfalls
//!
//! - `/dev/shm` is writable by everyone: a role that creates uses `O_EXCL` and 0600, one that
//!   opens checks the file it mapped, and refuses a truncated one that would raise SIGBUS
//!   (`posix::NamedSem::vet`).
//! - The SysV initialisation race (Stevens, UNP vol. 2 §11.2): a set is created and
//!   initialised in two calls, and a creator killed between them must hold nobody up
//!   (`sysv::SemSet::open`, `initialise`, `adopt`).
//! - Two names can share a SysV key: the set records 30 more bits of its name's hash, and a
//!   set of another name is refused, never shared (`sysv::SemSet::check_name`).
//! - An early return between a wait and its post keeps the permit forever on a POSIX
//!   semaphore: every permit is a guard that posts when dropped (`sem::Permit`).
//! - The kernel applies a dying `run`'s undo list before the death signal that kills its
//!   command: the command shares the list (`CLONE_SYSVSEM`), so the permit outlives neither
//!   (`run.rs`).
//! - The `vfork`-style child runs on our memory: every signal blocked around the `clone`, our
//!   handlers taken down before the mask is restored, nothing allocated, a stack sized for
//!   `execvp` above a guard page (`spawn.rs`, its invariants).
//! - A caller that ignores SIGCHLD would make the kernel reap `run`'s command unseen: `run`
//!   takes the default back for itself and gives the command what it was given
//!   (`spawn::start`).
//! - A stop signal while stdout is stalled (`| less`, stopped): a line waits at most a second
//!   after the stop, then the role unwinds (`common::say!`), and a long timeline looks at the
//!   stop between lines (`bridge.rs`).
//!
//! # Cleanup
//!
//! `counter`, `bridge` and `demo` name their objects after a tag that carries their pid and
//! remove them (`sem_unlink`, `IPC_RMID`, `shm_unlink`, the file) on every exit but `kill -9`,
//! SIGINT, SIGTERM and SIGHUP included, after stopping their roles. Their roles get SIGTERM
//! from the kernel if they are killed with -9 (`PR_SET_PDEATHSIG`), and the next start of any
//! of them removes what a dead one left in the runtime dir and `/dev/shm` (`stale.rs`).
//! Names used by `run` and the primitives persist between commands, like a lock file:
//! `sem-demo unlink NAME` removes one, and `make clean-ipc` sweeps
//! `/dev/shm/sem.ipc-demo-*` and our SysV keys.
//!
//! # Exit status
//!
//! 0 done, 1 the check or the operation failed (and `trywait` that would block, `wait` or
//! `run` that timed out), 2 usage, 128+N stopped by signal N before finishing, after cleaning
//! up (see `common::error`). `run` exits with its command's status: 128+N if signal N killed
//! the command, 126 or 127 if it could not be run; `run` stopped by signal N before its
//! command started dies of it (the shell says 128+N as well), holding nothing.
//!
//! # See also
//!
//! sem_overview(7), sem_open(3), sem_wait(3), sem_post(3), sem_getvalue(3), sem_unlink(3),
//! semget(2), semop(2), semctl(2), flock(1), TLPI chapters 47 and 53, Stevens UNP vol. 2
//! §11.2 (the SysV initialisation race).

mod board;
mod bridge;
mod car;
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
mod update;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("sem-demo", page);
    }
    let command = cli.command.unwrap_or_default();
    common::narrate::init(command.role(), cli.trace);
    let outcome = match &command {
        Command::Demo(args) => demo::run(args),
        Command::Counter(args) => counter::run(args),
        Command::Update(args) => update::run(args),
        Command::Bridge(args) => bridge::run(args),
        Command::Car(args) => car::run(args),
        Command::Run(args) => run::run(args),
        Command::Post(args) => primitives::post(args),
        Command::Wait(args) => primitives::wait(args),
        Command::Trywait(args) => primitives::trywait(args),
        Command::Value(args) => primitives::value(args),
        Command::Unlink(args) => primitives::unlink(args),
    };
    common::error::finish("sem-demo", outcome)
}
