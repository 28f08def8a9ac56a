//! shm-demo: a key-value database in shared memory that client processes read and write
//! directly, with no message to a server.
//!
//! # What it shows
//!
//! POSIX shared memory (`shm_open`, `posix_fallocate`, `mmap(MAP_SHARED)`) and System V shared
//! memory (`shmget`, `shmat`), a segment laid out for several processes and checked as
//! untrusted input (`layout`), and three ways for processes to share it safely (`db`):
//! readers that take no lock (a seqlock, done within Rust's memory model); writers serialised
//! by a robust process-shared pthread mutex that survives a writer killed while holding it
//! (`EOWNERDEAD`, repair from an undo image, `pthread_mutex_consistent`); and `watch`, which
//! sleeps on a futex in the segment until another process changes a key.
//!
//! # Roles
//!
//! Each a subcommand and a module of the same name; `shm-demo` alone plays `demo`.
//!
//! - `shm-demo server [--name /ipc-demo-db] [--slots N] [--value-max B] [--load F] [--save F]
//!   [--fresh] [--pid-file F] [--sysv]` — terminal 1; prints `ready: pid N shm /ipc-demo-db`
//!   on stdout once clients can work (and `READY=1` to `$NOTIFY_SOCKET` if set:
//!   `common::lifecycle`), its status lines on stderr; SIGUSR1 prints stats;
//! - `shm-demo put KEY VALUE|-`, `get KEY`, `del KEY`, `list [--values]`, `stats`,
//!   `watch KEY [--count N]`, `destroy` — terminal 2; each takes `--name` and `--sysv`;
//! - `shm-demo path [object|pid-file|dir]` — where the files live, for scripts
//!   (`kill -USR1 "$(cat "$(shm-demo path pid-file)")"`);
//! - `shm-demo writer`, `shm-demo reader` — the demo's worker processes;
//! - `shm-demo demo [--writers 4] [--readers 4] [--duration-ms 2000] [--sysv]` — everything,
//!   checked.
//!
//! # System calls, in order
//!
//! - server: flock(pid file) -> shm_open(O_CREAT|O_EXCL|O_RDWR, 0600) -> posix_fallocate ->
//!   fstat -> mmap -> pthread_mutex_init(ROBUST, PROCESS_SHARED) -> poll (signal pipes) ->
//!   shm_unlink on a stop. With --sysv: ftok -> shmget(IPC_CREAT|IPC_EXCL, 0600) ->
//!   shmctl(IPC_STAT) -> shmat ... shmctl(IPC_RMID).
//! - every client: shm_open(O_RDWR) -> fstat (owner, mode, size) -> mmap -> the header checked
//!   against st_size.
//! - get: a seqlock read of the records on the probe path (a miss rechecks the table's moves
//!   count); no system call.
//! - put, del: pthread_mutex_timedlock (EOWNERDEAD: repair, pthread_mutex_consistent) -> undo
//!   image -> sequence odd -> write -> sequence even (del: once per record it moves back, each
//!   inside a step of the moves count) -> FUTEX_WAKE if anyone watches -> unlock.
//! - watch: fcntl(F_OFD_SETLK) on the object (the watchers count) -> FUTEX_WAIT on the key's
//!   notify word.
//!
//! # Pitfalls
//!
//! - A racing plain or volatile read is undefined behaviour in Rust even when its result is
//!   thrown away: a seqlock's copy is made of relaxed atomic loads with Boehm's fences
//!   (`db`, `segment::Region`).
//! - A reader racing a delete's move could step past its key: a miss counts only if the
//!   table's moves count held during the probe (`db::Db::get`).
//! - A writer killed holding the mutex: robust mutex, repair from the undo image, then
//!   `pthread_mutex_consistent`, or the mutex is unusable for good (`db::Db::lock`).
//! - pthread functions return their error instead of setting errno (`db::pthread_result`);
//!   a pthread mutex is unlocked by the thread that locked it (`db::Writer` is not `Send`).
//! - A futex with FUTEX_PRIVATE_FLAG is keyed by the address space: a writer in another
//!   process would never wake the watcher (`db::notify`).
//! - A stop signal between a watcher's check and its FUTEX_WAIT: it exits from the handler
//!   (`watch`).
//! - The segment is input: the mapping length comes from fstat, every size, index and offset
//!   in it is checked (`layout::validate`), and the object must be ours and 0600 before it
//!   is mapped (`segment`), because whoever can write the mutex's robust-list pointers can
//!   aim the next writer's unlock anywhere (`layout`).
//! - ftruncate makes a sparse object that is a SIGBUS when /dev/shm fills up: posix_fallocate
//!   (`segment::create`). ftok keeps only part of an inode: the header records the name's
//!   hash (`segment`).
//! - A pid read from the header may have been recycled: the creator counts as alive only with
//!   its start time and the segment in its maps (`db::Db::creator`).
//! - A server asleep in a write to a stderr nobody reads would not see its SIGTERM: its status
//!   lines go through `common::out::Output` (`server`).
//!
//! # Cleanup
//!
//! The server removes the object (`shm_unlink`, or `IPC_RMID` and the key file) and its pid
//! file on SIGTERM, SIGINT and SIGHUP, first thing in a stop (a second signal during a slow
//! `--save` exits at once and leaves nothing), marks the database removed and wakes the
//! watchers, which exit. The demo stops its roles on any exit; its children get SIGTERM from
//! the kernel if it dies without stopping them (PR_SET_PDEATHSIG), SIGKILL for the writer it
//! stopped holding the mutex. After kill -9 the next server adopts the leftover (or `--fresh`
//! discards it); `shm-demo destroy` and `make clean-ipc` remove it.
//!
//! # Exit status
//!
//! 0 done (the server asked to stop included), 1 the check or the operation failed (also:
//! `get` of a missing key, `del` of one that was not stored, a `reader` that saw a bad
//! checksum, a `watch` whose database was removed), 2 usage, 128+N stopped by signal N before
//! finishing (`demo` and `watch`; see `common::error`). The other clients hold nothing to
//! clean up and install no handler: a signal ends them as it ends any program.
//!
//! # See also
//!
//! shm_overview(7), shm_open(3), mmap(2), posix_fallocate(3), svipc(7), shmget(2), shmat(2),
//! ftok(3), pthread_mutexattr_setrobust(3), pthread_mutex_consistent(3), futex(2), TLPI
//! chapters 48 and 54 (pshm_create.c, pshm_read.c, pshm_write.c).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use shm_demo::cli::{self, Cli, Command};
use shm_demo::{del, demo, destroy, get, list, path, put, reader, server, stats, watch, writer};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("shm-demo", page);
    }
    let command = cli.command.unwrap_or_default();
    common::narrate::init(command.role(), cli.trace);
    let outcome = match &command {
        Command::Server(args) => server::run(args),
        Command::Put(args) => put::run(args),
        Command::Get(args) => get::run(args),
        Command::Del(args) => del::run(args),
        Command::List(args) => list::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Destroy(args) => destroy::run(args),
        Command::Path(args) => path::run(args),
        Command::Writer(args) => writer::run(args),
        Command::Reader(args) => reader::run(args),
        Command::Demo(args) => demo::run(args),
    };
    common::error::finish("shm-demo", outcome)
}
