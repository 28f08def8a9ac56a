//! The workers, as the supervisor sees them: started (`fork`+`exec` of `mqueue-demo worker`,
//! watched through a pidfd), greeted (a worker's hello names its inbox, which the supervisor
//! opens to send it tasks), told to stop (a stop message in its inbox), and buried (its pidfd
//! is readable: it is reaped, its inbox emptied and removed, the tasks it held taken back, and
//! one of our own is replaced).
//!
//! A worker started by hand (`mqueue-demo worker`) is greeted the same way, but its pid comes
//! in its hello, so the pidfd is opened then; it is never restarted, and never waited for at
//! the end: it stops by itself once it sees that we have gone (worker.rs).

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::child::{Ended, RoleCommand, Supervised};
use common::cleanup::Object;
use common::{Context, Result, pidfd, tell};
use nix::unistd::Pid;

use super::Supervisor;
use super::handoff::Held;
use crate::mq::{Access, Mq};
use crate::protocol::{self, Message, TASKS_PER_WORKER};
use crate::queue::{Flavor, Queue};
use crate::sysv::SysvQ;

/// The first wait before restarting a worker that died before it said hello; doubled each
/// time it happens again, up to [`MAX_BACKOFF`], and forgotten once a worker completes a task.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A worker the supervisor knows.
pub(super) struct Worker {
    pub(super) pid: Pid,
    /// Our own child (restarted when it dies); None for a worker started by hand.
    pub(super) child: Option<Supervised>,
    /// Readable once the process has exited.
    pub(super) pidfd: OwnedFd,
    /// The worker's inbox, opened read-write after its hello: we send tasks into it, and
    /// after its death we take back what it never received.
    pub(super) inbox: Option<Queue>,
    /// The tasks given to it, first given first: at most [`TASKS_PER_WORKER`].
    pub(super) held: Vec<Held>,
    /// It asked to leave (`--max-tasks`) or was told to stop: no more tasks for it.
    pub(super) leaving: bool,
}

impl Worker {
    fn new(pid: Pid, child: Option<Supervised>, pidfd: OwnedFd, inbox: Option<Queue>) -> Worker {
        Worker {
            pid,
            child,
            pidfd,
            inbox,
            held: Vec::with_capacity(TASKS_PER_WORKER),
            leaving: false,
        }
    }

    /// True if it can be given a task now: it has said hello, is not leaving, and holds
    /// fewer than [`TASKS_PER_WORKER`].
    pub(super) fn has_room(&self) -> bool {
        self.inbox.is_some() && self.held.len() < TASKS_PER_WORKER && !self.leaving
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

impl Supervisor {
    /// Start the workers whose time has come (our own K; never while stopping).
    pub(super) fn start_due_workers(&mut self) -> Result<()> {
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
        self.workers
            .push(Worker::new(pid, Some(child), pidfd, None));
        Ok(())
    }

    /// A worker's hello (`NAME-done`): it is ready, and its inbox is `NAME-w<pid>` (System V:
    /// the id it sends). One we did not start joins here.
    pub(super) fn hello(&mut self, pid: Pid, sysv_id: i32) -> Result<()> {
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
            self.workers
                .push(Worker::new(pid, None, pidfd, Some(inbox)));
        }
        if self.stopping {
            self.stop_worker(pid);
        }
        Ok(())
    }

    /// A worker's pidfd became readable: it has exited. Reap it, take back its tasks, and
    /// start a replacement if it was one of ours.
    pub(super) fn bury(&mut self, pid: Pid) -> Result<()> {
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
        let mut unreceived = Vec::new();
        let inbox = w.inbox.take();
        if let Some(inbox) = &inbox {
            let mut buf = Vec::new();
            while inbox.receive(&mut buf).is_ok() {
                if let Ok(Message::Task(t)) = protocol::decode(&buf) {
                    unreceived.push(t.id);
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
        let held = std::mem::take(&mut w.held);
        if !held.is_empty() || (!w.leaving && !self.stopping) {
            self.counts.deaths += 1;
        }
        if held.is_empty() {
            tell!(self.out, "worker pid {pid} {how}")?;
        }
        self.take_back(pid, &how, held, &unreceived)?;
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

    /// Tell worker `pid` to stop once it holds nothing (a stop message in its inbox); one that
    /// holds tasks is told when its last result comes back.
    pub(super) fn stop_worker(&mut self, pid: Pid) {
        let Some(w) = self.workers.iter_mut().find(|w| w.pid == pid) else {
            return;
        };
        if !w.held.is_empty() {
            return;
        }
        w.leaving = true;
        // The inbox has room for every task its worker may hold and a stop, and it holds no
        // task now, so this cannot block. A worker without an inbox is not ready yet: it is
        // stopped when its hello arrives.
        if let Some(inbox) = &w.inbox {
            let _ = inbox.send(&protocol::encode_stop(), 0);
        }
    }
}
