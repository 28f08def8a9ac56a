//! The poll loop: one `poll` on everything the supervisor waits for, then each thing that is
//! ready, in an order that matters; and the stop.
//!
//! The `poll` set: the signal pipe; every worker's pidfd; `NAME-done`; `NAME`, only while a
//! worker has room for a task (the tasks wait in the kernel, in priority order, not in our
//! memory); the result queues where results wait for room (POLLOUT); stdout while lines wait
//! for a slow reader (`common::out::Output`: stdout never blocks a stop). System V queues
//! have no descriptor: they are looked at on a timer (`sysv::Tick`) that backs off while
//! nothing happens.
//!
//! After `poll`: `NAME-done` first (hellos and results), then the dead workers, so that a
//! result sent just before its worker died counts and its task is not run again; then the
//! workers due to start, the results waiting for room, and the hand-off of new tasks.
//!
//! The stop (SIGTERM, SIGINT, SIGHUP; the demo's death sends SIGTERM): no new task; idle
//! workers are told to stop, busy ones once their result is back; after `--stop-timeout` our
//! own are killed and their tasks reported as left.

use std::os::fd::AsFd;
use std::time::Instant;

use common::cleanup::Shutdown;
use common::{Error, Result, tell};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::Supervisor;
use super::workers::Worker;
use crate::protocol::{self, Message};
use crate::queue::{self, Flavor};

impl Supervisor {
    /// Serve until a stop is asked for and every worker has gone.
    pub(super) fn serve(&mut self, shutdown: &Shutdown) -> Result<()> {
        loop {
            if shutdown.requested() && !self.stopping {
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
                && self.workers.iter().any(Worker::has_room);
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

    fn undelivered(&self) -> usize {
        self.outboxes.waiting()
    }

    /// Read everything in `NAME-done`: hellos and results.
    pub(super) fn drain_done(&mut self) -> Result<()> {
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

    /// SIGTERM/SIGINT: take no new task; idle workers are told to stop, busy ones after their
    /// result comes back.
    fn begin_stop(&mut self) -> Result<()> {
        self.stopping = true;
        self.stop_deadline = Some(Instant::now() + self.stop_timeout);
        // STOPPING=1 to a service manager, if one started us (common::lifecycle).
        common::lifecycle::stopping();
        let busy = self.workers.iter().filter(|w| !w.held.is_empty()).count();
        tell!(
            self.out,
            "stopping: no new tasks; waiting for {busy} workers to finish what they hold"
        )?;
        let idle: Vec<Pid> = self
            .workers
            .iter()
            .filter(|w| w.held.is_empty())
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
            let tasks: Vec<String> = w
                .held
                .drain(..)
                .map(|h| {
                    let id = protocol::show_id(h.task.id);
                    self.record.give(h.slot, None);
                    self.retries.push(h);
                    id
                })
                .collect();
            let what = match (tasks.is_empty(), &w.inbox) {
                (false, _) => format!("holding task {}", tasks.join(" ")),
                (true, None) => "not ready yet".to_owned(),
                (true, Some(_)) => "holding nothing, told to stop".to_owned(),
            };
            match &w.child {
                Some(child) => {
                    // Our unreaped child (the pidfd has not said it exited), so the pid is its own.
                    let _ = child.signal(Signal::SIGKILL);
                    tell!(
                        self.out,
                        "worker pid {} has not exited after the --stop-timeout of {:?} ({what}): \
                         killed",
                        w.pid,
                        self.stop_timeout
                    )?;
                }
                None => {
                    left.push(w.pid);
                    tell!(
                        self.out,
                        "worker pid {} (started by hand) has not exited after the --stop-timeout \
                         of {:?} ({what}): not waited for",
                        w.pid,
                        self.stop_timeout
                    )?;
                }
            }
        }
        self.workers.retain(|w| !left.contains(&w.pid));
        Ok(())
    }

    /// After the workers are gone: deliver what can be, and say what is left in `NAME`.
    pub(super) fn leftovers(&mut self) -> Result<String> {
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
