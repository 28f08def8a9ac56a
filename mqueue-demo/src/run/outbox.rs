//! Where the supervisor's messages go: `NAME-results`, `NAME-dead`, and the reply queue of each
//! `submit --wait` client, all written without ever blocking.
//!
//! A full queue keeps its messages here, in order, until `poll` says it has room (POLLOUT; a
//! System V queue is tried again on the supervisor's timer). So a reader that stops reading
//! never stops the supervisor; the back-pressure is elsewhere: a result waiting here keeps its
//! task's slot in the supervisor's record (record.rs), which takes no new task once its slots
//! are all in use.
//!
//! # A client's queue can only hurt its client
//!
//! A reply queue belongs to a client, which may make it as it likes, remove it, or go away.
//! So, unlike our own two queues, whose failure ends the supervisor:
//!
//! - a result is sized for the queue it goes to ([`Outboxes::room`]: its `mq_msgsize`, or for
//!   System V the smaller of the agreed size and the queue's `msg_qbytes`, the most that can
//!   ever fit), and its output is cut to fit; if not even a result's header fits, that result
//!   is dropped;
//! - any error opening or sending to a reply queue (ENOENT: the client has gone; EMSGSIZE;
//!   for System V EIDRM or EINVAL: the queue was removed) drops what waits for it;
//!
//! and a dropped result is said and counted by the supervisor ([`Gone`]).
//!
//! # A reply queue is open only while it is needed
//!
//! Each `submit --wait` makes its own queue, and removes it when it exits; an open descriptor
//! would keep the removed queue alive, and its memory charged to the user's RLIMIT_MSGQUEUE,
//! until it is closed (mq_overview(7)): after a few dozen clients, no new queue could be made
//! by that user. So a reply queue is opened when its first result is sent, and closed once
//! nothing waits for it and the supervisor holds no other task whose result goes there
//! ([`Outboxes::expect`], [`Outboxes::release`]) — not at once, but after [`IDLE`], or sooner
//! when more than [`MAX_IDLE`] are idle ([`Outboxes::close_idle`]): a client whose tasks go
//! through one worker leaves its queue unused between every two results, and opening it again
//! for each one (mq_open, fstat, mq_getattr, close) would cost more than the task.
//!
//! A name is never reused (a client's queue is `NAME-r<pid>-<stamp>`, see names.rs), so a queue
//! kept open under a name is the one that name was given to. A client that has gone removed
//! its queue, and nobody will read it: results still go in, harmlessly, until it is full; then
//! the first that finds no room finds it removed (one `fstat`: no link left), and what waits
//! for it is dropped, so a gone client holds nothing of the supervisor's for ever.

use std::collections::{HashMap, VecDeque};
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use common::{Error, Result};
use nix::errno::Errno;

use crate::mq::{Access, Mq};
use crate::queue::Queue;
use crate::sysv::SysvQ;

/// A message to send, and what the supervisor wants back about it once it is out.
pub struct Letter {
    /// The message.
    pub msg: Vec<u8>,
    /// Its priority.
    pub prio: u32,
    /// The task it is about, if any (a malformed message is about none).
    pub task: Option<u64>,
    /// Given back in [`Gone`] once the letter is out: the supervisor's record slot.
    pub tag: Option<usize>,
}

/// A letter that is out of our hands: sent, or dropped with the reason.
#[derive(Debug)]
pub struct Gone {
    /// The task it was about.
    pub task: Option<u64>,
    /// The tag it was posted with.
    pub tag: Option<usize>,
    /// Why it was dropped; None if it was sent.
    pub dropped: Option<String>,
}

/// How long a reply queue stays open once nothing needs it.
pub const IDLE: Duration = Duration::from_millis(500);
/// How many unneeded reply queues stay open at most.
pub const MAX_IDLE: usize = 8;

struct Outbox {
    queue: Queue,
    /// The largest message that can ever go in.
    room: usize,
    waiting: VecDeque<Letter>,
    /// Since when nothing needs it (a reply queue): closed at [`IDLE`] after.
    idle_since: Option<Instant>,
}

/// The supervisor's outgoing queues.
pub struct Outboxes {
    /// `NAME-results` and `NAME-dead`: ours, open for the supervisor's life.
    fixed: [String; 2],
    boxes: HashMap<String, Outbox>,
    /// For each reply queue, the tasks in the supervisor's hands whose result goes there.
    users: HashMap<String, usize>,
    /// The message size the roles agreed on (System V queues have none of their own).
    msgsize: usize,
}

impl Outboxes {
    /// Our own two queues, `NAME-results` and `NAME-dead`.
    pub fn new(results: Queue, dead: Queue) -> Outboxes {
        let msgsize = results.msgsize();
        let fixed = [results.name().to_owned(), dead.name().to_owned()];
        let boxes = [results, dead]
            .into_iter()
            .map(|queue| {
                let outbox = Outbox {
                    room: queue.msgsize(),
                    queue,
                    waiting: VecDeque::new(),
                    idle_since: None,
                };
                (outbox.queue.name().to_owned(), outbox)
            })
            .collect();
        Outboxes {
            fixed,
            boxes,
            users: HashMap::new(),
            msgsize,
        }
    }

    /// A task whose result goes to reply queue `reply` is now in the supervisor's hands.
    pub fn expect(&mut self, reply: &str) {
        *self.users.entry(reply.to_owned()).or_default() += 1;
    }

    /// That task's result has been posted (after [`Outboxes::post`]) or dropped: the queue is
    /// closed once nothing waits for it.
    pub fn release(&mut self, reply: &str) {
        if let Some(n) = self.users.get_mut(reply) {
            *n -= 1;
            if *n == 0 {
                self.users.remove(reply);
            }
        }
        self.tidy(reply);
    }

    /// The largest message that `dest` can take, opening it if it is a reply queue not yet
    /// open (`sysv:<id>` for System V); the error says why nothing can go there.
    pub fn room(&mut self, dest: &str) -> std::result::Result<usize, String> {
        if let Some(outbox) = self.boxes.get_mut(dest) {
            outbox.idle_since = None;
            return Ok(outbox.room);
        }
        let opened = match dest.strip_prefix("sysv:").map(str::parse::<i32>) {
            Some(Ok(id)) => SysvQ::open(dest, id, self.msgsize).and_then(|q| {
                // A message longer than msg_qbytes never fits, however empty the queue.
                let (_, qbytes, _) = q.stat()?;
                let room = usize::try_from(qbytes).unwrap_or(usize::MAX);
                Ok((Queue::Sysv(q), room.min(self.msgsize)))
            }),
            _ => Mq::open(dest, Access::Write, true).map(|q| {
                let room = q.msgsize();
                (Queue::Posix(q), room)
            }),
        };
        let (queue, room) = opened.map_err(|e| e.to_string())?;
        let outbox = Outbox {
            queue,
            room,
            waiting: VecDeque::new(),
            idle_since: None,
        };
        self.boxes.insert(dest.to_owned(), outbox);
        Ok(room)
    }

    /// Queue `msg` for `dest` (opened by [`Outboxes::room`] first) and send what waits there,
    /// as far as it has room. What is out comes back in `gone`. Fails only on our own queues.
    pub fn post(&mut self, dest: &str, letter: Letter, gone: &mut Vec<Gone>) -> Result<()> {
        let Some(outbox) = self.boxes.get_mut(dest) else {
            gone.push(Gone {
                task: letter.task,
                tag: letter.tag,
                dropped: Some(format!("{dest} is not open")),
            });
            return Ok(());
        };
        outbox.waiting.push_back(letter);
        self.flush_one(dest, gone)
    }

    /// Send what waits, in every queue, as far as each has room.
    pub fn flush(&mut self, gone: &mut Vec<Gone>) -> Result<()> {
        let busy: Vec<String> = self
            .boxes
            .iter()
            .filter(|(_, o)| !o.waiting.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for name in busy {
            self.flush_one(&name, gone)?;
        }
        Ok(())
    }

    fn flush_one(&mut self, dest: &str, gone: &mut Vec<Gone>) -> Result<()> {
        let Some(outbox) = self.boxes.get_mut(dest) else {
            return Ok(());
        };
        while let Some(letter) = outbox.waiting.front() {
            match outbox.queue.send(&letter.msg, letter.prio) {
                Ok(()) => {
                    gone.push(Gone {
                        task: letter.task,
                        tag: letter.tag,
                        dropped: None,
                    });
                    outbox.waiting.pop_front();
                }
                Err(Errno::EINTR) => {}
                Err(e) if self.fixed.iter().any(|f| f == dest) => {
                    if e == Errno::EAGAIN {
                        break;
                    }
                    return Err(Error::sys(outbox.queue.send_call(), dest, e));
                }
                Err(Errno::EAGAIN) if !outbox.queue.removed() => break,
                Err(e) => {
                    // A client's queue: it failed, or it is full and its client has removed it
                    // (gone: nobody will make room). What waits for it is dropped; closed.
                    let why = match e {
                        Errno::EAGAIN => format!("{dest} is full, and its client has removed it"),
                        e => format!("{} {dest}: {}", outbox.queue.send_call(), e.desc()),
                    };
                    let outbox = self.boxes.remove(dest).expect("found above");
                    gone.extend(outbox.waiting.into_iter().map(|l| Gone {
                        task: l.task,
                        tag: l.tag,
                        dropped: Some(why.clone()),
                    }));
                    return Ok(());
                }
            }
        }
        self.tidy(dest);
        Ok(())
    }

    /// A reply queue that nothing waits for and no task in our hands will answer to is idle
    /// from now: closed after [`IDLE`] ([`Outboxes::close_idle`]).
    fn tidy(&mut self, dest: &str) {
        let unused = !self.users.contains_key(dest) && !self.fixed.iter().any(|f| f == dest);
        if let Some(outbox) = self.boxes.get_mut(dest).filter(|o| o.waiting.is_empty()) {
            if unused && outbox.idle_since.is_none() {
                let now = Instant::now();
                outbox.idle_since = Some(now);
                self.close_idle(Some(now));
            }
        }
    }

    /// Close the reply queues idle for [`IDLE`] at `now` (`None`: the present), and the oldest
    /// idle ones beyond [`MAX_IDLE`]. Returns when the next one is due, for the supervisor's
    /// `poll`. Costs nothing while no queue is idle, as in every turn of a busy supervisor.
    pub fn close_idle(&mut self, now: Option<Instant>) -> Option<Instant> {
        if self.boxes.values().all(|o| o.idle_since.is_none()) {
            return None;
        }
        let now = now.unwrap_or_else(Instant::now);
        let mut idle: Vec<(Instant, String)> = self
            .boxes
            .iter()
            .filter_map(|(name, o)| o.idle_since.map(|t| (t, name.clone())))
            .collect();
        idle.sort();
        let extra = idle.len().saturating_sub(MAX_IDLE);
        let mut next = None;
        for (i, (since, name)) in idle.into_iter().enumerate() {
            if i < extra || now.saturating_duration_since(since) >= IDLE {
                self.boxes.remove(&name);
            } else {
                let due = since + IDLE;
                next = Some(next.map_or(due, |n: Instant| n.min(due)));
            }
        }
        next
    }

    /// Messages waiting for room, in all queues.
    pub fn waiting(&self) -> usize {
        self.boxes.values().map(|o| o.waiting.len()).sum()
    }

    /// The descriptors to poll for POLLOUT: the queues where messages wait (System V queues
    /// have none, and are tried again on the supervisor's timer).
    pub fn poll_fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.boxes
            .values()
            .filter(|o| !o.waiting.is_empty())
            .filter_map(|o| o.queue.fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mq::Created;
    use common::cleanup::{Object, Unlink};

    fn make(tag: &str, msgsize: usize) -> (Queue, Unlink) {
        let name = common::names::posix_name(&common::names::unique(tag));
        let Ok(Created::New(q)) = Mq::create(&name, 2, msgsize, Access::ReadWrite) else {
            panic!("mq_open {name}")
        };
        (Queue::Posix(q), Unlink::new(Object::Mqueue(name)))
    }

    #[test]
    fn a_reply_queue_is_closed_once_no_task_answers_to_it() {
        let (results, _g1) = make("ob-results", 64);
        let (dead, _g2) = make("ob-dead", 64);
        let (reply, _g3) = make("ob-reply", 32);
        let name = reply.name().to_owned();
        let mut o = Outboxes::new(results, dead);
        let mut gone = Vec::new();
        o.expect(&name);
        o.expect(&name);
        assert_eq!(o.room(&name), Ok(32), "sized for the client's queue");
        let letter = |msg: &[u8], task| Letter {
            msg: msg.to_vec(),
            prio: 0,
            task: Some(task),
            tag: None,
        };
        o.post(&name, letter(b"one", 1), &mut gone).unwrap();
        o.release(&name);
        assert_eq!(o.boxes.len(), 3, "another task still answers to it");
        o.post(&name, letter(b"two", 2), &mut gone).unwrap();
        o.release(&name);
        assert_eq!(o.boxes.len(), 3, "kept a moment for the client's next task");
        assert!(o.close_idle(None).is_some());
        assert_eq!(o.close_idle(Some(Instant::now() + IDLE)), None);
        assert_eq!(o.boxes.len(), 2, "closed once idle for IDLE");
        let tags: Vec<_> = gone.iter().map(|g| (g.task, g.dropped.is_none())).collect();
        assert_eq!(tags, [(Some(1), true), (Some(2), true)]);
        let mut buf = Vec::new();
        assert_eq!(reply.receive(&mut buf), Ok(0));
        assert_eq!(buf, b"one");
    }

    #[test]
    fn a_client_queue_that_is_gone_drops_its_letter() {
        let (results, _g1) = make("ob-results", 64);
        let (dead, _g2) = make("ob-dead", 64);
        let mut o = Outboxes::new(results, dead);
        let missing = common::names::posix_name(&common::names::unique("ob-gone-r1"));
        let why = o.room(&missing).unwrap_err();
        assert!(why.contains("No such file or directory"), "{why}");
    }

    /// A client that has gone (its queue removed) while its results wait for room: the first
    /// that finds no room finds the queue removed, and what waits is dropped, not kept for ever.
    #[test]
    fn a_full_queue_whose_client_has_gone_is_let_go() {
        let (results, _g1) = make("ob-results", 64);
        let (dead, _g2) = make("ob-dead", 64);
        let (reply, guard) = make("ob-reply", 32);
        let name = reply.name().to_owned();
        let mut o = Outboxes::new(results, dead);
        let mut gone = Vec::new();
        o.expect(&name);
        assert_eq!(o.room(&name), Ok(32));
        let letter = |task: u64| Letter {
            msg: b"result".to_vec(),
            prio: 0,
            task: Some(task),
            tag: usize::try_from(task).ok(),
        };
        // The queue holds 2: the third waits, its client being alive.
        for task in 1..=3 {
            o.post(&name, letter(task), &mut gone).unwrap();
        }
        assert_eq!(o.waiting(), 1);
        drop(guard);
        o.post(&name, letter(4), &mut gone).unwrap();
        assert_eq!(o.waiting(), 0);
        let dropped: Vec<_> = gone
            .iter()
            .filter(|g| g.dropped.is_some())
            .map(|g| g.tag)
            .collect();
        assert_eq!(dropped, [Some(3), Some(4)]);
        drop(reply);
    }
}
