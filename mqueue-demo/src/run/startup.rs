//! Start-up, and the takeover of what a killed supervisor left.
//!
//! The record comes first (record.rs): its lock says that we serve `NAME`, and a killed
//! supervisor's record hands us every task it held. Then the four queues: each is made
//! `O_CREAT|O_EXCL`, 0600, or, if one of our names is already taken, taken over as a killed
//! supervisor left it (we hold the record's lock, so none is alive), tasks and all, but only
//! if it is what we would have made (`check_leftover`). A start-up that fails leaves a killed
//! supervisor's leftovers as it found them, for the next attempt ([`Guards`]).
//!
//! What the killed supervisor held goes out again before any new task, with the same attempt
//! number (the task did not fail; its supervisor died), and the inboxes of its workers are
//! removed ([`Supervisor::take_over_record`]).

use common::cleanup::{Object, Unlink};
use common::out::Output;
use common::{Error, Result, sysv_key, tell};
use nix::unistd::Pid;

use super::Supervisor;
use super::handoff::Held;
use crate::cli::RunArgs;
use crate::mq::{Access, Created, Mq};
use crate::names::Names;
use crate::protocol::{self, Message};
use crate::queue::{Flavor, Guard, Queue};
use crate::record::Recovered;
use crate::sysv::{self, Remove, SysvQ};

/// Create the four queues, or take over a dead supervisor's (we hold its record's lock, so
/// none is alive). Returns them with their removal guards, in the order they must be dropped.
pub(super) fn create_queues(
    names: &Names,
    args: &RunArgs,
    out: &mut Output,
) -> Result<([Queue; 4], Guards)> {
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
pub(super) struct Guards {
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
    pub(super) fn serving(&mut self) {
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
/// would not fit a worker's inbox, nor a malformed one `NAME-dead`). `NAME-done` is trusted
/// for the pids in workers' hellos and for results, and `NAME` for tasks, because only our
/// uid can write to them; a leftover that others may
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
    let text = format!("msgsize={msgsize} {}\n", ids.join(" "));
    common::names::replace_private(&path, text.as_bytes())?;
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

impl Supervisor {
    /// The record of a supervisor that was killed (record.rs): every task it held goes out
    /// again, before any new one and with the same attempt number (the task did not fail, its
    /// supervisor died); the inboxes of its workers are removed (they stop when it dies, but
    /// one killed with it could not remove its own).
    pub(super) fn take_over_record(&mut self, found: Recovered) -> Result<()> {
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
    /// again (worker.rs); it may not have removed the inbox itself (killed with -9 too, or
    /// still frozen). POSIX: unlinked by name. System V: by the id the record kept, if that
    /// queue is still one of ours (our uid and key range).
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
}
