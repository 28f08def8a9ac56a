//! mqueue-demo: a task queue on POSIX message queues ("a local Celery") that loses no task.
//!
//! What it shows: producers put tasks on a queue and workers take them without ever being
//! connected to each other; the kernel keeps each queue in priority order, so urgent tasks are
//! taken first; a supervisor that hands each task to one worker, and records it in shared
//! memory until the result is out, loses nothing when a worker, or the supervisor itself, is
//! SIGKILLed at any instant (at-least-once delivery), and de-duplicates results by id
//! (exactly-once reporting while it lives; after its own kill, by task id at the producer);
//! a task that fails 5 times goes to a dead-letter queue.
//!
//! Roles (each a subcommand; `mqueue-demo` alone plays `demo`):
//! - `mqueue-demo run [--workers 4] [--queue NAME]` — terminal 1: the supervisor;
//! - `mqueue-demo worker [--max-tasks N]` — more workers, by hand (`run --workers 0`);
//! - `mqueue-demo submit [--priority N] [--timeout S] [--wait] TASK...` — terminal 2;
//! - `mqueue-demo results [--follow]`, `status`, `purge`, `unlink`, `path` — inspect and tidy;
//! - `mqueue-demo demo` — everything, checked.
//!
//! What happens: supervisor: shm_open(NAME-held) + fcntl(F_SETLK) (its record, and the lock
//! that says it serves NAME) -> mq_open(NAME, NAME-results, NAME-dead, NAME-done;
//! O_CREAT|O_EXCL, 0600) -> fork+exec K workers -> poll(NAME, NAME-done, pidfds, signal pipe).
//! Worker: mq_open(NAME-w<pid>, O_CREAT|O_EXCL) -> mq_send(NAME-done, hello) -> poll +
//! mq_receive(inbox) -> run -> mq_send(NAME-done, result). Supervisor: mq_receive(NAME) into the
//! record (highest priority first) -> record (worker, task) -> mq_send(NAME-w<pid>, task);
//! result -> mq_send(NAME-results or the producer's NAME-r<pid>-<stamp>) -> forget; worker's pidfd
//! readable (it died) -> the task goes back out with attempt+1, and a new worker is started.
//! Producer: fcntl(F_GETLK) on NAME-held (who serves?) -> mq_open(NAME, O_WRONLY) ->
//! mq_timedsend. `results --follow`: mq_notify(SIGEV_SIGNAL) + signalfd.
//!
//! Cleanup: the supervisor removes its four queues and its record on exit, SIGTERM and Ctrl-C
//! included (after its workers finish what they hold); each worker removes its inbox (a System
//! V one is left to a live supervisor, which takes back what is in it). After a kill -9 the
//! next supervisor finds the record unlocked and takes the queues and the record over: the
//! tasks queued and the tasks the killed one held go out again; `mqueue-demo unlink` or
//! `make clean-ipc` removes them instead.
//!
//! See also: mq_overview(7), mq_open(3), mq_send(3), mq_receive(3), mq_notify(3),
//! mq_getattr(3), shm_open(3), fcntl(2) (F_SETLK, F_GETLK), pidfd_open(2), poll(2); TLPI
//! chapters 52 (pmsg_*.c) and 55 (file locking).

mod cli;
mod demo;
mod mq;
mod names;
mod path;
mod protocol;
mod purge;
mod queue;
mod record;
mod results;
mod run;
mod status;
mod submit;
mod sysv;
mod tasks;
mod unlink;
mod worker;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, DemoArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        return common::error::finish("mqueue-demo", common::generate::run(Cli::command(), kind));
    }
    common::narrate::init(
        cli.command.as_ref().map_or("demo", Command::role),
        cli.trace,
    );
    let outcome = match &cli.command {
        Some(Command::Run(args)) => run::run(args),
        Some(Command::Worker(args)) => worker::run(args),
        Some(Command::Submit(args)) => submit::run(args),
        Some(Command::Results(args)) => results::run(args),
        Some(Command::Status(q)) => status::run(q),
        Some(Command::Purge(q)) => purge::run(q),
        Some(Command::Unlink(q)) => unlink::run(q),
        Some(Command::Path(args)) => path::run(args),
        Some(Command::Demo(args)) => demo::run(args),
        None => demo::run(&DemoArgs::default()),
    };
    common::error::finish("mqueue-demo", outcome)
}
