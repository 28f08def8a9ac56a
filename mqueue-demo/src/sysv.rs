//! The same queues on System V message queues (`--sysv`): `msgget`, `msgsnd`, `msgrcv`,
//! `msgctl`. nix 0.32 wraps none of them, so these are libc calls.
//!
//! How System V differs from POSIX, and what this module does about it:
//!
//! - **No names, numeric keys.** A queue is found by a `key_t` and then used by its id. Our
//!   keys are `0x1dc0xxxx` (`common::sysv_key`: the low 16 bits from a hash of the queue's
//!   POSIX-style name, the next free key on a clash), which is what `make clean-ipc` sweeps.
//!   No role finds a queue by its key, so a clash costs only the next try: the supervisor
//!   writes the ids of its four queues to `<runtime dir>/<NAME>.sysv`, beside its pid file,
//!   and the other roles read them there; every id read is checked with `IPC_STAT` (ours?
//!   still there?).
//! - **No descriptors**, so no `poll`: a role that must wait for a queue and a signal at once
//!   checks the queue with `IPC_NOWAIT` each time `poll` (on its other descriptors) times out,
//!   on a short timer that backs off while nothing happens (see [`Tick`]).
//! - **Priority is the message type.** `msgrcv(msgtyp = -N)` returns the first message with
//!   the *lowest* type that is `<= N`. So a priority `p` (0..=9, higher first) travels as type
//!   `10 - p` (1..=10), and a receive with type `-10` takes the most urgent message first, in
//!   FIFO order within one priority: the same order `mq_receive` gives.
//! - **A queue's capacity is in bytes** (`msg_qbytes`, 16384 by default; `/proc/sys/kernel/
//!   msgmnb`), not in messages, and one message is at most `/proc/sys/kernel/msgmax` bytes.
//! - **No timed send**: `submit --timeout` retries `IPC_NOWAIT` until the deadline.
//! - **Removal is `msgctl(IPC_RMID)`**, and it is immediate: unlike `mq_unlink`, processes
//!   still using the id get EIDRM.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Context, Error, Result, sysv_key, trace};
use nix::errno::Errno;
use nix::unistd::Uid;

/// The message type that carries priority `prio` (see the module docs).
pub fn mtype(prio: u32) -> libc::c_long {
    10 - libc::c_long::from(prio.min(crate::protocol::MAX_PRIORITY))
}

/// The priority a message of type `mtype` carries (see [`mtype`]).
pub fn priority(mtype: libc::c_long) -> u32 {
    u32::try_from(10 - mtype.clamp(1, 10)).unwrap_or(0)
}

/// A System V message queue, by id. Not removed on drop: its owner holds a [`Remove`] guard.
#[derive(Debug)]
pub struct SysvQ {
    name: String,
    id: i32,
    key: i32,
    msgsize: usize,
}

/// Removes its queue (`IPC_RMID`) when dropped: the `common::cleanup::Unlink` of System V.
#[must_use = "the queue is removed as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Remove {
    name: String,
    id: i32,
}

impl Remove {
    /// Guard queue `id`.
    pub fn new(q: &SysvQ) -> Remove {
        Remove {
            name: q.name.clone(),
            id: q.id,
        }
    }

    /// Disarm the guard: the queue stays, and someone else removes it.
    pub fn keep(mut self) {
        self.id = -1;
    }
}

impl Drop for Remove {
    fn drop(&mut self) {
        if self.id < 0 {
            return;
        }
        match rmid(self.id) {
            Ok(()) | Err(Errno::EINVAL | Errno::EIDRM) => {
                trace!("msgctl({} = id {}, IPC_RMID)", self.name, self.id);
            }
            Err(e) => eprintln!(
                "warning: msgctl {} (id {}) IPC_RMID: {}",
                self.name,
                self.id,
                e.desc()
            ),
        }
    }
}

fn rmid(id: i32) -> nix::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is fine.
    let rc = unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    Errno::result(rc).map(drop)
}

fn stat(id: i32) -> nix::Result<libc::msqid_ds> {
    // SAFETY: msqid_ds is a plain C struct; all-zero bytes are a valid value to be overwritten.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable msqid_ds for IPC_STAT to fill.
    let rc = unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) };
    Errno::result(rc).map(|_| ds)
}

/// The limit on one message's size, `/proc/sys/kernel/msgmax`.
pub fn msgmax() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192)
}

impl SysvQ {
    /// Create a new queue, mode 0600, with a free key of ours (`IPC_CREAT|IPC_EXCL`, trying the
    /// next key of `common::sysv_key::probe` when one is taken, 256 at most).
    pub fn create(name: &str, msgsize: usize) -> Result<SysvQ> {
        let max = msgmax();
        if msgsize > max {
            return Err(Error::msg(format!(
                "{name}: --msgsize {msgsize} is over /proc/sys/kernel/msgmax ({max}), the \
                 largest System V message"
            )));
        }
        for key in sysv_key::probe(name).take(256) {
            // SAFETY: msgget takes two integers and touches no memory of ours.
            let rc = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
            match Errno::result(rc) {
                Ok(id) => {
                    trace!("msgget({name}: key 0x{key:08x}, IPC_CREAT|IPC_EXCL|0600) -> id {id}");
                    return Ok(SysvQ {
                        name: name.to_owned(),
                        id,
                        key,
                        msgsize,
                    });
                }
                Err(Errno::EEXIST) => {}
                Err(Errno::ENOSPC) => {
                    return Err(Error::msg(format!(
                        "msgget {name}: the machine has /proc/sys/kernel/msgmni queues already; \
                         remove leftovers (make clean-ipc, ipcs -q)"
                    )));
                }
                Err(e) => return Err(Error::sys("msgget", name, e)),
            }
        }
        Err(Error::msg(format!(
            "msgget {name}: 256 keys in a row are taken"
        )))
    }

    /// Use queue `id`, after checking that it is there and ours.
    pub fn open(name: &str, id: i32, msgsize: usize) -> Result<SysvQ> {
        let ds = stat(id).map_err(|e| match e {
            Errno::EINVAL | Errno::EIDRM => Error::msg(format!(
                "{name}: System V queue id {id} does not exist any more"
            )),
            e => Error::sys("msgctl(IPC_STAT)", name, e),
        })?;
        if ds.msg_perm.uid != Uid::effective().as_raw() {
            return Err(Error::msg(format!(
                "{name}: System V queue id {id} belongs to uid {}, not to us",
                ds.msg_perm.uid
            )));
        }
        trace!(
            "msgctl({name} = id {id}, IPC_STAT) -> ours, {} messages",
            ds.msg_qnum
        );
        Ok(SysvQ {
            name: name.to_owned(),
            id,
            key: ds.msg_perm.__key,
            msgsize,
        })
    }

    /// The queue's name (ours; System V itself knows only the key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Its key.
    pub fn key(&self) -> i32 {
        self.key
    }

    /// The largest message the roles agreed on.
    pub fn msgsize(&self) -> usize {
        self.msgsize
    }

    /// (messages waiting, bytes allowed, bytes waiting), from `IPC_STAT`.
    // msgqnum_t and msglen_t are u64 on x86_64 but 32 bits on some targets.
    #[allow(clippy::useless_conversion)]
    pub fn stat(&self) -> Result<(u64, u64, u64)> {
        let ds = stat(self.id).ctx("msgctl(IPC_STAT)", &self.name)?;
        Ok((
            u64::from(ds.msg_qnum),
            u64::from(ds.msg_qbytes),
            u64::from(ds.__msg_cbytes),
        ))
    }

    /// `msgsnd`; with `nowait`, a full queue is `Err(EAGAIN)`.
    pub fn send(&self, msg: &[u8], prio: u32, nowait: bool) -> nix::Result<()> {
        // struct msgbuf { long mtype; char mtext[]; }, built in one buffer.
        let mut buf = Vec::with_capacity(std::mem::size_of::<libc::c_long>() + msg.len());
        buf.extend_from_slice(&mtype(prio).to_ne_bytes());
        buf.extend_from_slice(msg);
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        loop {
            // SAFETY: `buf` holds an mtype followed by `msg.len()` bytes of text, as msgsnd
            // reads it; the kernel copies it and keeps no pointer.
            let rc = unsafe { libc::msgsnd(self.id, buf.as_ptr().cast(), msg.len(), flags) };
            let res = Errno::result(rc).map(drop);
            if res != Err(Errno::EAGAIN) {
                trace!(
                    "msgsnd({}, {} bytes, type {}) -> {}",
                    self.name,
                    msg.len(),
                    mtype(prio),
                    res.map_or_else(|e| e.to_string(), |()| "ok".into())
                );
            }
            // msgsnd is never restarted after a signal handler (signal(7)), whatever SA_RESTART
            // says: a blocking send sees EINTR, and we try again.
            if res != Err(Errno::EINTR) || nowait {
                return res;
            }
        }
    }

    /// `msgrcv` with type `-10`: the most urgent message first (see the module docs). Returns
    /// the priority. With `nowait`, an empty queue is `Err(ENOMSG)`, reported as EAGAIN so the
    /// callers treat both kinds of queue alike. A blocking receive returns EINTR on a signal.
    ///
    /// A message longer than `msgsize` comes back cut to `msgsize + 1` bytes, so the caller can
    /// tell it was too long (its length is over `msgsize`). Without `MSG_NOERROR`, msgrcv fails
    /// with E2BIG on such a message (anyone may send up to `/proc/sys/kernel/msgmax` bytes) and
    /// *leaves it at the head of the queue*, where every later msgrcv fails the same way: one
    /// oversized message would stop the queue for good.
    pub fn receive(&self, out: &mut Vec<u8>, nowait: bool) -> nix::Result<u32> {
        let head = std::mem::size_of::<libc::c_long>();
        let room = self.msgsize + 1;
        out.resize(head + room, 0);
        let flags = libc::MSG_NOERROR | if nowait { libc::IPC_NOWAIT } else { 0 };
        // SAFETY: `out` has room for an mtype and `room` bytes of text, and msgrcv writes at
        // most that (MSG_NOERROR cuts a longer message to `room` bytes).
        let rc = unsafe { libc::msgrcv(self.id, out.as_mut_ptr().cast(), room, -10, flags) };
        match Errno::result(rc) {
            Ok(n) => {
                let n = usize::try_from(n).unwrap_or(0);
                let ty = libc::c_long::from_ne_bytes(out[..head].try_into().expect("c_long bytes"));
                out.drain(..head);
                out.truncate(n);
                let prio = priority(ty);
                trace!(
                    "msgrcv({}, type -10, MSG_NOERROR) -> {n} bytes, type {ty} (priority {prio})",
                    self.name
                );
                Ok(prio)
            }
            Err(Errno::ENOMSG) => Err(Errno::EAGAIN),
            Err(e) => {
                trace!("msgrcv({}) -> {e}", self.name);
                Err(e)
            }
        }
    }

    /// `msgrcv` without waiting, with `MSG_NOERROR` and type `-10` as [`SysvQ::receive`], into
    /// memory we do not own as a Rust buffer: the supervisor's record, a shared mapping
    /// (record.rs), where the kernel writes the message type and then the text within the call
    /// that takes them off the queue. Returns the length of the text (at most `room`).
    ///
    /// # Safety
    ///
    /// `msgbuf` must be valid for writes of an aligned `long` followed by `room` bytes, for the
    /// duration of the call, and no Rust reference may point into it.
    pub unsafe fn receive_raw(&self, msgbuf: *mut u8, room: usize) -> nix::Result<usize> {
        let flags = libc::MSG_NOERROR | libc::IPC_NOWAIT;
        // SAFETY: the caller vouches for `msgbuf`: a long and `room` bytes; msgrcv writes at
        // most that (MSG_NOERROR cuts a longer message).
        let rc = unsafe { libc::msgrcv(self.id, msgbuf.cast(), room, -10, flags) };
        match Errno::result(rc) {
            Ok(n) => {
                let n = usize::try_from(n).unwrap_or(0);
                trace!(
                    "msgrcv({}, type -10, MSG_NOERROR) -> {n} bytes, into the record",
                    self.name
                );
                Ok(n)
            }
            Err(Errno::ENOMSG) => Err(Errno::EAGAIN),
            Err(e) => {
                trace!("msgrcv({}) -> {e}", self.name);
                Err(e)
            }
        }
    }

    /// Remove the queue now.
    pub fn remove(&self) -> Result<()> {
        match rmid(self.id) {
            Ok(()) | Err(Errno::EINVAL | Errno::EIDRM) => Ok(()),
            Err(e) => Err(Error::sys("msgctl(IPC_RMID)", &self.name, e)),
        }
    }
}

/// The file where a `--sysv` supervisor publishes its queues' ids.
pub fn ids_file(base: &str) -> Result<PathBuf> {
    common::names::runtime_path(&format!("{}.sysv", &base[1..]))
}

/// The ids in an ids file: `msgsize=N tasks=ID results=ID dead=ID done=ID`.
pub fn read_ids(base: &str) -> Result<(usize, [i32; 4])> {
    let path = ids_file(base)?;
    let text = std::fs::read_to_string(&path).ctx("read", path.display())?;
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| Error::msg(format!("{}: no valid {k}=", path.display())))
    };
    let msgsize = usize::try_from(field("msgsize")?).map_err(|_| Error::msg("bad msgsize"))?;
    let mut ids = [0; 4];
    for (slot, k) in ids.iter_mut().zip(["tasks", "results", "dead", "done"]) {
        *slot = i32::try_from(field(k)?).map_err(|_| Error::msg(format!("bad {k}")))?;
    }
    Ok((msgsize, ids))
}

/// A role's wait for System V queues, which `poll` cannot watch: a timeout that starts short
/// after activity and doubles while nothing happens, so an idle role wakes about 20 times a
/// second, and a busy one notices a message within a millisecond.
pub struct Tick {
    next: Duration,
}

impl Tick {
    const MIN: Duration = Duration::from_millis(1);
    const MAX: Duration = Duration::from_millis(50);

    /// A tick at its shortest.
    pub fn new() -> Tick {
        Tick { next: Self::MIN }
    }

    /// Something happened: look again soon.
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }

    /// The next wait, and back off.
    pub fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }

    /// `timeout` shortened to the next tick.
    pub fn cap(&mut self, until: Option<Instant>) -> Duration {
        let tick = self.next();
        until.map_or(tick, |u| {
            u.saturating_duration_since(Instant::now()).min(tick)
        })
    }
}

impl Default for Tick {
    fn default() -> Self {
        Tick::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_maps_to_a_type_that_msgrcv_takes_first() {
        assert_eq!(mtype(9), 1);
        assert_eq!(mtype(0), 10);
        assert!(mtype(9) < mtype(5));
    }

    #[test]
    fn queue_round_trip_in_priority_order() {
        let name = common::names::posix_name(&common::names::unique("sysv-unit"));
        let q = SysvQ::create(&name, 64).unwrap();
        let _guard = Remove::new(&q);
        assert_eq!(q.key() as u32 >> 16, 0x1dc0);
        q.send(b"low", 0, true).unwrap();
        q.send(b"high", 9, true).unwrap();
        q.send(b"low2", 0, true).unwrap();
        let mut buf = Vec::new();
        assert_eq!(q.receive(&mut buf, true), Ok(9));
        assert_eq!(buf, b"high");
        assert_eq!(q.receive(&mut buf, true), Ok(0));
        assert_eq!(buf, b"low");
        assert_eq!(q.receive(&mut buf, true), Ok(0));
        assert_eq!(buf, b"low2");
        assert_eq!(q.receive(&mut buf, true), Err(Errno::EAGAIN));
        assert_eq!(SysvQ::open(&name, q.id(), 64).unwrap().stat().unwrap().0, 0);
    }
}
