//! `mqueue-demo run`, the supervisor: it owns the queues, keeps K workers alive, hands each
//! task to one worker and collects the results, and loses no task when a worker, or the
//! supervisor itself, is killed.
//!
//! Its jobs, one module each, in the order a reader meets them:
//!
//! - [`startup`]: the record and its lock, the queues, and the takeover of what a killed
//!   supervisor left (its queues, and the tasks its record says it held);
//! - [`serve`]: the poll loop, one `poll` on every queue, pidfd and pipe it waits for, and
//!   the stop;
//! - [`handoff`]: each task taken into the record, recorded as given, then sent: why no task
//!   is lost;
//! - [`workers`]: the workers, started, greeted, told to stop and buried;
//! - [`outbox`]: results and dead letters that wait for room in a queue, so that a reader
//!   that stops reading never stops the supervisor.
//!
//! # System calls, in order
//!
//! 1. `sigaction` SIGTERM/SIGINT/SIGHUP (a flag and a self-pipe, `common::cleanup::Shutdown`),
//!    before anything else exists.
//! 2. `shm_open(NAME-held)` + `fcntl(F_SETLK)`: the record and its lock (record.rs); a live
//!    supervisor of the same queue, from whatever runtime dir, is refused and named; a killed
//!    one's record is taken over with every task it held. Then the pid file.
//! 3. `mq_open(NAME, NAME-results, NAME-dead, NAME-done, O_CREAT|O_EXCL, 0600)` (System V:
//!    `msgget(IPC_CREAT|IPC_EXCL)` and the ids file); a name that is there already is someone
//!    else's (refused; `fstat` names the owner) or a killed supervisor's (taken over).
//! 4. `mq_unlink` of the killed supervisor's workers' inboxes; its tasks go out again first.
//! 5. `ready: pid N mqueue NAME` on stdout, READY=1 to `$NOTIFY_SOCKET` (`common::lifecycle`):
//!    from now on a producer succeeds.
//! 6. `fork`+`exec` of K workers (`mqueue-demo worker`), each watched through a pidfd.
//! 7. The poll loop ([`serve`]): `poll`; `mq_receive(NAME)` into the record, then
//!    `mq_send(NAME-w<pid>)`; `mq_receive(NAME-done)` (hellos, results), then
//!    `mq_send(NAME-results or NAME-r<pid>-<stamp>)`; a worker whose pidfd is readable is
//!    reaped (`waitpid`), its inbox emptied and `mq_unlink`ed, and a new one started.
//! 8. SIGTERM/SIGINT/SIGHUP: no new task; workers finish what they hold (for at most
//!    `--stop-timeout`, then SIGKILL); what is left queued is reported; `mq_unlink` of the
//!    four queues, `shm_unlink` of the record; exit 0.
//!
//! # Pitfalls
//!
//! - A task is received straight into the record, in shared memory, by the very
//!   `mq_receive` that takes it off `NAME`: received into our memory first, a kill between
//!   the two would lose it ([`handoff`], record.rs).
//! - Closing any descriptor of the record drops its lock, which is what says we serve `NAME`:
//!   it is opened once (record.rs).
//! - `NAME-done` is read before the pidfds of dead workers are handled: a result sent just
//!   before its worker died counts, and the task is not run again ([`serve`]).
//! - `NAME` is in the `poll` set only while a worker is free: the tasks wait in the kernel, in
//!   priority order, not in our memory ([`serve`]).
//! - stdout never blocks a stop: every line goes through `common::out::Output`, which keeps
//!   what a slow reader has not taken and writes it when `poll` says there is room.
//! - A client's reply queue can only hurt its client: any error on it drops that result, never
//!   stops the supervisor ([`outbox`]).
//! - Workers are spawned from the main thread: PR_SET_PDEATHSIG fires when the *thread* that
//!   forked them ends ([`workers`]).
//! - A worker that keeps dying before its hello (a broken binary, no memory for its queue) is
//!   restarted with a growing back-off, not in a loop ([`workers`]).
//! - A queue a killed supervisor left is taken over only if it is what we would have made:
//!   owner-only, and of the message size asked for ([`startup`]).
//! - A worker stopped with SIGSTOP when its supervisor dies gets SIGHUP and SIGCONT from the
//!   kernel (its process group is orphaned) on top of the parent-death SIGTERM: one request
//!   to stop, not two (`common::cleanup`), so it still removes its inbox. One that cannot (a
//!   kill -9) leaves it to the next supervisor, which removes it ([`startup`]).

mod handoff;
mod outbox;
mod serve;
mod startup;
mod workers;

use std::collections::BinaryHeap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::out::Output;
use common::pidfile::PidFile;
use common::{Error, Result, tell};

use crate::cli::RunArgs;
use crate::names::Names;
use crate::queue::{Flavor, Queue};
use crate::record::Record;
use crate::sysv::Tick;
use handoff::Held;
use outbox::{Gone, Outboxes};
use startup::Guards;
use workers::Worker;

/// What the supervisor has done, for its last line.
#[derive(Default)]
struct Counts {
    taken: u64,
    results: u64,
    dead: u64,
    retried: u64,
    duplicates: u64,
    malformed: u64,
    deaths: u64,
    /// Results dropped because their client's reply queue could not take them.
    dropped: u64,
}

/// Fields drop in order: the workers stop first, then the queues go (`guards`), then the pid
/// file, and the record last, so a newcomer that gets its lock never finds our queues.
struct Supervisor {
    /// stdout, written without blocking.
    out: Output,
    names: Names,
    tasks: Queue,
    done: Queue,
    /// POSIX, or System V queues (`--sysv`), which are polled on a timer, `tick`.
    flavor: Flavor,
    tick: Tick,
    /// Something arrived in this round: look again soon (System V's timer).
    activity: bool,
    /// Result queues (`NAME-results`, reply queues) and `NAME-dead`.
    outboxes: Outboxes,
    /// What `outboxes` has sent or dropped since we last looked.
    gone: Vec<Gone>,
    workers: Vec<Worker>,
    /// Tasks in our hands that wait for a worker: retried, taken back, or a killed
    /// supervisor's. They go out before any new task.
    retries: BinaryHeap<Held>,
    /// Workers to start (our own K) and when.
    to_start: Vec<Instant>,
    backoff: Duration,
    seq: u64,
    stopping: bool,
    /// `--stop-timeout`, and when the stop began plus it: workers still busy then are killed.
    stop_timeout: Duration,
    stop_deadline: Option<Instant>,
    counts: Counts,
    buf: Vec<u8>,
    /// Remove the queues.
    guards: Guards,
    _pid_file: PidFile,
    /// Who holds what, where a kill -9 cannot erase it; its lock says we serve `NAME`.
    record: Record,
}

/// Run the supervisor until SIGTERM, SIGINT or SIGHUP; exit 0 once it has stopped, as a
/// daemon asked to stop does.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    // Every line on stdout goes through `out`, which never blocks (see common::out::Output).
    let mut out = Output::stdout();
    let names = Names::new(&args.queue.name)?;
    let flavor = args.queue.flavor();
    let (record, recovered) = Record::open(&names, flavor, args.msgsize as usize)?;
    let pid_file = PidFile::create(&names.pid_file()?)?;
    let (queues, guards) = startup::create_queues(&names, args, &mut out)?;
    let [tasks, results, dead, done] = queues;
    let outboxes = Outboxes::new(results, dead);
    let now = Instant::now();
    let mut sup = Supervisor {
        out,
        names,
        tasks,
        done,
        flavor,
        tick: Tick::new(),
        activity: false,
        outboxes,
        gone: Vec::new(),
        workers: Vec::new(),
        retries: BinaryHeap::new(),
        to_start: vec![now; args.workers as usize],
        backoff: Duration::ZERO,
        seq: 0,
        stopping: false,
        stop_timeout: Duration::from_secs_f64(args.stop_timeout),
        stop_deadline: None,
        counts: Counts::default(),
        buf: Vec::new(),
        guards,
        _pid_file: pid_file,
        record,
    };
    if let Some(recovered) = recovered {
        sup.take_over_record(recovered)?;
    }
    sup.record.serving();
    sup.guards.serving();
    sup.announce(args.workers)?;
    let outcome = sup.serve(&shutdown);
    // Whatever happened, stop our workers before the queues go: Supervised's drop sends
    // SIGTERM, waits, then SIGKILL, and reaps.
    sup.workers.clear();
    outcome?;
    let left = sup.leftovers()?;
    let sig = shutdown.signal().map_or("a signal", |s| s.as_str());
    let c = &sup.counts;
    tell!(
        sup.out,
        "stopped ({sig}): took {} tasks, {} results, {} retried, {} dead-lettered, {} duplicates \
         dropped, {} malformed, {} worker deaths, {} results dropped; {left}; removed {}, {}",
        c.taken,
        c.results,
        c.retried,
        c.dead,
        c.duplicates,
        c.malformed,
        c.deaths,
        c.dropped,
        sup.names.all().join(", "),
        sup.names.record
    )?;
    sup.out.drain(None)?;
    drop(sup);
    Ok(ExitCode::SUCCESS)
}

impl Supervisor {
    /// Every queue exists and is ours: from now on a `submit` succeeds (its tasks wait in NAME
    /// until the workers are up). Say so, as every daemon of the workspace does
    /// (common::lifecycle): `ready: pid N mqueue NAME` on stdout, READY=1 to a service
    /// manager; then what we serve, and how to try it.
    fn announce(&mut self, workers: u32) -> Result<()> {
        self.out.flush()?;
        let kind = match self.flavor {
            Flavor::Posix => "mqueue",
            Flavor::Sysv => "sysv-mqueue",
        };
        match common::lifecycle::ready(format_args!("{kind} {}", self.names.tasks)) {
            // A stop that came while a stalled stdout held the line back: the loop sees it at
            // once, and we stop as asked.
            Ok(()) | Err(Error::Interrupted(_)) => {}
            Err(e) => return Err(e),
        }
        tell!(
            self.out,
            "serving {} (results {}, dead letters {}, record {}; {}, msgsize {}{}); {workers} \
             workers",
            self.names.tasks,
            self.names.results,
            self.names.dead,
            self.names.record,
            self.tasks.capacity()?,
            self.tasks.msgsize(),
            match self.flavor {
                Flavor::Posix => "",
                Flavor::Sysv => ", System V",
            },
        )?;
        tell!(
            self.out,
            "try: mqueue-demo submit --queue {} --wait 'echo hello'",
            self.names.tasks
        )
    }
}
