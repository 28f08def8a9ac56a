//! The supervisor: owns the queues, keeps K workers alive, hands out tasks, collects results.
//!
//! # Start-up, in order
//!
//! 1. SIGTERM/SIGINT handlers (a flag and a self-pipe), before anything else exists.
//! 2. The record `NAME-held` and its lock (record.rs): a live supervisor of the same queue,
//!    from whatever runtime dir, is refused, and named; a killed one's record is taken over,
//!    with every task it held. Then the pid file in the runtime dir (for `kill $(cat ...)`).
//! 3. The four queues, `O_CREAT|O_EXCL` 0600 (see [`create_queues`]): a name that is already
//!    there is someone else's (refused; `fstat` on the descriptor names the owner) or a dead
//!    supervisor's (taken over: tasks waiting in it are kept).
//! 4. The tasks a killed supervisor held go out again first; the inboxes of its workers are
//!    removed.
//! 5. `ready: pid N mqueue NAME` on stdout, and READY=1 to `$NOTIFY_SOCKET` if a service
//!    manager set it (`common::lifecycle`): a producer that starts now succeeds.
//! 6. K workers, each a `fork`+`exec` of this binary, each watched through a pidfd.
//! 7. Then one `poll` on everything: `NAME` (only while a worker is idle), `NAME-done`, every
//!    worker's pidfd, the signal pipe, result queues with results waiting for room, and
//!    stdout while lines wait for a slow reader (`common::out::Output`: stdout never blocks a stop).
//!
//! # The hand-off: why no task is lost
//!
//! A task is always in exactly one of these places: a kernel queue (`NAME`, or a worker's
//! inbox), the supervisor's record (record.rs: shared memory that outlives it), or delivered
//! as a result. The supervisor takes a task from `NAME` only when it has an idle worker and a
//! free slot in the record, and `mq_receive` writes the task straight into that slot; then it
//! *records* that the worker holds it, and only then sends it to the worker's inbox. So there
//! is no instant at which a worker's death can leave a task unrecorded: killed before it
//! received the task, the task is still in its inbox (reclaimed with the same attempt number);
//! killed after, the record is there (given out again with attempt+1). The supervisor reads
//! `NAME-done` before it handles deaths, so a result sent just before the worker died is
//! counted, not re-run. A task leaves the record only once its result is in a queue.
//!
//! Results are matched against the record (worker pid and task id); anything else is a
//! duplicate or a stray and is dropped and counted, so each task is reported once.
//!
//! The supervisor itself killed with -9: its workers stop (they watch it), the queues stay,
//! and so does the record, so the next supervisor gives out again every task that has no
//! result yet, with the same attempt number. A result sent just before the kill may then come
//! twice; `submit --wait` tells them apart by task id.

use std::collections::BinaryHeap;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::child::{Ended, RoleCommand, Supervised};
use common::cleanup::{Object, Shutdown, Unlink};
use common::pidfile::PidFile;
use common::{Context, Error, Result, pidfd, sysv_key, tell, trace};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::cli::RunArgs;
use crate::mq::{Access, Created, Mq};
use crate::names::Names;
use crate::outbox::{Gone, Letter, Outboxes};
use crate::protocol::{self, MAX_ATTEMPTS, Message, Status, Task, TaskResult};
use crate::queue::{self, Flavor, Guard, Queue};
use crate::record::{Record, Recovered};
use crate::sysv::{self, Remove, SysvQ, Tick};
use common::out::Output;

/// The first wait before restarting a worker that died before it said hello; doubled each
/// time it happens again, up to [`MAX_BACKOFF`], and forgotten once a worker completes a task.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A task in the supervisor's hands, with what the queue told about it.
#[derive(Clone, Debug)]
struct Held {
    task: Task,
    /// Where the record keeps it.
    slot: usize,
    prio: u32,
    /// CLOCK_MONOTONIC when it was first taken off `NAME` (the demo checks priority order).
    taken_ns: u64,
    /// Tie-break for equal priorities: first taken, first given out again.
    seq: u64,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// A max-heap pops the highest priority, then the lowest sequence number.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prio
            .cmp(&other.prio)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

struct Worker {
    pid: Pid,
    /// Our own child (restarted when it dies); None for a worker started by hand.
    child: Option<Supervised>,
    /// Readable once the process has exited.
    pidfd: OwnedFd,
    /// The worker's inbox, opened read-write after its hello: we send tasks into it, and
    /// after its death we take back what it never received.
    inbox: Option<Queue>,
    holding: Option<Held>,
    /// It asked to leave (`--max-tasks`) or was told to stop: no more tasks for it.
    leaving: bool,
}

impl Worker {
    fn idle(&self) -> bool {
        self.inbox.is_some() && self.holding.is_none() && !self.leaving
    }
}

impl Drop for Worker {
    /// A worker of ours that is dropped without being buried (the supervisor is leaving):
    /// stop and reap it (Supervised's drop), then remove its inbox, which a System V worker
    /// leaves to us while we live (see worker.rs). A worker started by hand is not waited for;
    /// it removes its own inbox once it sees that we have gone.
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            drop(child);
            if let Some(inbox) = self.inbox.take() {
                if let Err(e) = inbox.remove() {
                    eprintln!("warning: {e}");
                }
            }
        }
    }
}

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
    retries: BinaryHeap<Held>,
    /// Workers to start (our own K) and when.
    to_start: Vec<Instant>,
    backoff: Duration,
    seq: u64,
    stopping: bool,
    /// `--stop-timeout`, and when the stop began plus it: workers still busy then are killed.
    stop_timeout: Duration,
    stop_deadline: Option<Instant>,
    /// `--parent PID` (the demo): its pidfd, and whether it has exited (then we stop).
    parent: Option<(Pid, OwnedFd)>,
    parent_gone: bool,
    counts: Counts,
    buf: Vec<u8>,
    /// Remove the queues.
    guards: Guards,
    _pid_file: PidFile,
    /// Who holds what, where a kill -9 cannot erase it; its lock says we serve `NAME`.
    record: Record,
}

/// Run the supervisor until SIGTERM/SIGINT.
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    // Every line on stdout goes through `out`, which never blocks (see common::out::Output).
    let mut out = Output::stdout();
    let parent = args
        .parent
        .map(|p| watch_parent(Pid::from_raw(p)))
        .transpose()?;
    let names = Names::new(&args.queue.name)?;
    let (record, recovered) = Record::open(&names, args.queue.flavor(), args.msgsize as usize)?;
    let pid_file = PidFile::create(&names.pid_file()?)?;
    let (queues, guards) = create_queues(&names, args, &mut out)?;
    let [tasks, results, dead, done] = queues;
    let outboxes = Outboxes::new(results, dead);
    let now = Instant::now();
    let mut sup = Supervisor {
        out,
        names,
        tasks,
        done,
        flavor: args.queue.flavor(),
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
        parent,
        parent_gone: false,
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
    // Every queue exists and is ours: from now on a `submit` succeeds (its tasks wait in NAME
    // until the workers are up). Say so, as every daemon of the workspace does
    // (common::lifecycle): `ready: pid N mqueue NAME` on stdout, READY=1 to a service manager.
    sup.out.flush()?;
    let kind = match sup.flavor {
        Flavor::Posix => "mqueue",
        Flavor::Sysv => "sysv-mqueue",
    };
    common::lifecycle::ready(format_args!("{kind} {}", sup.names.tasks))?;
    tell!(
        sup.out,
        "serving {} (results {}, dead letters {}, record {}; {}, msgsize {}{}); {} workers",
        sup.names.tasks,
        sup.names.results,
        sup.names.dead,
        sup.names.record,
        sup.tasks.capacity()?,
        sup.tasks.msgsize(),
        match sup.flavor {
            Flavor::Posix => "",
            Flavor::Sysv => ", System V",
        },
        args.workers
    )?;
    tell!(
        sup.out,
        "try: mqueue-demo submit --queue {} --wait 'echo hello'",
        sup.names.tasks
    )?;
    let outcome = sup.serve(&shutdown);
    // Whatever happened, stop our workers before the queues go: Supervised's drop sends
    // SIGTERM, waits, then SIGKILL, and reaps.
    sup.workers.clear();
    outcome?;
    let left = sup.leftovers()?;
    let sig = match (&sup.parent, shutdown.signal()) {
        (Some((pid, _)), None) if sup.parent_gone => format!("parent pid {pid} exited"),
        (_, Some(s)) => s.as_str().to_owned(),
        _ => "signal".to_owned(),
    };
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

/// Create the four queues, or take over a dead supervisor's (we hold its record's lock, so
/// none is alive). Returns them with their removal guards, in the order they must be dropped.
fn create_queues(names: &Names, args: &RunArgs, out: &mut Output) -> Result<([Queue; 4], Guards)> {
    if args.queue.flavor() == Flavor::Sysv {
        return create_sysv_queues(names, args, out);
    }
    let mut queues = Vec::new();
    let mut guards = Guards::default();
    for (i, name) in names.all().into_iter().enumerate() {
        let access = if i == 0 || i == 3 {
            Access::Read
        } else {
            Access::ReadWrite
        };
        let (mq, taken) =
            match Mq::create(name, args.depth as usize, args.msgsize as usize, access)? {
                Created::New(q) => (q, false),
                Created::Exists => {
                    // Someone else's queue is refused by Mq::open (fstat names its owner).
                    let mq = Mq::open(name, access, true)?;
                    check_leftover(&mq, args.msgsize as usize)?;
                    let q = Queue::Posix(mq);
                    take_over(&q, *name == names.done, out)?;
                    match q {
                        Queue::Posix(mq) => (mq, true),
                        Queue::Sysv(_) => unreachable!("opened as POSIX just above"),
                    }
                }
            };
        let guard = Guard::Unlink(Unlink::new(Object::Mqueue(name.to_owned())));
        guards.push(guard, taken);
        queues.push(Queue::Posix(mq));
    }
    let queues = queues
        .try_into()
        .map_err(|_| Error::msg("four queues expected"))?;
    Ok((queues, guards))
}

/// What removes the queues when the supervisor exits. A queue it made is removed even if the
/// start-up fails after it; one it took over from a killed supervisor is left alone until the
/// supervisor serves ([`Guards::serving`]): a start-up that fails leaves it as it was found,
/// tasks and all, for the next attempt.
#[derive(Default)]
struct Guards {
    /// System V's ids file, dropped first (no role then finds the ids of removed queues), and
    /// whether it names queues taken over.
    ids_file: Option<(Guard, bool)>,
    /// Each queue's guard, and whether the queue was taken over.
    queues: Vec<(Guard, bool)>,
    serving: bool,
}

impl Guards {
    fn push(&mut self, guard: Guard, taken_over: bool) {
        self.queues.push((guard, taken_over));
    }

    /// We serve: everything is ours to remove at exit.
    fn serving(&mut self) {
        self.serving = true;
    }
}

impl Drop for Guards {
    fn drop(&mut self) {
        let all = self
            .ids_file
            .take()
            .into_iter()
            .chain(self.queues.drain(..));
        for (guard, taken_over) in all {
            if taken_over && !self.serving {
                guard.keep();
            } else {
                drop(guard);
            }
        }
    }
}

/// A queue of ours found at one of our names is taken over only if it is what we would have
/// made: owner-only, and with the message size asked for (a task taken from a larger `NAME`
/// would not fit a worker's inbox, nor a malformed one `NAME-dead`). `NAME-done` is trusted for the pids in workers' hellos and for results,
/// and `NAME` for tasks, because only our uid can write to them; a leftover that others may
/// open (made by hand, or chmod-ed) could already be open for writing by another user, and
/// changing its mode now would not close their descriptors. So it is refused, not repaired.
fn check_leftover(mq: &Mq, msgsize: usize) -> Result<()> {
    let mode = mq.mode()?;
    if mode & 0o077 != 0 {
        return Err(Error::msg(format!(
            "{}: mode {mode:04o} lets other users open it, so its messages cannot be trusted; \
             remove it (mqueue-demo unlink --queue ...) and start again",
            mq.name()
        )));
    }
    if mq.msgsize() != msgsize {
        return Err(Error::msg(format!(
            "{}: left by a supervisor that was killed, with messages of up to {} bytes, not \
             --msgsize {msgsize}: start with --msgsize {}, or remove the queues (mqueue-demo \
             unlink --queue ...)",
            mq.name(),
            mq.msgsize(),
            mq.msgsize()
        )));
    }
    Ok(())
}

/// A dead supervisor's queue, reused: its tasks and results are kept; what is in `NAME-done`
/// (hellos and results from that supervisor's workers) means nothing now.
fn take_over(q: &Queue, is_done: bool, out: &mut Output) -> Result<()> {
    if is_done {
        let mut buf = Vec::new();
        while q.receive(&mut buf).is_ok() {}
    }
    tell!(
        out,
        "taking over {}, left by a supervisor that was killed ({} messages in it)",
        q.name(),
        q.depth()?
    )
}

/// `--sysv`: the four queues by key (see `sysv.rs`), and the ids file that tells the other
/// roles their ids. A dead supervisor's ids file names queues to take over.
fn create_sysv_queues(
    names: &Names,
    args: &RunArgs,
    out: &mut Output,
) -> Result<([Queue; 4], Guards)> {
    let msgsize = args.msgsize as usize;
    let old = sysv::read_ids(&names.tasks).ok();
    let mut queues = Vec::new();
    let mut guards = Guards::default();
    let mut any_taken = false;
    for (i, name) in names.all().into_iter().enumerate() {
        let reused = old
            .and_then(|(size, ids)| SysvQ::open(name, ids[i], size).ok())
            .map(Queue::Sysv);
        let taken = reused.is_some();
        let q = match reused {
            Some(q) => {
                take_over(&q, *name == names.done, out)?;
                q
            }
            None => Queue::Sysv(SysvQ::create(name, msgsize)?),
        };
        if let Queue::Sysv(sq) = &q {
            guards.push(Guard::Remove(Remove::new(sq)), taken);
        }
        any_taken |= taken;
        queues.push(q);
    }
    let msgsize = queues[0].msgsize();
    let ids: Vec<String> = queues
        .iter()
        .zip(["tasks", "results", "dead", "done"])
        .map(|(q, k)| match q {
            Queue::Sysv(sq) => format!("{k}={}", sq.id()),
            Queue::Posix(_) => unreachable!("all System V here"),
        })
        .collect();
    let path = sysv::ids_file(&names.tasks)?;
    write_private(&path, &format!("msgsize={msgsize} {}\n", ids.join(" ")))?;
    // Removed first: no role finds ids of removed queues.
    guards.ids_file = Some((Guard::Unlink(Unlink::path(&path)), any_taken));
    for q in &queues {
        if let Queue::Sysv(sq) = q {
            tell!(
                out,
                "{}: System V key 0x{:08x}, id {} (ipcs -q)",
                sq.name(),
                sq.key(),
                sq.id()
            )?;
        }
    }
    let queues = queues
        .try_into()
        .map_err(|_| Error::msg("four queues expected"))?;
    Ok((queues, guards))
}

/// Write `text` to a new file of ours (0600), replacing a leftover atomically.
fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("sysv.new");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .ctx("open", tmp.display())?;
    f.write_all(text.as_bytes()).ctx("write", tmp.display())?;
    std::fs::rename(&tmp, path).ctx("rename", path.display())
}

impl Supervisor {
    fn serve(&mut self, shutdown: &Shutdown) -> Result<()> {
        loop {
            if (shutdown.requested() || self.parent_gone) && !self.stopping {
                self.begin_stop()?;
            }
            if self.stop_deadline.is_some_and(|d| Instant::now() >= d) {
                self.give_up_on_workers()?;
            }
            if self.stopping && self.workers.is_empty() {
                return Ok(());
            }
            let next_start = self
                .to_start
                .iter()
                .min()
                .copied()
                .filter(|_| !self.stopping);
            // Reply queues nothing needs any more are closed on time, even when nothing else
            // happens (see outbox.rs).
            let close = self.outboxes.close_idle(None);
            // A full record (results waiting for readers hold their slots) takes no new
            // task: back-pressure instead of unbounded memory.
            let take = !self.stopping
                && self.retries.is_empty()
                && !self.record.full()
                && self.workers.iter().any(Worker::idle);
            let dead_pids = {
                // A shutdown that is being handled keeps its pipe readable; don't spin on it.
                let wake = if self.stopping {
                    PollFlags::empty()
                } else {
                    PollFlags::POLLIN
                };
                let mut fds = vec![PollFd::new(shutdown.wake_fd(), wake)];
                for w in &self.workers {
                    fds.push(PollFd::new(w.pidfd.as_fd(), PollFlags::POLLIN));
                }
                // The queues, where they are descriptors (POSIX; System V queues are checked on
                // a timer instead). The task queue is watched only while a worker is free to
                // take a task: the tasks wait in the kernel, in priority order, not in our
                // memory.
                fds.extend(self.done.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
                if take {
                    fds.extend(self.tasks.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
                }
                fds.extend(
                    self.outboxes
                        .poll_fds()
                        .map(|fd| PollFd::new(fd, PollFlags::POLLOUT)),
                );
                // Lines for a slow reader of our stdout: written when it takes them, never
                // waited for in `write` (see common::out::Output).
                fds.extend(
                    self.out
                        .waiting_fd()
                        .map(|fd| PollFd::new(fd, PollFlags::POLLOUT)),
                );
                // Last: the parent that asked to be watched (`--parent`), until we stop.
                let parent_at = fds.len();
                if let Some((_, fd)) = self.parent.as_ref().filter(|_| !self.stopping) {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
                let wake = [next_start, self.stop_deadline, close]
                    .into_iter()
                    .flatten()
                    .min();
                let timeout =
                    queue::poll_timeout(self.flavor == Flavor::Sysv, &mut self.tick, wake);
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(Error::sys("poll", &self.names.tasks, e)),
                }
                let ready = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
                if fds.get(parent_at).is_some_and(ready) {
                    self.parent_gone = true;
                }
                self.workers
                    .iter()
                    .zip(&fds[1..=self.workers.len()])
                    .filter(|(_, fd)| ready(fd))
                    .map(|(w, _)| w.pid)
                    .collect::<Vec<Pid>>()
            };
            // Results before deaths: a result sent just before its worker died counts. Each
            // of these is a non-blocking call that returns at once when there is nothing to do.
            self.out.flush()?;
            self.drain_done()?;
            for pid in dead_pids {
                self.bury(pid)?;
            }
            self.start_due_workers()?;
            if self.undelivered() > 0 {
                self.flush_outboxes()?;
            }
            if !self.stopping {
                self.dispatch()?;
            }
            if std::mem::take(&mut self.activity) {
                self.tick.reset();
            }
        }
    }

    /// The record of a supervisor that was killed (record.rs): every task it held goes out
    /// again, before any new one and with the same attempt number (the task did not fail, its
    /// supervisor died); the inboxes of its workers are removed (they stop when it dies, but
    /// one killed with it could not remove its own).
    fn take_over_record(&mut self, found: Recovered) -> Result<()> {
        for &(pid, sysv_inbox) in &found.workers {
            self.remove_old_inbox(pid, sysv_inbox)?;
        }
        let held = found.tasks.len();
        let mut tasks = found.tasks;
        tasks.sort_by_key(|f| f.taken_ns);
        for f in tasks {
            match protocol::decode(&f.msg) {
                Ok(Message::Task(task)) => {
                    if let Some(reply) = self.reply_queue(&task) {
                        self.outboxes.expect(reply);
                    }
                    self.seq += 1;
                    self.retries.push(Held {
                        task,
                        slot: f.slot,
                        prio: f.prio,
                        taken_ns: f.taken_ns,
                        seq: self.seq,
                    });
                }
                // It was on its way to the dead-letter queue.
                other => {
                    self.buf = f.msg;
                    self.malformed_task(other, f.prio, f.slot)?;
                }
            }
        }
        let garbage = match found.garbage {
            0 => String::new(),
            n => format!(
                "; {n} messages it had just taken off {} were no task, and are lost",
                self.names.tasks
            ),
        };
        tell!(
            self.out,
            "taking over {}, left by supervisor pid {}, which was killed: {held} tasks it held \
             go out again{garbage}",
            self.names.record,
            found.pid
        )
    }

    /// The inbox of a worker of a supervisor that was killed, removed whether or not that
    /// worker still runs: its supervisor is gone, so it is leaving, and never reads its inbox
    /// again (worker.rs); it may not get to remove the inbox itself (a worker stopped with
    /// SIGSTOP is sent SIGHUP when its supervisor, the leader of its process group, dies: a
    /// second stop signal, which means "exit now"). POSIX: unlinked by name. System V: by the
    /// id the record kept, if that queue is still one of ours (our uid and key range).
    fn remove_old_inbox(&mut self, pid: Pid, sysv_inbox: i32) -> Result<()> {
        let name = self.names.inbox(pid);
        if self.flavor == Flavor::Posix {
            return Object::Mqueue(name).unlink();
        }
        if sysv_inbox >= 0 {
            if let Ok(q) = SysvQ::open(&name, sysv_inbox, self.tasks.msgsize()) {
                if sysv_key::is_ours(q.key()) {
                    q.remove()?;
                }
            }
        }
        Ok(())
    }

    fn undelivered(&self) -> usize {
        self.outboxes.waiting()
    }

    /// Start the workers whose time has come (our own K; never while stopping).
    fn start_due_workers(&mut self) -> Result<()> {
        if self.stopping {
            self.to_start.clear();
            return Ok(());
        }
        let now = Instant::now();
        let due = self.to_start.iter().filter(|&&at| at <= now).count();
        self.to_start.retain(|&at| at > now);
        for _ in 0..due {
            self.start_worker()?;
        }
        Ok(())
    }

    fn start_worker(&mut self) -> Result<()> {
        let mut worker = RoleCommand::new("worker", Duration::ZERO)?;
        worker
            .arg("worker")
            .arg("--queue")
            .arg(&self.names.tasks)
            .arg("--supervisor")
            .arg(std::process::id().to_string())
            .args(self.flavor.args())
            .stdout(Stdio::null())
            // In our process group: a Ctrl-C at the terminal reaches the workers too, and each
            // finishes its task and exits, as we wait for them to.
            .same_group()
            // It runs as long as we do; we stop it.
            .without_deadline();
        // If we die without unwinding (kill -9), the kernel sends each worker SIGTERM (the
        // default of RoleCommand: PR_SET_PDEATHSIG; we spawn from the main thread, as that
        // needs), and a worker also watches our pidfd, so none outlives us by more than the
        // task in its hands.
        let child = worker.spawn()?;
        let pid = child.pid();
        let pidfd = pidfd::open(pid).ctx("pidfd_open", pid)?;
        // Recorded from its start: if we both die, the next supervisor removes its inbox.
        self.record.add_worker(pid, -1);
        tell!(self.out, "worker pid {pid} started")?;
        self.workers.push(Worker {
            pid,
            child: Some(child),
            pidfd,
            inbox: None,
            holding: None,
            leaving: false,
        });
        Ok(())
    }

    /// Read everything in `NAME-done`: hellos and results.
    fn drain_done(&mut self) -> Result<()> {
        loop {
            match self.done.receive(&mut self.buf) {
                Ok(_) => self.activity = true,
                Err(Errno::EAGAIN) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(self.done.receive_call(), &self.names.done, e)),
            }
            match protocol::decode(&self.buf) {
                Ok(Message::Hello { pid, sysv_id }) => self.hello(Pid::from_raw(pid), sysv_id)?,
                Ok(Message::Result(r)) => self.result(r)?,
                Ok(other) => {
                    self.counts.malformed += 1;
                    tell!(
                        self.out,
                        "unexpected {other:?} in {}; dropped",
                        self.names.done
                    )?;
                }
                Err(e) => {
                    self.counts.malformed += 1;
                    tell!(
                        self.out,
                        "{} ({} bytes) in {}; dropped",
                        e,
                        self.buf.len(),
                        self.names.done
                    )?;
                }
            }
        }
    }

    fn hello(&mut self, pid: Pid, sysv_id: i32) -> Result<()> {
        let inbox_name = self.names.inbox(pid);
        let opened = match self.flavor {
            Flavor::Posix => Mq::open(&inbox_name, Access::ReadWrite, true).map(Queue::Posix),
            Flavor::Sysv => {
                SysvQ::open(&inbox_name, sysv_id, self.tasks.msgsize()).map(Queue::Sysv)
            }
        };
        let inbox = match opened {
            Ok(q) => q,
            Err(e) => {
                tell!(
                    self.out,
                    "hello from pid {pid}, but its inbox: {e}; ignored"
                )?;
                return Ok(());
            }
        };
        if let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) {
            w.inbox = Some(inbox);
            self.record.add_worker(pid, sysv_id);
        } else {
            // A worker started by hand. Its pid came in a message, but only our own uid can
            // write to NAME-done (0600), and the pidfd pins the process from now on.
            let pidfd = match pidfd::open(pid) {
                Ok(fd) => fd,
                Err(e) => {
                    // Most likely it died since its hello (kill -9: its inbox is left behind,
                    // and nobody else will ever know that name). We opened the inbox, checked
                    // it is ours: remove it, as `bury` does for a worker we watched.
                    inbox.remove()?;
                    tell!(
                        self.out,
                        "hello from pid {pid}, but pidfd_open: {}; removed {inbox_name}",
                        e.desc()
                    )?;
                    return Ok(());
                }
            };
            tell!(self.out, "worker pid {pid} joined")?;
            self.record.add_worker(pid, sysv_id);
            self.workers.push(Worker {
                pid,
                child: None,
                pidfd,
                inbox: Some(inbox),
                holding: None,
                leaving: false,
            });
        }
        if self.stopping {
            self.stop_worker(pid);
        }
        Ok(())
    }

    fn result(&mut self, mut r: TaskResult) -> Result<()> {
        let pid = Pid::from_raw(r.pid);
        let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) else {
            self.counts.duplicates += 1;
            trace!(
                "result for {} from unknown pid {pid}: dropped",
                protocol::show_id(r.id)
            );
            return Ok(());
        };
        if w.holding.as_ref().is_none_or(|h| h.task.id != r.id) {
            self.counts.duplicates += 1;
            trace!(
                "result for {} that pid {pid} does not hold: dropped",
                protocol::show_id(r.id)
            );
            return Ok(());
        }
        let held = w.holding.take().expect("checked just above");
        if r.last {
            w.leaving = true;
        }
        if self.stopping {
            self.stop_worker(pid);
        }
        self.backoff = Duration::ZERO;
        r.taken_ns = held.taken_ns;
        match r.status {
            Status::Ok | Status::Dead => {
                self.record.await_letters(held.slot, 1);
                self.publish(&held, &r)
            }
            Status::Failed => {
                let why = String::from_utf8_lossy(&r.output).into_owned();
                self.retry_or_bury(held, &format!("failed: {why}"), r.pid)
            }
        }
    }

    /// A task that failed, or whose worker died holding it: give it out again with attempt+1,
    /// or, after the last attempt, move it to the dead-letter queue and report it dead.
    fn retry_or_bury(&mut self, mut held: Held, why: &str, pid: i32) -> Result<()> {
        let id = protocol::show_id(held.task.id);
        if held.task.attempt >= MAX_ATTEMPTS {
            self.counts.dead += 1;
            let msg = protocol::encode_task(&held.task, usize::MAX)
                .map_err(|e| Error::msg(e.to_string()))?;
            let dead = self.names.dead.clone();
            // Two messages about it: its copy in NAME-dead, and its result.
            self.record.await_letters(held.slot, 2);
            self.dead_letter(msg, held.prio, Some(held.task.id), Some(held.slot))?;
            tell!(
                self.out,
                "task {id} dead-lettered to {dead} after {MAX_ATTEMPTS} attempts: {}",
                common::out::escape(why.as_bytes())
            )?;
            let r = TaskResult {
                id: held.task.id,
                pid,
                status: Status::Dead,
                attempt: held.task.attempt,
                taken_ns: held.taken_ns,
                last: false,
                output: format!("dead-lettered after {MAX_ATTEMPTS} attempts: {why}").into_bytes(),
            };
            return self.publish(&held, &r);
        }
        self.counts.retried += 1;
        held.task.attempt += 1;
        self.record.set_attempt(held.slot, held.task.attempt);
        trace!("task {id} {why}; retrying as attempt {}", held.task.attempt);
        if held.task.kind != protocol::Kind::Fail || held.task.attempt == 2 {
            tell!(
                self.out,
                "task {id} {}; retrying as attempt {}",
                common::out::escape(why.as_bytes()),
                held.task.attempt
            )?;
        }
        self.requeue(held);
        Ok(())
    }

    /// A task waits for an idle worker again (retries go out before new tasks).
    fn requeue(&mut self, held: Held) {
        self.record.give(held.slot, None);
        self.retries.push(held);
    }

    /// Where a task's result goes: its reply queue if it names one of ours, else
    /// `NAME-results`.
    fn reply_queue<'a>(&self, task: &'a Task) -> Option<&'a str> {
        let ours = self.names.is_reply(&task.reply)
            || (self.flavor == Flavor::Sysv && is_sysv_reply(&task.reply));
        ours.then_some(task.reply.as_str())
    }

    /// Send a result where the task asked (its reply queue) or to `NAME-results`, sized for
    /// the queue it goes to (see outbox.rs: a client's queue can only hurt its client).
    fn publish(&mut self, held: &Held, r: &TaskResult) -> Result<()> {
        let task = &held.task;
        self.counts.results += 1;
        let reply = self.reply_queue(task).map(str::to_owned);
        if reply.is_none() && !task.reply.is_empty() {
            tell!(
                self.out,
                "task {} names reply queue {:?}, not one of ours; result sent to {}",
                protocol::show_id(task.id),
                common::out::escape(task.reply.as_bytes()),
                self.names.results
            )?;
        }
        let dest = reply.clone().unwrap_or_else(|| self.names.results.clone());
        let posted = match self.outboxes.room(&dest) {
            Ok(room) if room >= protocol::RESULT_HEADER => {
                let letter = Letter {
                    msg: protocol::encode_result(r, room),
                    prio: 0,
                    task: Some(task.id),
                    tag: Some(held.slot),
                };
                self.outboxes.post(&dest, letter, &mut self.gone)
            }
            Ok(room) => {
                self.gone.push(Gone {
                    task: Some(task.id),
                    tag: Some(held.slot),
                    dropped: Some(format!(
                        "{dest} takes messages of at most {room} bytes, and a result needs {}",
                        protocol::RESULT_HEADER
                    )),
                });
                Ok(())
            }
            Err(why) => {
                self.gone.push(Gone {
                    task: Some(task.id),
                    tag: Some(held.slot),
                    dropped: Some(why),
                });
                Ok(())
            }
        };
        if let Some(reply) = &reply {
            self.outboxes.release(reply);
        }
        posted?;
        self.settle()
    }

    /// Put `msg` in `NAME-dead`, ours: the message size is the one it was made with. `slot`
    /// is the record's, freed once the message is out.
    fn dead_letter(
        &mut self,
        msg: Vec<u8>,
        prio: u32,
        task: Option<u64>,
        slot: Option<usize>,
    ) -> Result<()> {
        let dead = self.names.dead.clone();
        let letter = Letter {
            msg,
            prio,
            task,
            tag: slot,
        };
        self.outboxes.post(&dead, letter, &mut self.gone)?;
        self.settle()
    }

    /// Send what waits for room, as far as each queue has it.
    fn flush_outboxes(&mut self) -> Result<()> {
        self.outboxes.flush(&mut self.gone)?;
        self.settle()
    }

    /// Account for what the outboxes have sent or dropped: the record lets go of a task once
    /// every message about it is out; a dropped result is said and counted.
    fn settle(&mut self) -> Result<()> {
        for gone in std::mem::take(&mut self.gone) {
            if let Some(slot) = gone.tag {
                self.record.letter_out(slot);
            }
            let Some(why) = gone.dropped else { continue };
            self.counts.dropped += 1;
            let id = gone.task.map_or_else(|| "?".to_owned(), protocol::show_id);
            tell!(
                self.out,
                "result for task {id} dropped: {}",
                common::out::escape(why.as_bytes())
            )?;
        }
        Ok(())
    }

    /// Hand tasks to idle workers: retries first (they were taken earlier), then `NAME`.
    fn dispatch(&mut self) -> Result<()> {
        while let Some(i) = self.workers.iter().position(Worker::idle) {
            let held = if let Some(held) = self.retries.pop() {
                held
            } else {
                // The clock is read *before* mq_receive: any task sent before this instant is
                // in the queue, so if a more urgent one was among them, this call returns it.
                let taken_ns = protocol::monotonic_ns();
                // The task is received straight into a slot of the record (record.rs): from
                // the instant it leaves NAME, a kill -9 of ours cannot lose it. No free slot:
                // take nothing.
                let Some(slot) = self.record.reserve(taken_ns) else {
                    return Ok(());
                };
                let (len, prio) = match self.record.receive(slot, &self.tasks) {
                    Ok(got) => got,
                    Err(e) => {
                        self.record.cancel(slot);
                        match e {
                            Errno::EAGAIN => return Ok(()),
                            Errno::EINTR => continue,
                            e => {
                                let call = self.tasks.receive_call();
                                return Err(Error::sys(call, &self.names.tasks, e));
                            }
                        }
                    }
                };
                self.record.commit(slot, len, prio);
                self.record.message(slot, &mut self.buf);
                self.activity = true;
                // Only System V can hand out a message longer than the queue's (cut to one
                // byte more, see sysv.rs); POSIX refuses it at mq_send.
                let msgsize = self.tasks.msgsize();
                if len > msgsize {
                    self.buf.truncate(msgsize);
                    let why = format!("longer than the queue's {msgsize}-byte messages (cut)");
                    self.malformed_task(Err(protocol::Malformed(why)), prio, slot)?;
                    continue;
                }
                match protocol::decode(&self.buf) {
                    Ok(Message::Task(task)) if task.attempt == 1 => {
                        self.counts.taken += 1;
                        self.seq += 1;
                        // Its reply queue stays open until its result is out (outbox.rs).
                        if let Some(reply) = self.reply_queue(&task) {
                            self.outboxes.expect(reply);
                        }
                        Held {
                            task,
                            slot,
                            prio,
                            taken_ns,
                            seq: self.seq,
                        }
                    }
                    other => {
                        self.malformed_task(other, prio, slot)?;
                        continue;
                    }
                }
            };
            let w = &mut self.workers[i];
            let msg = protocol::encode_task(&held.task, usize::MAX)
                .map_err(|e| Error::msg(e.to_string()))?;
            let inbox = w.inbox.as_ref().expect("an idle worker has an inbox");
            // Record first, then send: see the module docs.
            trace!(
                "record: worker pid {} holds task {}; now hand it over",
                w.pid,
                protocol::show_id(held.task.id)
            );
            self.record.give(held.slot, Some(w.pid));
            w.holding = Some(held);
            match inbox.send(&msg, 0) {
                Ok(()) => {}
                Err(e) => {
                    // The inbox cannot be full (an idle worker's holds at most a stop); a
                    // worker whose inbox fails gets nothing more, and its task goes back.
                    tell!(
                        self.out,
                        "{} {}: {}; worker pid {} gets no more tasks",
                        inbox.send_call(),
                        inbox.name(),
                        e.desc(),
                        w.pid
                    )?;
                    w.leaving = true;
                    if let Some(h) = w.holding.take() {
                        self.requeue(h);
                    }
                }
            }
        }
        Ok(())
    }

    /// Bytes in `NAME` that are not a new task: reported, and moved to the dead-letter queue
    /// as they are, so nothing a producer sent disappears without a trace.
    fn malformed_task(
        &mut self,
        decoded: Result<Message, protocol::Malformed>,
        prio: u32,
        slot: usize,
    ) -> Result<()> {
        self.counts.malformed += 1;
        let why = match decoded {
            Err(e) => e.to_string(),
            Ok(Message::Task(t)) => format!("a new task must have attempt 1, not {}", t.attempt),
            Ok(other) => format!("not a task: {other:?}"),
        };
        let raw = std::mem::take(&mut self.buf);
        let len = raw.len();
        let dead = self.names.dead.clone();
        self.record.await_letters(slot, 1);
        self.dead_letter(raw, prio, None, Some(slot))?;
        tell!(
            self.out,
            "{why} ({len} bytes) in {}; moved to {dead}",
            self.names.tasks
        )
    }

    /// A worker's pidfd became readable: it has exited. Reap it, take back its task, and
    /// start a replacement if it was one of ours.
    fn bury(&mut self, pid: Pid) -> Result<()> {
        let Some(i) = self.workers.iter().position(|w| w.pid == pid) else {
            return Ok(());
        };
        let mut w = self.workers.swap_remove(i);
        let how = match &w.child {
            Some(child) => match child.try_wait()? {
                Some(status) => Ended::from(status).clause(),
                None => "exited".to_owned(),
            },
            None => "exited".to_owned(),
        };
        let said_hello = w.inbox.is_some();
        // What is still in its inbox was never received: it goes back with the same attempt.
        let mut unreceived = false;
        let inbox = w.inbox.take();
        if let Some(inbox) = &inbox {
            let mut buf = Vec::new();
            while inbox.receive(&mut buf).is_ok() {
                if let (Ok(Message::Task(t)), Some(h)) = (protocol::decode(&buf), &w.holding) {
                    unreceived |= t.id == h.task.id;
                }
            }
        }
        // Remove its inbox: a worker killed with -9 could not. (A System V inbox is known by
        // its id only after the hello; one whose worker died before that is left for
        // `make clean-ipc`.)
        match &inbox {
            Some(q) => q.remove()?,
            None if self.flavor == Flavor::Posix => {
                Object::Mqueue(self.names.inbox(pid)).unlink()?
            }
            None => {}
        }
        self.record.forget_worker(pid);
        match w.holding.take() {
            Some(held) if unreceived => {
                self.counts.deaths += 1;
                tell!(
                    self.out,
                    "worker pid {pid} {how} before it received task {}; giving it out again",
                    protocol::show_id(held.task.id)
                )?;
                self.requeue(held);
            }
            Some(held) => {
                self.counts.deaths += 1;
                let why = format!("was held by worker pid {pid}, which {how}");
                tell!(
                    self.out,
                    "worker pid {pid} {how} holding task {} (attempt {})",
                    protocol::show_id(held.task.id),
                    held.task.attempt
                )?;
                self.retry_or_bury(held, &why, pid.as_raw())?;
            }
            None => {
                if !w.leaving && !self.stopping {
                    self.counts.deaths += 1;
                }
                tell!(self.out, "worker pid {pid} {how}")?;
            }
        }
        if w.child.is_some() && !self.stopping {
            // A worker that never said hello keeps dying at start (a broken binary, no
            // memory for its queue): wait longer each time instead of forking in a loop.
            let at = if said_hello {
                Instant::now()
            } else {
                self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                tell!(
                    self.out,
                    "worker pid {pid} died before it was ready; next one in {:?}",
                    self.backoff
                )?;
                Instant::now() + self.backoff
            };
            self.to_start.push(at);
        }
        Ok(())
    }

    /// SIGTERM/SIGINT: take no new task; idle workers are told to stop, busy ones after their
    /// result comes back.
    fn begin_stop(&mut self) -> Result<()> {
        self.stopping = true;
        self.stop_deadline = Some(Instant::now() + self.stop_timeout);
        // STOPPING=1 to a service manager, if one started us (common::lifecycle).
        common::lifecycle::stopping();
        let busy = self.workers.iter().filter(|w| w.holding.is_some()).count();
        tell!(
            self.out,
            "stopping: no new tasks; waiting for {busy} workers to finish what they hold"
        )?;
        let idle: Vec<Pid> = self
            .workers
            .iter()
            .filter(|w| w.holding.is_none())
            .map(|w| w.pid)
            .collect();
        for pid in idle {
            self.stop_worker(pid);
        }
        Ok(())
    }

    /// `--stop-timeout` is over and workers still hold tasks (frozen with SIGSTOP, or stuck): a
    /// stop must end, so ours are killed (SIGKILL; their pidfds then bury them) and the tasks
    /// they held are reported as left; workers started by hand are no longer waited for (they
    /// stop by themselves once we are gone, see worker.rs).
    fn give_up_on_workers(&mut self) -> Result<()> {
        self.stop_deadline = None;
        // Results first: a worker whose result already waits in NAME-done has finished, and
        // its result must be delivered, not dropped as a duplicate of a task reported left.
        self.drain_done()?;
        let mut left = Vec::new();
        for w in &mut self.workers {
            let task = w.holding.take().map(|h| {
                let id = protocol::show_id(h.task.id);
                self.record.give(h.slot, None);
                self.retries.push(h);
                id
            });
            let what = match (task, &w.inbox) {
                (Some(id), _) => format!("holding task {id}"),
                (None, None) => "not ready yet".to_owned(),
                (None, Some(_)) => "holding nothing, told to stop".to_owned(),
            };
            match &w.child {
                Some(child) => {
                    // Our unreaped child (the pidfd has not said it exited), so the pid is its own.
                    let _ = child.signal(Signal::SIGKILL);
                    tell!(
                        self.out,
                        "worker pid {} has not exited after the --stop-timeout of {:?} ({what}): killed",
                        w.pid,
                        self.stop_timeout
                    )?;
                }
                None => {
                    left.push(w.pid);
                    tell!(
                        self.out,
                        "worker pid {} (started by hand) has not exited after the --stop-timeout of {:?} ({what}): not waited for",
                        w.pid,
                        self.stop_timeout
                    )?;
                }
            }
        }
        self.workers.retain(|w| !left.contains(&w.pid));
        Ok(())
    }

    fn stop_worker(&mut self, pid: Pid) {
        let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) else {
            return;
        };
        if w.holding.is_some() {
            return;
        }
        w.leaving = true;
        // The inbox holds at most one more message than a task, so this cannot block. A
        // worker without an inbox is not ready yet: it is stopped when its hello arrives.
        if let Some(inbox) = &w.inbox {
            let _ = inbox.send(&protocol::encode_stop(), 0);
        }
    }

    /// After the workers are gone: deliver what can be, and say what is left in `NAME`.
    fn leftovers(&mut self) -> Result<String> {
        self.flush_outboxes()?;
        let undelivered = self.undelivered();
        let mut ids = Vec::new();
        let mut buf = Vec::new();
        while self.tasks.receive(&mut buf).is_ok() {
            match protocol::decode(&buf) {
                Ok(Message::Task(t)) => ids.push(protocol::show_id(t.id)),
                _ => ids.push("(malformed)".to_owned()),
            }
        }
        ids.extend(self.retries.drain().map(|h| protocol::show_id(h.task.id)));
        let mut text = format!("{} left queued", ids.len());
        if !ids.is_empty() {
            let shown: Vec<_> = ids.iter().take(10).map(String::as_str).collect();
            let more = if ids.len() > 10 { " ..." } else { "" };
            text += &format!(" ({}{more})", shown.join(" "));
        }
        if undelivered > 0 {
            text += &format!(", {undelivered} results nobody read");
        }
        Ok(text)
    }
}

/// `--parent PID`: a pidfd on our parent, readable once it exits. The demo asks for it rather
/// than PR_SET_PDEATHSIG (see `demo.rs`, `Tie`). A parent that is already gone (we were
/// reparented before the pidfd was opened) is an error: nobody would ever stop us.
fn watch_parent(pid: Pid) -> Result<(Pid, OwnedFd)> {
    let fd = pidfd::open(pid).ctx("pidfd_open", format!("--parent {pid}"))?;
    if nix::unistd::getppid() != pid {
        return Err(Error::msg(format!(
            "--parent {pid}: that process is not our parent (it has exited?)"
        )));
    }
    Ok((pid, fd))
}

/// `sysv:<id>`: a System V reply queue (it has no name; `submit --wait --sysv` makes one).
fn is_sysv_reply(reply: &str) -> bool {
    reply
        .strip_prefix("sysv:")
        .is_some_and(|id| id.parse::<i32>().is_ok_and(|id| id >= 0))
}
