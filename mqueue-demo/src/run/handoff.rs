//! The hand-off: each task taken into the record, recorded as given, then sent; and its
//! result published before the record lets it go. Why no task is lost.
//!
//! # Where a task is, at every instant
//!
//! A task is always in exactly one of these places: a kernel queue (`NAME`, or a worker's
//! inbox), the supervisor's record (record.rs: shared memory that outlives the supervisor),
//! or delivered as a result. The supervisor takes a task from `NAME` only when a worker has
//! room for one and the record has a free slot, and `mq_receive` writes the task straight
//! into that slot ([`Supervisor::dispatch`]); then it *records* that the worker holds it, and
//! only then sends it to the worker's inbox ([`Supervisor::hand_over`]). So there is no
//! instant at which a worker's death can leave a task unrecorded: killed before it received
//! the task, the task is still in its inbox (given out again with the same attempt number);
//! killed after, the record is there (given out again with attempt+1, or dead-lettered after
//! the last; [`Supervisor::take_back`]). The poll loop reads `NAME-done` before it handles
//! deaths, so a result sent just before the worker died is counted, not re-run. A task leaves
//! the record only once every message about it (its result; a dead letter's copy) is in a
//! queue ([`Supervisor::settle`]).
//!
//! Results are matched against what each worker holds (worker pid and task id); anything else
//! is a duplicate or a stray and is dropped and counted, so each task is reported once.
//!
//! The supervisor itself killed with -9: its workers stop (they watch it), the queues stay,
//! and so does the record, so the next supervisor gives out again every task that has no
//! result yet, with the same attempt number (startup.rs). A result sent just before the kill
//! may then come twice; `submit --wait` tells them apart by task id.
//!
//! # Several tasks per worker
//!
//! A worker holds a list of tasks, at most [`protocol::TASKS_PER_WORKER`] (one today), and
//! every step above is per task: a worker has room while it holds fewer, a result is matched
//! by id among what its worker holds, and a dead worker's tasks are taken back one by one,
//! each as its inbox says (received or not). Giving a worker more than one at once
//! (prefetch) is a change of that constant and of the worker's inbox depth, not of this file.

use nix::errno::Errno;
use nix::unistd::Pid;

use common::{Error, Result, tell, trace};

use super::Supervisor;
use super::outbox::{Gone, Letter};
use super::workers::Worker;
use crate::protocol::{self, MAX_ATTEMPTS, Message, Status, Task, TaskResult};
use crate::queue::Flavor;

/// A task in the supervisor's hands, with what the queue told about it.
#[derive(Clone, Debug)]
pub(super) struct Held {
    pub(super) task: Task,
    /// Where the record keeps it.
    pub(super) slot: usize,
    pub(super) prio: u32,
    /// CLOCK_MONOTONIC when it was first taken off `NAME` (the demo checks priority order).
    pub(super) taken_ns: u64,
    /// Tie-break for equal priorities: first taken, first given out again.
    pub(super) seq: u64,
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

/// What [`Supervisor::take_new`] found in `NAME`.
enum Taken {
    /// A new task, now in the record.
    Task(Held),
    /// Something that is no task (moved to `NAME-dead`), or an interrupted call: look again.
    NotATask,
    /// Nothing: `NAME` is empty, or the record has no free slot.
    Nothing,
}

impl Supervisor {
    /// Hand tasks to the workers that have room: retries first (they were taken earlier),
    /// then `NAME`.
    pub(super) fn dispatch(&mut self) -> Result<()> {
        while let Some(i) = self.workers.iter().position(Worker::has_room) {
            let held = match self.retries.pop() {
                Some(held) => held,
                None => match self.take_new()? {
                    Taken::Task(held) => held,
                    Taken::NotATask => continue,
                    Taken::Nothing => return Ok(()),
                },
            };
            self.hand_over(i, held)?;
        }
        Ok(())
    }

    /// Take the next task off `NAME`, straight into a slot of the record.
    fn take_new(&mut self) -> Result<Taken> {
        // The clock is read *before* mq_receive: any task sent before this instant is in the
        // queue, so if a more urgent one was among them, this call returns it.
        let taken_ns = protocol::monotonic_ns();
        // The task is received straight into a slot of the record (record.rs): from the
        // instant it leaves NAME, a kill -9 of ours cannot lose it. No free slot: take nothing.
        let Some(slot) = self.record.reserve(taken_ns) else {
            return Ok(Taken::Nothing);
        };
        let (len, prio) = match self.record.receive(slot, &self.tasks) {
            Ok(got) => got,
            Err(e) => {
                self.record.cancel(slot);
                return match e {
                    Errno::EAGAIN => Ok(Taken::Nothing),
                    Errno::EINTR => Ok(Taken::NotATask),
                    e => Err(Error::sys(self.tasks.receive_call(), &self.names.tasks, e)),
                };
            }
        };
        self.record.commit(slot, len, prio);
        self.record.message(slot, &mut self.buf);
        self.activity = true;
        // Only System V can hand out a message longer than the queue's (cut to one byte more,
        // see sysv.rs); POSIX refuses it at mq_send.
        let msgsize = self.tasks.msgsize();
        if len > msgsize {
            self.buf.truncate(msgsize);
            let why = format!("longer than the queue's {msgsize}-byte messages (cut)");
            self.malformed_task(Err(protocol::Malformed(why)), prio, slot)?;
            return Ok(Taken::NotATask);
        }
        match protocol::decode(&self.buf) {
            Ok(Message::Task(task)) if task.attempt == 1 => {
                self.counts.taken += 1;
                self.seq += 1;
                // Its reply queue stays open until its result is out (outbox.rs).
                if let Some(reply) = self.reply_queue(&task) {
                    self.outboxes.expect(reply);
                }
                Ok(Taken::Task(Held {
                    task,
                    slot,
                    prio,
                    taken_ns,
                    seq: self.seq,
                }))
            }
            other => {
                self.malformed_task(other, prio, slot)?;
                Ok(Taken::NotATask)
            }
        }
    }

    /// Give `held` to worker `i`: record first, then send (see the module docs).
    fn hand_over(&mut self, i: usize, held: Held) -> Result<()> {
        let w = &mut self.workers[i];
        let msg =
            protocol::encode_task(&held.task, usize::MAX).map_err(|e| Error::msg(e.to_string()))?;
        let inbox = w.inbox.as_ref().expect("a worker with room has an inbox");
        trace!(
            "record: worker pid {} holds task {}; now hand it over",
            w.pid,
            protocol::show_id(held.task.id)
        );
        self.record.give(held.slot, Some(w.pid));
        w.held.push(held);
        if let Err(e) = inbox.send(&msg, 0) {
            // The inbox cannot be full (it has room for every task its worker may hold, and a
            // stop); a worker whose inbox fails gets nothing more, and its task goes back.
            tell!(
                self.out,
                "{} {}: {}; worker pid {} gets no more tasks",
                inbox.send_call(),
                inbox.name(),
                e.desc(),
                w.pid
            )?;
            w.leaving = true;
            if let Some(h) = w.held.pop() {
                self.requeue(h);
            }
        }
        Ok(())
    }

    /// Bytes in `NAME` that are not a new task: reported, and moved to the dead-letter queue
    /// as they are, so nothing a producer sent disappears without a trace.
    pub(super) fn malformed_task(
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

    /// A result from `NAME-done`: published if its worker holds its task, else dropped as a
    /// duplicate (or a stray).
    pub(super) fn result(&mut self, mut r: TaskResult) -> Result<()> {
        let pid = Pid::from_raw(r.pid);
        let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) else {
            self.counts.duplicates += 1;
            trace!(
                "result for {} from unknown pid {pid}: dropped",
                protocol::show_id(r.id)
            );
            return Ok(());
        };
        let Some(at) = w.held.iter().position(|h| h.task.id == r.id) else {
            self.counts.duplicates += 1;
            trace!(
                "result for {} that pid {pid} does not hold: dropped",
                protocol::show_id(r.id)
            );
            return Ok(());
        };
        let held = w.held.remove(at);
        if r.last {
            w.leaving = true;
        }
        if self.stopping {
            self.stop_worker(pid);
        }
        self.backoff = std::time::Duration::ZERO;
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

    /// Worker `pid` has exited (`how`) holding `held`: each task that is still in its inbox
    /// (`unreceived`, their ids) goes back as it was, since the worker never saw it; each
    /// other one was in its hands, and is retried with attempt+1 (or dead-lettered).
    pub(super) fn take_back(
        &mut self,
        pid: Pid,
        how: &str,
        held: Vec<Held>,
        unreceived: &[u64],
    ) -> Result<()> {
        for held in held {
            let id = protocol::show_id(held.task.id);
            if unreceived.contains(&held.task.id) {
                tell!(
                    self.out,
                    "worker pid {pid} {how} before it received task {id}; giving it out again"
                )?;
                self.requeue(held);
            } else {
                tell!(
                    self.out,
                    "worker pid {pid} {how} holding task {id} (attempt {})",
                    held.task.attempt
                )?;
                let why = format!("was held by worker pid {pid}, which {how}");
                self.retry_or_bury(held, &why, pid.as_raw())?;
            }
        }
        Ok(())
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

    /// A task waits for a worker again (retries go out before new tasks).
    pub(super) fn requeue(&mut self, held: Held) {
        self.record.give(held.slot, None);
        self.retries.push(held);
    }

    /// Where a task's result goes: its reply queue if it names one of ours, else
    /// `NAME-results`.
    pub(super) fn reply_queue<'a>(&self, task: &'a Task) -> Option<&'a str> {
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
    pub(super) fn flush_outboxes(&mut self) -> Result<()> {
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
}

/// `sysv:<id>`: a System V reply queue (it has no name; `submit --wait --sysv` makes one).
fn is_sysv_reply(reply: &str) -> bool {
    reply
        .strip_prefix("sysv:")
        .is_some_and(|id| id.parse::<i32>().is_ok_and(|id| id >= 0))
}
