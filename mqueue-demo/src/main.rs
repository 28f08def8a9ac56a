//! mqueue-demo: a task queue on POSIX message queues ("a local Celery") that loses no task.
//!
//! # What it shows
//!
//! Producers put tasks on a queue and workers take them without ever being connected to each
//! other; the kernel keeps each queue in priority order, so urgent tasks are taken first. A
//! supervisor hands each task to one worker, and records it in shared memory until its result
//! is out, so it loses nothing when a worker, or the supervisor itself, is SIGKILLed at any
//! instant (at-least-once delivery); it reports each result once while it lives (and, across
//! its own kill, `submit --wait` tells duplicates apart by task id); a task that fails 5
//! times goes to a dead-letter queue. The same, with `--sysv`, on System V message queues.
//!
//! # Roles
//!
//! Each is a subcommand and a module of the same name; `mqueue-demo` alone plays `demo`.
//! - `mqueue-demo run [--workers 4] [--queue NAME]` — terminal 1: the supervisor (run.rs);
//! - `mqueue-demo worker [--max-tasks N]` — more workers, by hand (`run --workers 0`);
//! - `mqueue-demo submit [--priority N] [--timeout S] [--wait] TASK...` — terminal 2;
//! - `mqueue-demo results [--follow]` — the results of tasks submitted without `--wait`;
//! - `mqueue-demo status`, `purge`, `unlink`, `path` — inspect and tidy;
//! - `mqueue-demo demo` — everything, checked.
//!
//! # System calls, in order
//!
//! - Supervisor (run.rs): `shm_open(NAME-held)` + `fcntl(F_SETLK)` (its record, and the lock
//!   that says it serves NAME) -> `mq_open(NAME, NAME-results, NAME-dead, NAME-done,
//!   O_CREAT|O_EXCL, 0600)` -> `fork`+`exec` K workers -> `poll(NAME, NAME-done, pidfds,
//!   signal pipe)` -> `mq_receive(NAME)` into the record -> `mq_send(NAME-w<pid>)` ->
//!   `mq_receive(NAME-done)` -> `mq_send(NAME-results or NAME-r<pid>-<stamp>)`.
//! - Worker (worker.rs): `mq_open(NAME-w<pid>, O_CREAT|O_EXCL)` -> `mq_send(NAME-done,
//!   hello)` -> `poll` + `mq_receive(inbox)` -> run -> `mq_send(NAME-done, result)`.
//! - Producer (submit.rs): `fcntl(F_GETLK)` on NAME-held (who serves?) -> `mq_open(NAME,
//!   O_WRONLY)` -> `mq_timedsend`; with `--wait`, `poll` on NAME and its own reply queue.
//! - `results --follow` (results.rs): `mq_notify(SIGEV_SIGNAL)` + `signalfd`.
//! - The queues themselves (mq.rs; sysv.rs for `msgget`, `msgsnd`, `msgrcv`, `msgctl`).
//!
//! # Pitfalls
//!
//! - A worker never takes tasks from NAME itself: a kill between its `mq_receive` and any
//!   record of it would lose the task (worker.rs); the supervisor takes it, straight into its
//!   record (run/handoff.rs, record.rs).
//! - `mq_open` with `O_CREAT` needs its attributes, or nix calls the two-argument form;
//!   `MqdT` has no `Drop` (mq.rs).
//! - Roles wait in `poll`, never in a blocking `mq_receive`, which SA_RESTART would restart
//!   after a stop signal (mq.rs).
//! - `mq_notify` is one-shot, fires only on empty -> non-empty, and one process per queue:
//!   register, then drain (results.rs).
//! - A queue name is machine-wide: the proof that a supervisor serves it is a lock on its
//!   record, which closing any descriptor of that file would drop (record.rs).
//! - A client's reply queue can only hurt its client (run/outbox.rs).
//! - System V: no descriptor to poll, priority as the message type, capacity in bytes,
//!   immediate removal (sysv.rs).
//!
//! # Cleanup
//!
//! The supervisor removes its four queues and its record on exit, SIGTERM, SIGINT and SIGHUP
//! included (after its workers finish what they hold); each worker removes its inbox (a System
//! V one is left to a live supervisor, which takes back what is in it); `submit --wait`
//! removes its reply queue. After a kill -9 the next supervisor finds the record unlocked and
//! takes the queues and the record over: the tasks queued and the tasks the killed one held
//! go out again; `mqueue-demo unlink` or `make clean-ipc` removes them instead. An interrupted
//! demo stops every role it started, and they remove what they made.
//!
//! # Exit status
//!
//! 0 done (the supervisor or a worker asked to stop included), 1 the check or the operation
//! failed (`submit --wait`: a task did not succeed), 2 usage, 128+N stopped by signal N
//! before finishing: the demo, `submit --wait` and `results --follow` after cleaning up
//! (see `common::error`).
//!
//! # See also
//!
//! mq_overview(7), mq_open(3), mq_send(3), mq_receive(3), mq_notify(3), mq_getattr(3),
//! msgget(2), msgrcv(2), shm_open(3), fcntl(2) (F_SETLK, F_GETLK), pidfd_open(2), poll(2);
//! TLPI chapters 46 (System V message queues), 52 (pmsg_*.c) and 55 (file locking).

// One module per role, named as its subcommand.
mod demo;
mod path;
mod purge;
mod results;
mod run;
mod status;
mod submit;
mod unlink;
mod worker;

// What the roles share: the command line; the queues of either kind (mq.rs, the lesson's
// calls; sysv.rs; queue.rs, either one) and their names; what travels through them; the
// supervisor's record, which the other roles read; and the tasks a worker runs.
mod cli;
mod mq;
mod names;
mod protocol;
mod queue;
mod record;
mod sysv;
mod tasks;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("mqueue-demo", page);
    }
    let command = cli.command.unwrap_or_default();
    common::narrate::init(command.role(), cli.trace);
    let outcome = match &command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(args),
        Command::Worker(args) => worker::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Results(args) => results::run(args),
        Command::Status(args) => status::run(args),
        Command::Purge(args) => purge::run(args),
        Command::Unlink(args) => unlink::run(args),
        Command::Path(args) => path::run(args),
    };
    common::error::finish("mqueue-demo", outcome)
}
