//! One queue, POSIX or System V (`--sysv`), as the roles use it: non-blocking send and
//! receive, a descriptor to `poll` where there is one, and how to find the supervisor's queues.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use common::cleanup::{Object, Unlink};
use common::{Error, Result, trace};
use nix::errno::Errno;

use crate::mq::{Access, Created, Mq};
use crate::names::Names;
use crate::sysv::{self, Remove, SysvQ};

/// POSIX or System V message queues (`--sysv`): the one way this crate says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// POSIX message queues: `mq_open`, named `/ipc-demo-…`, descriptors that `poll` takes.
    Posix,
    /// System V message queues: `msgget`, keys `0x1dc0xxxx`, no descriptor.
    Sysv,
}

impl Flavor {
    /// `--sysv` given or not.
    pub fn of(sysv: bool) -> Flavor {
        if sysv { Flavor::Sysv } else { Flavor::Posix }
    }

    /// The flag that asks for it, for a command line: `--sysv`, or nothing for POSIX.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Flavor::Posix => &[],
            Flavor::Sysv => &["--sysv"],
        }
    }
}

/// A queue of either kind.
pub enum Queue {
    /// A POSIX message queue.
    Posix(Mq),
    /// A System V message queue.
    Sysv(SysvQ),
}

impl Queue {
    /// Its kind.
    pub fn flavor(&self) -> Flavor {
        match self {
            Queue::Posix(_) => Flavor::Posix,
            Queue::Sysv(_) => Flavor::Sysv,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        match self {
            Queue::Posix(q) => q.name(),
            Queue::Sysv(q) => q.name(),
        }
    }

    /// The largest message it takes.
    pub fn msgsize(&self) -> usize {
        match self {
            Queue::Posix(q) => q.msgsize(),
            Queue::Sysv(q) => q.msgsize(),
        }
    }

    /// The descriptor to `poll`; System V queues have none.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Queue::Posix(q) => Some(q.as_fd()),
            Queue::Sysv(_) => None,
        }
    }

    /// Send without waiting: a full queue is `Err(EAGAIN)`. (A POSIX queue must have been
    /// opened non-blocking.)
    pub fn send(&self, msg: &[u8], prio: u32) -> nix::Result<()> {
        match self {
            Queue::Posix(q) => q.send(msg, prio),
            Queue::Sysv(q) => q.send(msg, prio, true),
        }
    }

    /// Send, waiting for room: for ever, or up to `timeout` (then ETIMEDOUT). A POSIX queue
    /// must have been opened blocking; it waits in `mq_timedsend`. System V has no timed send,
    /// so with a timeout it retries `IPC_NOWAIT` on a backing-off timer until the deadline.
    pub fn send_wait(&self, msg: &[u8], prio: u32, timeout: Option<Duration>) -> nix::Result<()> {
        match (self, timeout) {
            (Queue::Posix(q), Some(t)) => q.timed_send(msg, prio, t),
            (Queue::Posix(q), None) => loop {
                match q.send(msg, prio) {
                    Err(Errno::EINTR) => {}
                    other => return other,
                }
            },
            (Queue::Sysv(q), None) => q.send(msg, prio, false),
            (Queue::Sysv(q), Some(t)) => {
                let end = Instant::now() + t;
                let mut tick = sysv::Tick::new();
                loop {
                    match q.send(msg, prio, true) {
                        Err(Errno::EAGAIN) if Instant::now() < end => {
                            std::thread::sleep(tick.cap(Some(end)));
                        }
                        Err(Errno::EAGAIN) => return Err(Errno::ETIMEDOUT),
                        other => return other,
                    }
                }
            }
        }
    }

    /// The call that sends, for error messages: `mq_send` or `msgsnd`.
    pub fn send_call(&self) -> &'static str {
        match self {
            Queue::Posix(_) => "mq_send",
            Queue::Sysv(_) => "msgsnd",
        }
    }

    /// The call that receives, for error messages: `mq_receive` or `msgrcv`.
    pub fn receive_call(&self) -> &'static str {
        match self {
            Queue::Posix(_) => "mq_receive",
            Queue::Sysv(_) => "msgrcv",
        }
    }

    /// Receive without waiting: an empty queue is `Err(EAGAIN)`. Returns the priority.
    pub fn receive(&self, buf: &mut Vec<u8>) -> nix::Result<u32> {
        match self {
            Queue::Posix(q) => q.receive(buf),
            Queue::Sysv(q) => q.receive(buf, true),
        }
    }

    /// True once the queue has been removed (`mq_unlink`: its name is gone, though our
    /// descriptor keeps it alive, and `fstat` counts no link; System V: `IPC_RMID`). A
    /// supervisor that stops removes its queues; one that is killed leaves them.
    pub fn removed(&self) -> bool {
        match self {
            Queue::Posix(q) => q.links().is_ok_and(|n| n == 0),
            Queue::Sysv(q) => q.stat().is_err(),
        }
    }

    /// Messages waiting now.
    pub fn depth(&self) -> Result<usize> {
        match self {
            Queue::Posix(q) => q.depth(),
            Queue::Sysv(q) => Ok(usize::try_from(q.stat()?.0).unwrap_or(0)),
        }
    }

    /// What fills it up, for messages: "10 messages" or "16384 bytes".
    pub fn capacity(&self) -> Result<String> {
        match self {
            Queue::Posix(q) => Ok(format!("{} messages", q.attr()?.maxmsg())),
            Queue::Sysv(q) => Ok(format!("{} bytes", q.stat()?.1)),
        }
    }

    /// Remove it now (`mq_unlink` or `IPC_RMID`). One already gone counts as removed.
    pub fn remove(&self) -> Result<()> {
        match self {
            Queue::Posix(q) => common::cleanup::Object::Mqueue(q.name().to_owned()).unlink(),
            Queue::Sysv(q) => q.remove(),
        }
    }
}

/// Which of the supervisor's four queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// `NAME`.
    Tasks,
    /// `NAME-results`.
    Results,
    /// `NAME-dead`.
    Dead,
    /// `NAME-done`.
    Done,
}

impl Which {
    /// All four, in the order the supervisor creates them.
    pub const ALL: [Which; 4] = [Which::Tasks, Which::Results, Which::Dead, Which::Done];

    fn index(self) -> usize {
        match self {
            Which::Tasks => 0,
            Which::Results => 1,
            Which::Dead => 2,
            Which::Done => 3,
        }
    }
}

/// How a role finds the supervisor's queues: by name (POSIX), or by the ids the supervisor
/// published (System V).
pub struct Finder {
    names: Names,
    /// `--sysv`: the message size and the four ids.
    sysv: Option<(usize, [i32; 4])>,
}

impl Finder {
    /// For `--sysv`, read the ids file; no file means no supervisor.
    pub fn new(names: &Names, flavor: Flavor) -> Result<Finder> {
        let sysv = if flavor == Flavor::Sysv {
            Some(sysv::read_ids(&names.tasks).map_err(|e| {
                Error::msg(format!(
                    "no supervisor serves {} with --sysv ({e}); start one with: mqueue-demo run \
                     --sysv --queue {}",
                    names.tasks, names.tasks
                ))
            })?)
        } else {
            None
        };
        Ok(Finder {
            names: names.clone(),
            sysv,
        })
    }

    /// The kind of queues it finds.
    pub fn flavor(&self) -> Flavor {
        Flavor::of(self.sysv.is_some())
    }

    /// The name of one of the four queues.
    pub fn name(&self, which: Which) -> &str {
        self.names.all()[which.index()]
    }

    /// Open one of the four queues. `nonblock` matters for POSIX only.
    pub fn open(&self, which: Which, access: Access, nonblock: bool) -> Result<Queue> {
        let name = self.name(which);
        match self.sysv {
            Some((msgsize, ids)) => {
                Ok(Queue::Sysv(SysvQ::open(name, ids[which.index()], msgsize)?))
            }
            None => Ok(Queue::Posix(Mq::open(name, access, nonblock)?)),
        }
    }
}

/// The `poll` timeout for a role that waits for its queues: if they all have descriptors in
/// the `poll` set, until `until` or for ever; if it also waits for something `poll` cannot
/// watch (`unpolled`: a System V queue), no longer than the next tick.
pub fn poll_timeout(
    unpolled: bool,
    tick: &mut sysv::Tick,
    until: Option<Instant>,
) -> nix::poll::PollTimeout {
    if unpolled {
        common::deadline::poll_timeout(tick.cap(until))
    } else {
        match until {
            Some(u) => common::deadline::poll_timeout(u.saturating_duration_since(Instant::now())),
            None => nix::poll::PollTimeout::NONE,
        }
    }
}

/// What removes a queue when its owner exits, whatever its kind.
pub enum Guard {
    /// `mq_unlink` (or `unlink` of a file).
    Unlink(Unlink),
    /// `msgctl(IPC_RMID)`.
    Remove(Remove),
}

impl Guard {
    /// Disarm the guard: the queue stays, and someone else removes it.
    pub fn keep(self) {
        match self {
            Guard::Unlink(u) => drop(u.keep()),
            Guard::Remove(r) => r.keep(),
        }
    }
}

/// Create a queue named after our own pid (a worker's inbox, a `submit --wait` reply queue),
/// readable by us, with its removal guard. A POSIX queue already at that name can only be the
/// leftover of an earlier process that had our pid and was killed with -9: if it is ours, it
/// is removed and made again (another user's is refused).
pub fn create_own(
    name: &str,
    depth: usize,
    msgsize: usize,
    flavor: Flavor,
) -> Result<(Queue, Guard)> {
    if flavor == Flavor::Sysv {
        let q = SysvQ::create(name, msgsize)?;
        let guard = Guard::Remove(Remove::new(&q));
        return Ok((Queue::Sysv(q), guard));
    }
    for _ in 0..2 {
        match Mq::create(name, depth, msgsize, Access::Read)? {
            Created::New(q) => {
                let guard = Guard::Unlink(Unlink::new(Object::Mqueue(name.to_owned())));
                return Ok((Queue::Posix(q), guard));
            }
            Created::Exists => {
                drop(Mq::open(name, Access::Read, true)?);
                Object::Mqueue(name.to_owned()).unlink()?;
                trace!("mq_unlink({name}): a leftover of a process killed with -9");
            }
        }
    }
    Err(Error::msg(format!("{name}: keeps reappearing")))
}
