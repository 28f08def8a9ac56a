//! A producer: put tasks on `NAME`, print their ids; with `--wait`, print their results.
//!
//! Without `--wait` the queue is opened blocking, and a full queue makes `mq_send` wait (the
//! kernel wakes the sender when a slot frees up), or `mq_timedsend` up to `--timeout`. With
//! `--wait`, sending and receiving overlap: the tasks go out while the results come back into
//! our own reply queue `NAME-r<pid>-<stamp>`, both waited for in one `poll` on the two queue
//! descriptors (a full `NAME` as POLLOUT, a result as POLLIN). Sending everything first could
//! deadlock: we would wait for room in `NAME` while the supervisor waits for room in our
//! reply queue.
//!
//! # For the demo: the send times
//!
//! With `IPC_DEMO_SUBMIT_STAMP=1` in its environment ([`STAMP_ENV`]), `submit` prints `ID
//! PRIORITY SENT_NS` for each task instead of its id: the CLOCK_MONOTONIC time just after its
//! `mq_send` returned, which the demo compares with the time the supervisor took the task
//! (demo.rs, the priority check). It is for the demo and the tests, not for users, so it is
//! no option in the help, the man page or the completions; it is read once, in [`run`].

use std::collections::{HashSet, VecDeque};
use std::io::BufRead;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::{Context, Error, Result, say};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use nix::unistd::getpid;

use crate::cli::SubmitArgs;
use crate::mq::Access;
use crate::names::Names;
use crate::protocol::{self, MAX_PRIORITY, Message, Status, Task, monotonic_ns};
use crate::queue::{self, Finder, Guard, Queue, Which};
use crate::results::show_result;
use crate::sysv::Tick;

/// A task ready to go.
struct Ready {
    task: Task,
    prio: u32,
    bytes: Vec<u8>,
}

struct Producer {
    pid: u64,
    seq: u32,
    default_prio: u32,
    reply: String,
    msgsize: usize,
}

impl Producer {
    /// `[!N ]KIND [ARG]` -> an encoded task, checked against the queue's message size.
    fn make(&mut self, text: &str) -> std::result::Result<Ready, String> {
        let (prio, text) = match text.strip_prefix('!') {
            Some(rest) => {
                let (n, task) = rest.split_once(' ').unwrap_or((rest, ""));
                let prio = n
                    .parse::<u32>()
                    .ok()
                    .filter(|&p| p <= MAX_PRIORITY)
                    .ok_or_else(|| format!("priority {n:?}: expected 0 to {MAX_PRIORITY}"))?;
                (prio, task)
            }
            None => (self.default_prio, text),
        };
        let (kind, arg) = protocol::parse_task(text)?;
        self.seq = self
            .seq
            .checked_add(1)
            .ok_or("more than 2^32 tasks from one process")?;
        let task = Task {
            id: (self.pid << 32) | u64::from(self.seq),
            kind,
            attempt: 1,
            reply: self.reply.clone(),
            arg,
        };
        let bytes = protocol::encode_task(&task, self.msgsize).map_err(|e| e.to_string())?;
        Ok(Ready { task, prio, bytes })
    }
}

/// The environment variable that asks for send times (see the module docs).
pub const STAMP_ENV: &str = "IPC_DEMO_SUBMIT_STAMP";

/// Run `submit`.
pub fn run(args: &SubmitArgs) -> Result<ExitCode> {
    let stamp = std::env::var_os(STAMP_ENV).is_some_and(|v| v == "1");
    let names = Names::new(&args.queue.name)?;
    // No supervisor: say so at once, rather than leave tasks in a queue nobody serves (or
    // block on a full one).
    names.supervisor()?;
    let timeout = args.timeout;
    let finder = Finder::new(&names, args.queue.flavor())?;
    let queue = finder.open(Which::Tasks, Access::Write, args.wait)?;
    let mut producer = Producer {
        pid: u64::from(getpid().as_raw().unsigned_abs()),
        seq: 0,
        default_prio: args.priority,
        reply: String::new(),
        msgsize: queue.msgsize(),
    };
    if args.wait {
        return run_waiting(args, &names, &queue, producer, stamp);
    }
    let mut bad = 0usize;
    // Tasks on the command line are all checked before any is sent: a mistake in the third
    // must not leave the first two submitted.
    let ready = make_all(&mut producer, &args.tasks, &mut bad);
    if bad > 0 {
        return Err(Error::msg(format!("{bad} bad task(s); nothing was sent")));
    }
    for r in ready {
        send_blocking(&queue, &r, timeout, stamp)?;
    }
    if args.tasks.is_empty() {
        // One line at a time: a producer may be a long-running pipe (`tail -f log | ...`).
        // A bad line is reported and skipped; the others are sent; the exit status says so.
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line.ctx("read", "stdin")?;
            match producer.make(&line) {
                Ok(r) => send_blocking(&queue, &r, timeout, stamp)?,
                Err(why) => report(&mut bad, i + 1, &line, &why),
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `submit --wait`: every task made first (from the command line, or from all of stdin),
/// then sent while the results come back into our own reply queue.
///
/// Stdin is read to its end *before* the stop signals are caught and the reply queue is made:
/// a read of stdin is restarted after a signal handler returns (SA_RESTART), so a role that
/// caught SIGINT there would not hear Ctrl-C while it waited for a line; and until the reply
/// queue exists there is nothing a signal's default action could leave behind. From then on
/// a stop signal is a request: the reply queue is removed on the way out, and the exit status
/// is 128 + the signal's number.
fn run_waiting(
    args: &SubmitArgs,
    names: &Names,
    queue: &Queue,
    mut producer: Producer,
    stamp: bool,
) -> Result<ExitCode> {
    let mut lines = Vec::new();
    if args.tasks.is_empty() {
        for line in std::io::stdin().lock().lines() {
            lines.push(line.ctx("read", "stdin")?);
        }
    }
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    // Our own reply queue, made before any task names it.
    let (reply, _guard) = create_reply(names, queue)?;
    producer.reply = match &reply {
        Queue::Sysv(q) => format!("sysv:{}", q.id()),
        Queue::Posix(q) => q.name().to_owned(),
    };
    let mut bad = 0usize;
    let ready = if args.tasks.is_empty() {
        // A bad line of stdin is reported and skipped, as without --wait.
        make_all(&mut producer, &lines, &mut bad)
    } else {
        let ready = make_all(&mut producer, &args.tasks, &mut bad);
        if bad > 0 {
            return Err(Error::msg(format!("{bad} bad task(s); nothing was sent")));
        }
        ready
    };
    let all_ok = submit_and_wait(names, queue, &reply, ready, args.timeout, stamp, &shutdown)?;
    Ok(if all_ok && bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Each of `texts` made into a task; a bad one is reported (numbered from 1) and counted.
fn make_all(producer: &mut Producer, texts: &[String], bad: &mut usize) -> Vec<Ready> {
    let mut ready = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match producer.make(text) {
            Ok(r) => ready.push(r),
            Err(why) => report(bad, i + 1, text, &why),
        }
    }
    ready
}

fn print_sent(r: &Ready, stamp: bool) -> Result<()> {
    let id = protocol::show_id(r.task.id);
    if stamp {
        say!("{id} {} {}", r.prio, monotonic_ns())
    } else {
        say!("{id}")
    }
}

fn full(queue: &Queue, r: &Ready, waited: Duration) -> Error {
    let what = match queue {
        Queue::Posix(q) => q.attr().map_or_else(
            |_| "full".to_owned(),
            |a| format!("full ({} of {} messages)", a.curmsgs(), a.maxmsg()),
        ),
        Queue::Sysv(q) => q.stat().map_or_else(
            |_| "full".to_owned(),
            |(n, qbytes, cbytes)| format!("full ({n} messages, {cbytes} of {qbytes} bytes)"),
        ),
    };
    Error::msg(format!(
        "{} is {what} and stayed full for {waited:?}; task {} was \
         not sent (is the supervisor stopped with kill -STOP, or are there no workers?)",
        queue.name(),
        protocol::show_id(r.task.id)
    ))
}

/// Send, waiting for room: for ever, or up to `timeout` (`mq_timedsend`; see
/// [`Queue::send_wait`]).
fn send_blocking(queue: &Queue, r: &Ready, timeout: Option<Duration>, stamp: bool) -> Result<()> {
    match queue.send_wait(&r.bytes, r.prio, timeout) {
        Ok(()) => print_sent(r, stamp),
        Err(Errno::ETIMEDOUT) => Err(full(queue, r, timeout.unwrap_or_default())),
        Err(e) => Err(Error::sys(queue.send_call(), queue.name(), e)),
    }
}

/// The reply queue of `submit --wait` (`NAME-r<pid>-<stamp>`, a name no later process has, or a
/// System V queue known by its id, which the tasks name as `sysv:<id>`), with the guard that
/// removes it.
fn create_reply(names: &Names, queue: &Queue) -> Result<(Queue, Guard)> {
    let depth = match queue {
        Queue::Posix(q) => usize::try_from(q.attr()?.maxmsg()).unwrap_or(10).max(1),
        Queue::Sysv(_) => 0, // System V counts bytes, not messages
    };
    let name = names.reply(getpid(), monotonic_ns());
    queue::create_own(&name, depth, queue.msgsize(), queue.flavor())
}

/// `--wait`: send and collect results at the same time (see the module docs). True if every
/// task succeeded.
///
/// The supervisor may die meanwhile. Stopped for good, it has removed its queues: the results
/// still missing will never come, and we say so. Killed, it has left them, and its record of
/// what it held: the next supervisor gives those tasks out again, so we wait for it, and for
/// our results; one that comes twice (sent just before the kill, and again after) is printed
/// once.
fn submit_and_wait(
    names: &Names,
    queue: &Queue,
    reply: &Queue,
    ready: Vec<Ready>,
    timeout: Option<Duration>,
    stamp: bool,
    shutdown: &Shutdown,
) -> Result<bool> {
    // The supervisor's pid, and a pidfd readable once it exits, opened and checked again
    // (record::watch): it may have changed since we looked for it.
    let mut watching = Some(crate::record::watch(names)?);
    let reply_name = reply.name().to_owned();
    let unpolled = reply.fd().is_none();
    let mut tick = Tick::new();
    let mut pending: VecDeque<Ready> = ready.into();
    let mut outstanding: HashSet<u64> = HashSet::new();
    let mut all_ok = true;
    let mut full_since: Option<Instant> = None;
    let mut buf = Vec::new();
    let mut supervisor_gone = false;
    loop {
        while let Some(r) = pending.front() {
            match queue.send(&r.bytes, r.prio) {
                Ok(()) => {
                    tick.reset();
                    print_sent(r, stamp)?;
                    outstanding.insert(r.task.id);
                    pending.pop_front();
                    full_since = None;
                }
                Err(Errno::EAGAIN) => {
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if let Some(t) = timeout.filter(|&t| since.elapsed() >= t) {
                        return Err(full(queue, r, t));
                    }
                    break;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys(queue.send_call(), queue.name(), e)),
            }
        }
        loop {
            match reply.receive(&mut buf) {
                Ok(_) => tick.reset(),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys(reply.receive_call(), &reply_name, e)),
            }
            match protocol::decode(&buf) {
                Ok(Message::Result(r)) if outstanding.remove(&r.id) => {
                    all_ok &= r.status == Status::Ok;
                    say!("{}", show_result(&r))?;
                }
                Ok(Message::Result(r)) => {
                    eprintln!(
                        "mqueue-demo: a second result for {}; ignored",
                        protocol::show_id(r.id)
                    );
                }
                Ok(other) => {
                    eprintln!("mqueue-demo: unexpected {other:?} in {reply_name}; dropped")
                }
                Err(e) => eprintln!("mqueue-demo: {reply_name}: {e}; dropped"),
            }
        }
        if pending.is_empty() && outstanding.is_empty() {
            return Ok(all_ok);
        }
        if let Some(sig) = shutdown.signal() {
            eprintln!(
                "mqueue-demo: {} tasks not sent, {} results not received",
                pending.len(),
                outstanding.len()
            );
            return Err(Error::Interrupted(sig));
        }
        // A supervisor that stopped for good removed its queues; a killed one left them.
        if supervisor_gone || watching.is_none() {
            let who = watching.take().map_or_else(
                || "the supervisor".to_owned(),
                |(pid, _)| format!("the supervisor (pid {pid})"),
            );
            if queue.removed() {
                let how = if supervisor_gone {
                    "stopped"
                } else {
                    "is gone, and its queues were removed"
                };
                return Err(Error::msg(format!(
                    "{who} {how}: {} tasks not sent, {} results will not come",
                    pending.len(),
                    outstanding.len()
                )));
            }
            if supervisor_gone {
                eprintln!(
                    "mqueue-demo: {who} of {} is gone (killed?); its queues and its record of the \
                     tasks it held are kept: waiting for the next one to take them over \
                     (mqueue-demo run --queue {}), or Ctrl-C",
                    names.tasks, names.tasks
                );
            }
            if let Ok((pid, gone)) = crate::record::watch(names) {
                eprintln!(
                    "mqueue-demo: supervisor pid {pid} took {} over; {} results to come",
                    names.tasks,
                    outstanding.len() + pending.len()
                );
                watching = Some((pid, gone));
            }
        }
        let mut fds = vec![PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
        if let Some((_, gone)) = &watching {
            fds.push(PollFd::new(gone.as_fd(), PollFlags::POLLIN));
        }
        let gone_at = watching.is_some().then_some(1);
        fds.extend(reply.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        if !pending.is_empty() {
            fds.extend(queue.fd().map(|fd| PollFd::new(fd, PollFlags::POLLOUT)));
        }
        let until = match (full_since, timeout) {
            (Some(since), Some(t)) if !pending.is_empty() => Some(since + t),
            _ => None,
        };
        // Without a supervisor, look for the next one on a timer (like a System V queue).
        let wait = queue::poll_timeout(unpolled || watching.is_none(), &mut tick, until);
        match poll(&mut fds, wait) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", queue.name(), e)),
        }
        // Checked after one more drain of the reply queue: the last results were sent before
        // the supervisor exited.
        supervisor_gone = gone_at
            .and_then(|i| fds.get(i))
            .is_some_and(|fd| fd.revents().is_some_and(|r| !r.is_empty()));
    }
}

/// A task that cannot be sent: said on stderr, counted.
fn report(bad: &mut usize, line: usize, text: &str, why: &str) {
    *bad += 1;
    eprintln!(
        "mqueue-demo: task {line} {:?}: {why}",
        common::out::escape(text.as_bytes())
    );
}
