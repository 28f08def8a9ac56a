//! shm-demo: a key-value database in shared memory that client processes read and write
//! directly, with no message to a server.
//!
//! What it shows: POSIX shared memory (`shm_open`, `posix_fallocate`, `mmap(MAP_SHARED)`) and
//! System V shared memory (`shmget`, `shmat`); a segment laid out for several processes and
//! checked as untrusted input (`layout`); readers that take no lock (a seqlock, done within
//! Rust's memory model); writers serialised by a robust process-shared pthread mutex that
//! survives a writer killed while holding it (EOWNERDEAD, repair, `pthread_mutex_consistent`);
//! and `watch`, which sleeps on a futex in the segment until another process changes a key.
//!
//! Roles (each a subcommand; `shm-demo` alone plays `demo`):
//! - `shm-demo server [--name /ipc-demo-db] [--slots N] [--value-max B] [--load F] [--save F]
//!   [--fresh] [--sysv]` — terminal 1; prints `ready: pid N shm /ipc-demo-db` on stdout once
//!   clients can work (and sends READY=1 to `$NOTIFY_SOCKET` if set: `common::lifecycle`),
//!   its status lines on stderr; SIGUSR1 prints stats, SIGTERM/SIGINT remove and save;
//! - `shm-demo put KEY VALUE|-`, `get KEY`, `del KEY`, `list [--values]`, `stats`,
//!   `watch KEY [--count N]`, `destroy` — terminal 2; all take `--name` and `--sysv`;
//! - `shm-demo path [object|pid-file|dir]` — where the files live, for scripts
//!   (`kill -USR1 "$(cat "$(shm-demo path pid-file)")"`);
//! - `shm-demo writer`, `shm-demo reader` — the demo's worker processes;
//! - `shm-demo demo [--writers 4] [--readers 4] [--duration-ms 2000] [--sysv]` — everything,
//!   checked.
//!
//! What happens: server: flock(pid file) -> shm_open(O_CREAT|O_EXCL|O_RDWR, 0600) ->
//! posix_fallocate -> fstat -> mmap -> pthread_mutex_init(ROBUST, PROCESS_SHARED) -> poll.
//! Client: shm_open(O_RDWR) -> fstat (owner, mode, size) -> mmap -> check the header against
//! st_size. get: seqlock read of the records on the probe path (a miss rechecks the table's
//! moves count). put/del: pthread_mutex_timedlock (EOWNERDEAD: repair +
//! pthread_mutex_consistent) -> undo image -> sequence odd -> write -> sequence even (del:
//! once per record it moves back, each inside a step of the moves count) -> FUTEX_WAKE if
//! anyone watches -> unlock. watch: fcntl(F_OFD_SETLK) on the object (the watchers count) ->
//! FUTEX_WAIT on the key's notify word.
//!
//! Cleanup: the server removes the object (`shm_unlink`, or `IPC_RMID` and the key file) and
//! its pid file on exit, SIGTERM and SIGINT, first thing in a stop (a second signal during a
//! slow `--save` exits at once and leaves nothing), and wakes the watchers, which exit; the demo's children get SIGTERM from the
//! kernel if the demo dies without stopping them (PR_SET_PDEATHSIG); after kill -9 the next server adopts the leftover
//! (or `--fresh` discards it) and `shm-demo destroy` / `make clean-ipc` remove it.
//!
//! See also: shm_overview(7), shm_open(3), mmap(2), posix_fallocate(3), svipc(7), shmget(2),
//! shmat(2), ftok(3), pthread_mutexattr_setrobust(3), pthread_mutex_consistent(3), futex(2),
//! TLPI chapters 48 and 54 (pshm_create.c, pshm_read.c, pshm_write.c).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use shm_demo::cli::{Cli, Command, DemoArgs};
use shm_demo::{client, demo, server, workers};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        return common::error::finish("shm-demo", common::generate::run(Cli::command(), kind));
    }
    common::narrate::init(
        cli.command.as_ref().map_or("demo", Command::role),
        cli.trace,
    );
    let outcome = match &cli.command {
        Some(Command::Server(args)) => server::run(args),
        Some(Command::Writer(args)) => workers::writer(args),
        Some(Command::Reader(args)) => workers::reader(args),
        Some(Command::Demo(args)) => demo::run(args),
        Some(other) => client::run(other),
        None => demo::run(&DemoArgs::default()),
    };
    common::error::finish("shm-demo", outcome)
}
