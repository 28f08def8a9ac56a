//! A worker: announce itself, take tasks from its own inbox, run them, report results.
//!
//! A worker never takes tasks from the shared queue `NAME` itself. If it did, a SIGKILL
//! between its `mq_receive` (the task leaves the kernel's queue) and the moment anyone else
//! learnt that it held the task would lose the task without a trace: no bookkeeping done
//! *after* `mq_receive` can close that window, because the kill may land just before it. So
//! the supervisor takes the task, records which worker it gives it to, and only then puts it
//! in that worker's inbox `NAME-w<pid>` (see `run/handoff.rs`). A worker killed at any instant
//! leaves the task either in its inbox or in the supervisor's record, and the supervisor,
//! which learns of the death from a pidfd, gives it to another worker.
//!
//! Start-up: find the live supervisor (its record's lock) and open a pidfd on it, open
//! `NAME-done` (no supervisor: a clear error, nothing created), create the inbox
//! `O_CREAT|O_EXCL` 0600, send a hello, then wait in `poll` on the inbox, the SIGTERM/SIGINT
//! pipe and the supervisor's pidfd. A supervisor that dies (kill -9) was the only one to send
//! to this inbox: the next one gives the tasks it held out again from its record, to workers
//! of its own, so this worker exits at once, whether the supervisor started it or it was
//! started by hand. SIGTERM while a task
//! runs: the task is finished and its result sent, then the worker exits.
//!
//! Cleanup: a POSIX inbox is unlinked on every exit but kill -9 (then the supervisor unlinks
//! it); the supervisor, which holds it open, still takes back a task it sent just as we left.
//! A System V inbox cannot be removed that early: IPC_RMID destroys the messages in it at
//! once, and a task the supervisor had just sent would be gone, to come back with attempt+1
//! although it never ran. So a worker that has said hello leaves its System V inbox to a
//! supervisor that still lives, which takes back what is in it (same attempt) and removes it;
//! only a worker whose supervisor is gone removes its own.

use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;

use common::cleanup::Shutdown;
use common::{Error, Result, say, trace};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{Pid, getpid};

use crate::cli::WorkerArgs;
use crate::mq::Access;
use crate::names::Names;
use crate::protocol::{self, Message, Status, TaskResult};
use crate::queue::{self, Finder, Flavor, Queue, Which};
use crate::sysv::Tick;
use crate::tasks;

/// A worker's inbox holds the tasks it is given and a stop request.
pub const INBOX_DEPTH: usize = protocol::TASKS_PER_WORKER + 1;

/// Run a worker until its supervisor stops it, SIGTERM/SIGINT/SIGHUP, or `--max-tasks` (exit 0:
/// stopping is its job, as a daemon's); its supervisor's death is an error (exit 1).
pub fn run(args: &WorkerArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    let names = Names::new(&args.queue.name)?;
    let pid = getpid();
    // A live supervisor holds its record's lock; queues left by a killed one do not count.
    let (supervisor, gone) = crate::record::watch(&names)?;
    let finder = Finder::new(&names, args.queue.flavor())?;
    let done = finder.open(Which::Done, Access::Write, true)?;
    let inbox_name = names.inbox(pid);
    // The inbox is removed on every exit but kill -9 (then the supervisor removes it), except
    // a System V one that the supervisor knows (see the module docs).
    let (inbox, guard) =
        queue::create_own(&inbox_name, INBOX_DEPTH, done.msgsize(), finder.flavor())?;
    let sysv_id = match &inbox {
        Queue::Sysv(q) => q.id(),
        Queue::Posix(_) => -1,
    };
    let mut tick = Tick::new();
    let watch = Watch {
        shutdown: &shutdown,
        gone: &gone,
        supervisor,
    };
    send(
        &done,
        &protocol::encode_hello(pid.as_raw(), sysv_id),
        &watch,
        &mut tick,
    )?;
    // On stdout, for a worker started by hand (the supervisor's own have /dev/null there).
    said(say!(
        "worker pid {pid}: serving {} (inbox {inbox_name})",
        names.tasks
    ))?;
    let outcome = serve(args, &names, &inbox, &done, &watch, &mut tick);
    // The supervisor has our hello, so it knows this inbox: if it lives, it takes back what
    // it sent us and we never received, and then removes the inbox. A System V queue must be
    // left to it for that, since IPC_RMID destroys what is in it at once (a POSIX queue we
    // unlink lives on while the supervisor holds it open, so ours goes either way).
    let left = finder.flavor() == Flavor::Sysv && !watch.supervisor_gone();
    if left {
        trace!("{inbox_name}: left to the supervisor (pid {supervisor}), which removes it");
        guard.keep();
    } else {
        drop(guard);
    }
    let served = outcome?;
    let inbox = if left {
        format!("left {inbox_name} to the supervisor, which removes it")
    } else {
        format!("removed {inbox_name}")
    };
    said(say!("worker pid {pid}: ran {served} tasks; {inbox}"))?;
    Ok(ExitCode::SUCCESS)
}

/// A line that a stalled stdout held back past a stop signal (`say!` then gives up): a worker
/// asked to stop stops as asked, with status 0, as a daemon does; it is not "interrupted".
fn said(line: Result<()>) -> Result<()> {
    match line {
        Ok(()) | Err(Error::Interrupted(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Take tasks from the inbox and run them, until a stop request, SIGTERM/SIGINT/SIGHUP,
/// `--max-tasks` (then the count of tasks run), or the supervisor's death (an error).
fn serve(
    args: &WorkerArgs,
    names: &Names,
    inbox: &Queue,
    done: &Queue,
    watch: &Watch<'_>,
    tick: &mut Tick,
) -> Result<u64> {
    let shutdown = watch.shutdown;
    let supervisor = watch.supervisor;
    let pid = getpid();
    let inbox_name = inbox.name();

    let mut buf = Vec::new();
    let mut served = 0u64;
    loop {
        if shutdown.requested() {
            break;
        }
        // Wait in poll, not in mq_receive: SA_RESTART would restart a blocked mq_receive
        // after SIGTERM's handler, and the worker would not notice the signal until a task came.
        let mut fds = vec![
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
            PollFd::new(watch.gone.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(inbox.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        match poll(
            &mut fds,
            queue::poll_timeout(inbox.fd().is_none(), tick, None),
        ) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", inbox_name, e)),
        }
        if watch.supervisor_gone() {
            return Err(Error::msg(format!(
                "the supervisor (pid {supervisor}) of {} is gone (killed?); no other will send \
                 to {inbox_name}, so this worker stops",
                names.tasks
            )));
        }
        match inbox.receive(&mut buf) {
            Ok(_) => tick.reset(),
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(inbox.receive_call(), inbox_name, e)),
        }
        let task = match protocol::decode(&buf) {
            Ok(Message::Task(task)) => task,
            Ok(Message::Stop) => {
                trace!("stop request from the supervisor");
                break;
            }
            Ok(other) => {
                eprintln!("mqueue-demo worker: ignoring an unexpected {other:?} in {inbox_name}");
                continue;
            }
            Err(e) => {
                eprintln!("mqueue-demo worker: {inbox_name}: {e}; dropped");
                continue;
            }
        };
        trace!(
            "task {} ({} attempt {})",
            protocol::show_id(task.id),
            task.kind.name(),
            task.attempt
        );
        let (status, output) = match tasks::execute(&task) {
            Ok(out) => (Status::Ok, out),
            Err(why) => (Status::Failed, why.into_bytes()),
        };
        served += 1;
        let last = args.max_tasks.is_some_and(|max| served >= max);
        let result = TaskResult {
            id: task.id,
            pid: pid.as_raw(),
            status,
            attempt: task.attempt,
            taken_ns: 0,
            last,
            output,
        };
        // Sent even if a SIGTERM came meanwhile: the task is done, its result must not be lost.
        send(
            done,
            &protocol::encode_result(&result, done.msgsize()),
            watch,
            tick,
        )
        .map_err(|e| {
            Error::msg(format!(
                "task {}: result not delivered: {e}",
                protocol::show_id(task.id)
            ))
        })?;
        if last {
            break;
        }
    }
    Ok(served)
}

/// What a worker waits on besides its queues: SIGTERM/SIGINT, and its supervisor's exit.
struct Watch<'a> {
    shutdown: &'a Shutdown,
    gone: &'a OwnedFd,
    supervisor: Pid,
}

impl Watch<'_> {
    /// True once the supervisor has exited (its pidfd is readable).
    fn supervisor_gone(&self) -> bool {
        let mut fds = [PollFd::new(self.gone.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
    }
}

/// Send on a non-blocking queue, waiting in `poll` while it is full. The supervisor always
/// drains `NAME-done`, so the wait is short, unless the supervisor is gone (then nobody will
/// read it: an error) or stopped with SIGSTOP (a SIGTERM then ends the wait after at most a
/// tick, and a second one at once, see `common::cleanup::Shutdown`).
fn send(q: &Queue, msg: &[u8], watch: &Watch<'_>, tick: &mut Tick) -> Result<()> {
    let shutdown = watch.shutdown;
    loop {
        match q.send(msg, 0) {
            Ok(()) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => return Err(Error::sys(q.send_call(), q.name(), e)),
        }
        if watch.supervisor_gone() {
            return Err(Error::msg(format!(
                "{} is full and its reader, the supervisor (pid {}), is gone",
                q.name(),
                watch.supervisor
            )));
        }
        let mut fds = vec![
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
            PollFd::new(watch.gone.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(q.fd().map(|fd| PollFd::new(fd, PollFlags::POLLOUT)));
        // The shutdown pipe stays readable once signalled; a short timeout then keeps this
        // from spinning while the result still waits for room.
        let timeout = if shutdown.requested() || q.fd().is_none() {
            queue::poll_timeout(true, tick, None)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", q.name(), e)),
        }
    }
}
