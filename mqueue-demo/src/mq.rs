//! A POSIX message queue descriptor that closes itself, and the calls every role makes on it.
//!
//! nix 0.32's `MqdT` has no `Drop` (a descriptor forgotten on an early `?` return would leak),
//! so [`Mq`] owns one and calls `mq_close` when dropped. Closing is not removing: a queue lives
//! in the kernel until `mq_unlink`, which the owner's `common::cleanup::Unlink` guard does.
//!
//! On Linux an `mqd_t` *is* a file descriptor (the queue is an inode of the `mqueue`
//! filesystem, which `mount -t mqueue none /dev/mqueue` shows), so it can be `poll`ed: POLLIN
//! when the queue holds a message, POLLOUT when it has room. POSIX does not promise this, and
//! it is what lets the supervisor wait on many queues, its workers' pidfds and its signal pipe
//! in one `poll`. It also means `fstat` works on it, which is how we check who owns a queue.
//!
//! Every descriptor is opened with `O_CLOEXEC` (workers must not inherit the supervisor's
//! queues) and, unless said otherwise, `O_NONBLOCK`: the roles wait in `poll`, where a signal
//! can wake them, rather than in `mq_receive`, which SA_RESTART would restart.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::mqueue::{self, MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::Uid;

/// Where the kernel's limits for unprivileged queues are.
pub const LIMITS_DIR: &str = "/proc/sys/fs/mqueue";

/// An open message queue, closed on drop.
#[derive(Debug)]
pub struct Mq {
    name: String,
    mqd: Option<MqdT>,
    msgsize: usize,
}

/// How a role uses a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Receive only.
    Read,
    /// Send only.
    Write,
    /// Both (the supervisor reclaiming a dead worker's inbox; `purge`).
    ReadWrite,
}

impl Access {
    /// The open flag, as mq_open(3) spells it.
    pub fn flag_name(self) -> &'static str {
        match self {
            Access::Read => "O_RDONLY",
            Access::Write => "O_WRONLY",
            Access::ReadWrite => "O_RDWR",
        }
    }

    fn flags(self) -> MQ_OFlag {
        match self {
            Access::Read => MQ_OFlag::O_RDONLY,
            Access::Write => MQ_OFlag::O_WRONLY,
            Access::ReadWrite => MQ_OFlag::O_RDWR,
        }
    }
}

/// The result of [`Mq::create`].
pub enum Created {
    /// A new queue: ours, empty, with the attributes asked for.
    New(Mq),
    /// Something already has this name (EEXIST); nothing was opened.
    Exists,
}

impl Mq {
    /// Create a new queue with `O_CREAT|O_EXCL`, mode 0600, `depth` messages of at most
    /// `msgsize` bytes. EEXIST is not an error here: the caller decides whether what is there
    /// is a leftover to take over or someone else's (see [`Mq::open`]).
    pub fn create(name: &str, depth: usize, msgsize: usize, access: Access) -> Result<Created> {
        let attr = MqAttr::new(0, to_attr(depth), to_attr(msgsize), 0);
        // nix 0.32 passes the mode and attributes only when it is given Some(&attr): with None
        // it calls the two-argument mq_open, and O_CREAT would read garbage for both.
        let flags = access.flags()
            | MQ_OFlag::O_CREAT
            | MQ_OFlag::O_EXCL
            | MQ_OFlag::O_CLOEXEC
            | MQ_OFlag::O_NONBLOCK;
        match mqueue::mq_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr)) {
            Ok(mqd) => {
                trace!(
                    "mq_open({name}, {}|O_CREAT|O_EXCL, 0600, maxmsg {depth}, msgsize \
                     {msgsize}) -> fd {}",
                    access.flag_name(),
                    mqd.as_raw_fd()
                );
                let mq = Mq {
                    name: name.to_owned(),
                    mqd: Some(mqd),
                    msgsize,
                };
                Ok(Created::New(mq))
            }
            Err(Errno::EEXIST) => {
                trace!("mq_open({name}, O_CREAT|O_EXCL) -> EEXIST");
                Ok(Created::Exists)
            }
            Err(e) => Err(explain_create(name, depth, msgsize, e)),
        }
    }

    /// Open an existing queue and check that it is ours: queue names are global to the
    /// machine, so another user could have made one with the name we expect. `fstat` on the
    /// descriptor (not a lookup by name, which could change in between) tells its owner.
    pub fn open(name: &str, access: Access, nonblock: bool) -> Result<Mq> {
        let mut flags = access.flags() | MQ_OFlag::O_CLOEXEC;
        if nonblock {
            flags |= MQ_OFlag::O_NONBLOCK;
        }
        let mqd = mqueue::mq_open(name, flags, Mode::empty(), None).ctx("mq_open", name)?;
        trace!(
            "mq_open({name}, {}) -> fd {}",
            access.flag_name(),
            mqd.as_raw_fd()
        );
        let st = fstat(&mqd).ctx("fstat", name)?;
        let attr = mqueue::mq_getattr(&mqd).ctx("mq_getattr", name)?;
        let mq = Mq {
            name: name.to_owned(),
            mqd: Some(mqd),
            msgsize: usize::try_from(attr.msgsize()).unwrap_or(0),
        };
        if st.st_uid != Uid::effective().as_raw() {
            return Err(Error::msg(format!(
                "{name}: the queue belongs to uid {}, not to us (uid {}); POSIX queue names \
                 are shared by the whole machine: choose another --queue",
                st.st_uid,
                Uid::effective()
            )));
        }
        Ok(mq)
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The largest message it takes (`mq_msgsize`).
    pub fn msgsize(&self) -> usize {
        self.msgsize
    }

    fn mqd(&self) -> &MqdT {
        self.mqd
            .as_ref()
            .expect("an Mq holds its descriptor until dropped")
    }

    /// The permission bits (`fstat` on the descriptor).
    pub fn mode(&self) -> Result<u32> {
        let st = fstat(self.mqd()).ctx("fstat", &self.name)?;
        Ok(st.st_mode & 0o7777)
    }

    /// The queue's links (`fstat`): 0 once it has been unlinked.
    // nlink_t is u64 on x86_64 but 32 bits on some targets.
    #[allow(clippy::useless_conversion)]
    pub fn links(&self) -> Result<u64> {
        let st = fstat(self.mqd()).ctx("fstat", &self.name)?;
        Ok(u64::from(st.st_nlink))
    }

    /// `mq_getattr`: depth, limits, flags.
    pub fn attr(&self) -> Result<MqAttr> {
        mqueue::mq_getattr(self.mqd()).ctx("mq_getattr", &self.name)
    }

    /// Messages waiting now.
    pub fn depth(&self) -> Result<usize> {
        Ok(usize::try_from(self.attr()?.curmsgs()).unwrap_or(0))
    }

    /// `mq_send`. On a non-blocking descriptor a full queue is `Err(EAGAIN)`.
    pub fn send(&self, msg: &[u8], prio: u32) -> nix::Result<()> {
        let res = mqueue::mq_send(self.mqd(), msg, prio);
        trace!(
            "mq_send({}, {} bytes, prio {prio}) -> {}",
            self.name,
            msg.len(),
            outcome(&res)
        );
        res
    }

    /// `mq_timedsend`, which nix 0.32 does not wrap: wait up to `timeout` for room in a full
    /// queue, then fail with ETIMEDOUT. The deadline is absolute, on CLOCK_REALTIME (as
    /// POSIX says); a descriptor opened blocking is needed, or a full queue fails at once.
    pub fn timed_send(&self, msg: &[u8], prio: u32, timeout: Duration) -> nix::Result<()> {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)?;
        let deadline = now + nix::sys::time::TimeSpec::from_duration(timeout);
        loop {
            // SAFETY: the descriptor is open (we own it), the buffer is valid for
            // `msg.len()` bytes and only read, and `deadline` outlives the call.
            let rc = unsafe {
                libc::mq_timedsend(
                    self.mqd().as_raw_fd(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    prio,
                    deadline.as_ref(),
                )
            };
            let res = Errno::result(rc).map(drop);
            trace!(
                "mq_timedsend({}, {} bytes, prio {prio}, {timeout:?}) -> {}",
                self.name,
                msg.len(),
                outcome(&res)
            );
            if res != Err(Errno::EINTR) {
                return res;
            }
        }
    }

    /// `mq_receive` into `buf`, which must hold `mq_msgsize` bytes (EMSGSIZE otherwise). On a
    /// non-blocking descriptor an empty queue is `Err(EAGAIN)`.
    pub fn receive(&self, buf: &mut Vec<u8>) -> nix::Result<u32> {
        buf.resize(self.msgsize.max(1), 0);
        let mut prio = 0;
        let res = mqueue::mq_receive(self.mqd(), buf, &mut prio);
        match res {
            Ok(n) => {
                buf.truncate(n);
                trace!("mq_receive({}) -> {n} bytes, prio {prio}", self.name);
                Ok(prio)
            }
            Err(e) => {
                if e != Errno::EAGAIN {
                    trace!("mq_receive({}) -> {e}", self.name);
                }
                Err(e)
            }
        }
    }
}

impl Mq {
    /// `mq_receive` into memory we do not own as a Rust buffer: the supervisor's record, a
    /// shared mapping (record.rs), where the kernel then writes the message and its priority
    /// within the call that takes it off the queue. Returns the length. On a non-blocking
    /// descriptor an empty queue is `Err(EAGAIN)`.
    ///
    /// # Safety
    ///
    /// `buf` must be valid for writes of `len` bytes and `prio` for the write of one aligned
    /// u32, both for the duration of the call, and no Rust reference may point into either.
    pub unsafe fn receive_raw(
        &self,
        buf: *mut u8,
        len: usize,
        prio: *mut u32,
    ) -> nix::Result<usize> {
        // SAFETY: the descriptor is open (we own it); the caller vouches for `buf` and `prio`.
        let n = unsafe { libc::mq_receive(self.mqd().as_raw_fd(), buf.cast(), len, prio) };
        match Errno::result(n) {
            Ok(n) => {
                let n = usize::try_from(n).unwrap_or(0);
                trace!("mq_receive({}) -> {n} bytes, into the record", self.name);
                Ok(n)
            }
            Err(e) => {
                if e != Errno::EAGAIN {
                    trace!("mq_receive({}) -> {e}", self.name);
                }
                Err(e)
            }
        }
    }
}

impl AsFd for Mq {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd().as_fd()
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        if let Some(mqd) = self.mqd.take() {
            // Closing cannot usefully fail for a descriptor we own; nothing to report.
            let _ = mqueue::mq_close(mqd);
        }
    }
}

fn outcome(res: &nix::Result<()>) -> String {
    match res {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

fn to_attr(n: usize) -> nix::mqueue::mq_attr_member_t {
    nix::mqueue::mq_attr_member_t::try_from(n).unwrap_or(nix::mqueue::mq_attr_member_t::MAX)
}

/// A kernel limit from /proc/sys/fs/mqueue, if readable.
pub fn limit(file: &str) -> Option<usize> {
    std::fs::read_to_string(format!("{LIMITS_DIR}/{file}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Turn the errors of a creating `mq_open` into what the user can do about them.
fn explain_create(name: &str, depth: usize, msgsize: usize, e: Errno) -> Error {
    let show = |f: &str| limit(f).map_or_else(|| "?".to_owned(), |n| n.to_string());
    let why = match e {
        Errno::EINVAL => format!(
            "maxmsg {depth} or msgsize {msgsize} is over the limits: an unprivileged process \
             may ask for at most {LIMITS_DIR}/msg_max = {} messages of {LIMITS_DIR}/msgsize_max \
             = {} bytes (root: up to 65536 messages of 16 MiB); ask for less with --depth/\
             --msgsize, or raise them (sysctl fs.mqueue.msg_max=64)",
            show("msg_max"),
            show("msgsize_max")
        ),
        Errno::EMFILE => format!(
            "the queues of this user would take more memory than RLIMIT_MSGQUEUE allows \
             ({} bytes; `ulimit -q`): ask for a smaller --depth/--msgsize, or remove \
             leftover queues (make clean-ipc)",
            rlimit_msgqueue()
        ),
        Errno::ENOSPC => format!(
            "the machine already has {LIMITS_DIR}/queues_max = {} queues; remove leftovers \
             (make clean-ipc) or raise the limit",
            show("queues_max")
        ),
        other => return Error::sys("mq_open", name, other),
    };
    Error::msg(format!("mq_open {name}: {}: {why}", e.desc()))
}

fn rlimit_msgqueue() -> String {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE)
        .map_or_else(|_| "?".to_owned(), |(soft, _)| soft.to_string())
}
