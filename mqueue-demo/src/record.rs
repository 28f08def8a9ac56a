//! The supervisor's record of who holds what: every task it has taken off `NAME` and not yet
//! answered, and every worker it knows, kept where its own kill -9 cannot erase them.
//!
//! # Why a record outside the process
//!
//! A task leaves the kernel's queue `NAME` when the supervisor receives it. From then until
//! its result is in a result queue, the supervisor is the only one that knows it: it is in a
//! worker's hands or inbox, waiting for a worker after a failure, or answered with its result
//! waiting for room. Kept in the supervisor's memory, all of that died with it. Kept here, the
//! next supervisor finds every task that has no result yet and gives it out again (with the
//! same attempt number: the task did not fail, its supervisor died). Delivery stays
//! at-least-once; a result sent just before the kill may come a second time, and results are
//! told apart by task id (`submit --wait` prints each once).
//!
//! # Where: shared memory, which outlives the process
//!
//! The record is a POSIX shared memory object named after the queue, `NAME-held`
//! (`/dev/shm/ipc-demo-tasks-held`), mapped `MAP_SHARED`. A store into the mapping is a store
//! into the kernel's page cache, which belongs to no process: however the supervisor dies,
//! what it stored is there for the next one. No `msync` or `fsync`: they push pages to a disk,
//! which matters for a power loss (and `/dev/shm` has no disk), not for a process that dies;
//! after a reboot the queues are gone too.
//!
//! # The instant no bookkeeping can cover, covered
//!
//! `mq_receive` takes the task out of `NAME`. Received into the supervisor's memory and written
//! to the record after, a kill between the two calls would lose it, and no bookkeeping done
//! after `mq_receive` can close that gap (worker.rs says the same of workers). So the task is
//! received *into the record*: the buffer given to `mq_receive` is the slot in the mapping,
//! and the address for the priority is the slot's priority field. The kernel copies both
//! there inside the very call that dequeues the message. Before the call, the slot is marked
//! "receiving" with an impossible priority (System V: `msgrcv` writes the message type, which
//! is never 0, just before the text); found "receiving" after a crash, the slot holds a task
//! exactly if that field was overwritten, and the task's header says its length.
//!
//! # Who serves `NAME`: the record's lock (lock.rs)
//!
//! POSIX queue names are machine-wide, whatever a process's runtime dir, so the proof that a
//! supervisor serves `NAME` must travel with the name too: the supervisor holds a write lock on
//! its record (`fcntl(F_SETLK)`) for as long as it lives. The kernel drops it when the process
//! dies, however it dies. A second supervisor is refused, and `fcntl(F_GETLK)` names the
//! holder's pid, which is how every other role finds the live supervisor ([`holder`]). The
//! pitfall of these locks: closing *any* descriptor of the file drops the process's lock, so
//! the supervisor opens its record once and never again.
//!
//! # Layout (layout.rs)
//!
//! A header, a table of the workers the supervisor knows, and a slot per task it may hold.
//!
//! Another process of the same user could write the record (mode 0600 keeps others out); only
//! the lock holder does, and the next supervisor checks what it reads before believing it.

mod layout;
mod lock;

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::Pid;

use crate::names::Names;
use crate::queue::{Flavor, Queue};
use layout::{
    FREE, Geometry, H_PID, HEADER, HELD, MAGIC, NO_PRIO, RECEIVING, S_LEN, S_MSG, S_MTYPE, S_PRIO,
    S_STATE, S_TAKEN, S_WORKER, SLOT_HEAD, WORKER, to_u32,
};
pub use lock::{Leftover, census_of, holder, watch};
use lock::{check_ours, shm_path};

/// A task found in a record that a killed supervisor left.
#[derive(Debug)]
pub struct Found {
    /// Its slot, still in use: the task is held again, by us.
    pub slot: usize,
    /// The message as it was taken off `NAME` (a retried task carries its attempt).
    pub msg: Vec<u8>,
    /// Its priority.
    pub prio: u32,
    /// When it was first taken off `NAME`.
    pub taken_ns: u64,
}

/// What a killed supervisor's record held.
#[derive(Debug, Default)]
pub struct Recovered {
    /// That supervisor's pid.
    pub pid: i32,
    /// The tasks it held.
    pub tasks: Vec<Found>,
    /// Messages it had just taken off `NAME` that are no task, of a length nobody learnt.
    pub garbage: usize,
    /// Its workers: pid, and the System V inbox id (-1 for POSIX).
    pub workers: Vec<(Pid, i32)>,
}

/// The supervisor's record, locked and mapped; removed on drop.
#[derive(Debug)]
pub struct Record {
    name: String,
    /// The lock is on this descriptor: it is never closed before the end (see the module docs).
    _lock: OwnedFd,
    /// Device and inode: the name is removed only while it still names this file.
    id: (u64, u64),
    map: NonNull<u8>,
    geo: Geometry,
    /// Free slots, lowest first, so that the record's used part stays small.
    free: BTreeSet<usize>,
    /// Per slot, the messages about its task still to be sent.
    letters: Vec<u8>,
    /// Per worker entry, its pid (0: free).
    workers: Vec<i32>,
    /// Remove the record on drop: one we made, or one we took over once we serve (a
    /// start-up that fails leaves a killed supervisor's tasks for the next attempt).
    remove: bool,
}

impl Record {
    /// Create the record of `names`, or take over the one a killed supervisor left (returning
    /// what it held), and lock it. Refused while another supervisor holds it.
    pub fn open(
        names: &Names,
        flavor: Flavor,
        msgsize: usize,
    ) -> Result<(Record, Option<Recovered>)> {
        let name = &names.record;
        let want = Geometry::new(flavor, msgsize);
        loop {
            let mode = Mode::S_IRUSR | Mode::S_IWUSR;
            let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
            let fd = match shm_open(name.as_str(), create, mode) {
                Ok(fd) => {
                    trace!(
                        "shm_open({name}, O_CREAT|O_EXCL|O_RDWR, 0600) -> fd {}",
                        std::os::fd::AsRawFd::as_raw_fd(&fd)
                    );
                    fd
                }
                Err(Errno::EEXIST) => {
                    shm_open(name.as_str(), OFlag::O_RDWR, Mode::empty()).ctx("shm_open", name)?
                }
                Err(e) => return Err(Error::sys("shm_open", name, e)),
            };
            let st = fstat(&fd).ctx("fstat", name)?;
            check_ours(name, &st)?;
            if let Some(pid) = lock::take_lock(&fd, name)? {
                return Err(Error::msg(format!(
                    "a supervisor (pid {pid}) already serves {}; refusing to start a second one",
                    names.tasks
                )));
            }
            // The file may have been removed between our shm_open and our lock, by a supervisor
            // that was leaving: then we locked a file without a name. Start again.
            let now = nix::sys::stat::stat(shm_path(name).as_str());
            if !now.is_ok_and(|now| (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)) {
                continue;
            }
            trace!(
                "fcntl({name}, F_SETLK, F_WRLCK) -> locked: we serve {}",
                names.tasks
            );
            let id = (st.st_dev, st.st_ino);
            if st.st_size == 0 {
                // New (ours, or one whose maker died before it sized it): nothing is held.
                return Ok((Record::fresh(name, fd, id, want)?, None));
            }
            return Record::take_over(names, fd, id, want, &st);
        }
    }

    fn fresh(name: &str, fd: OwnedFd, id: (u64, u64), geo: Geometry) -> Result<Record> {
        let len = libc::off_t::try_from(geo.len()).map_err(|_| Error::msg("record too big"))?;
        // Allocated now: a full /dev/shm is an error at start, not a SIGBUS on a later store.
        nix::fcntl::posix_fallocate(&fd, 0, len).ctx("posix_fallocate", name)?;
        let mut record = Record::map(name, fd, id, geo)?;
        record.remove = true;
        record.write_header();
        Ok(record)
    }

    /// The header, its magic last: a record whose maker was killed before it finished has no
    /// magic, and is made again by the next one (see `take_over`).
    fn write_header(&self) {
        let header = self.geo.header(nix::unistd::getpid());
        self.put(MAGIC.len(), &header[MAGIC.len()..]);
        self.put(0, &header[..MAGIC.len()]);
    }

    fn take_over(
        names: &Names,
        fd: OwnedFd,
        id: (u64, u64),
        want: Geometry,
        st: &libc::stat,
    ) -> Result<(Record, Option<Recovered>)> {
        let name = &names.record;
        let mut header = [0; HEADER];
        nix::sys::uio::pread(&fd, &mut header, 0).ctx("pread", name)?;
        if header[..MAGIC.len()] == [0; MAGIC.len()] {
            // Its maker was killed before it wrote the header, so before it took any task.
            nix::unistd::ftruncate(&fd, 0).ctx("ftruncate", name)?;
            return Ok((Record::fresh(name, fd, id, want)?, None));
        }
        let geo = Geometry::read(&header).ok_or_else(|| {
            Error::msg(format!(
                "{name}: not a record of ours (bad header); remove it (mqueue-demo unlink \
                 --queue {})",
                names.tasks
            ))
        })?;
        if geo.flavor != want.flavor || geo.msgsize != want.msgsize {
            let kind = match geo.flavor {
                Flavor::Posix => "",
                Flavor::Sysv => " --sysv",
            };
            return Err(Error::msg(format!(
                "{name}: the record of a supervisor of {} that was killed, which ran with \
                 --msgsize {}{kind}: start with those, or remove its leftovers \
                 (mqueue-demo unlink --queue {}{kind})",
                names.tasks, geo.msgsize, names.tasks
            )));
        }
        if usize::try_from(st.st_size).ok() != Some(geo.len()) {
            return Err(Error::msg(format!(
                "{name}: {} bytes, not the {} its header says; remove it (mqueue-demo unlink \
                 --queue {})",
                st.st_size,
                geo.len(),
                names.tasks
            )));
        }
        let mut record = Record::map(name, fd, id, geo)?;
        let found = record.recover(i32::from_ne_bytes(
            header[H_PID..H_PID + 4].try_into().unwrap_or_default(),
        ));
        record.write_header();
        Ok((record, Some(found)))
    }

    fn map(name: &str, fd: OwnedFd, id: (u64, u64), geo: Geometry) -> Result<Record> {
        let len = NonZeroUsize::new(geo.len()).ok_or_else(|| Error::msg("empty record"))?;
        // SAFETY: a new shared mapping of a file we hold open, of exactly the file's size
        // (allocated, or checked with fstat), at an address the kernel chooses; nothing else
        // in this process maps it.
        let map = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .ctx("mmap", name)?
        .cast::<u8>();
        trace!(
            "mmap({name}, {} bytes, MAP_SHARED) -> the record",
            geo.len()
        );
        Ok(Record {
            name: name.to_owned(),
            _lock: fd,
            id,
            map,
            geo,
            free: (0..geo.slots).collect(),
            letters: vec![0; geo.slots],
            workers: vec![0; geo.workers],
            remove: false,
        })
    }

    /// Read what a killed supervisor left: the tasks it held stay in their slots, now ours;
    /// its workers are forgotten (the caller removes their inboxes).
    fn recover(&mut self, pid: i32) -> Recovered {
        let geo = self.geo;
        let mut found = Recovered {
            pid,
            ..Recovered::default()
        };
        for i in 0..geo.workers {
            let at = geo.worker(i);
            let head = self.get(at, WORKER);
            let pid = i32::from_ne_bytes(head[..4].try_into().unwrap_or_default());
            let inbox = i32::from_ne_bytes(head[4..].try_into().unwrap_or_default());
            if pid > 0 {
                found.workers.push((Pid::from_raw(pid), inbox));
            }
            self.put(at, &[0; WORKER]);
        }
        for slot in 0..geo.slots {
            let at = geo.slot(slot);
            let head = self.get(at, SLOT_HEAD);
            let u32_at =
                |o: usize| u32::from_ne_bytes(head[o..o + 4].try_into().unwrap_or_default());
            let taken_ns =
                u64::from_ne_bytes(head[S_TAKEN..S_TAKEN + 8].try_into().unwrap_or_default());
            let (len, prio) = match head[S_STATE] {
                HELD => (usize::try_from(u32_at(S_LEN)).ok(), u32_at(S_PRIO)),
                RECEIVING => match self.received(slot) {
                    // Taken off NAME by the very call the supervisor was killed in, or just
                    // after: the task says its length.
                    Some(prio) => {
                        let msg = self.get(at + S_MSG, geo.room());
                        match crate::protocol::declared_len(&msg) {
                            Some(len) => (Some(len), prio),
                            None => {
                                found.garbage += 1;
                                (None, 0)
                            }
                        }
                    }
                    None => (None, 0),
                },
                _ => (None, 0),
            };
            match len.filter(|&n| n <= geo.room()) {
                Some(len) => {
                    self.free.remove(&slot);
                    let msg = self.get(at + S_MSG, len);
                    self.commit_as(slot, len, prio);
                    self.give(slot, None);
                    found.tasks.push(Found {
                        slot,
                        msg,
                        prio,
                        taken_ns,
                    });
                }
                None => self.put(at + S_STATE, &[FREE]),
            }
        }
        found
    }

    /// For a slot marked receiving: the priority of the message the kernel put there, if it
    /// did (see the module docs).
    fn received(&self, slot: usize) -> Option<u32> {
        let at = self.geo.slot(slot);
        if self.geo.flavor == Flavor::Sysv {
            let mtype = self.get(at + S_MTYPE, std::mem::size_of::<libc::c_long>());
            let mtype = libc::c_long::from_ne_bytes(mtype.try_into().unwrap_or_default());
            (mtype != 0).then(|| crate::sysv::priority(mtype))
        } else {
            let prio = u32::from_ne_bytes(self.get(at + S_PRIO, 4).try_into().unwrap_or_default());
            (prio != NO_PRIO).then_some(prio)
        }
    }

    /// We serve: from now on the record is ours to remove when we exit (with the queues).
    pub fn serving(&mut self) {
        self.remove = true;
    }

    /// Reserve a free slot for the next task, `taken_ns` its time, and mark it receiving.
    /// None when every slot is in use (take no new task).
    pub fn reserve(&mut self, taken_ns: u64) -> Option<usize> {
        let slot = self.free.pop_first()?;
        let at = self.geo.slot(slot);
        self.put(at + S_PRIO, &NO_PRIO.to_ne_bytes());
        self.put(at + S_MTYPE, &(0 as libc::c_long).to_ne_bytes());
        self.put(at + S_LEN, &0u32.to_ne_bytes());
        self.put(at + S_WORKER, &0i32.to_ne_bytes());
        self.put(at + S_TAKEN, &taken_ns.to_ne_bytes());
        self.put(at + S_STATE, &[RECEIVING]);
        Some(slot)
    }

    /// Receive the next message of `queue` (without waiting) straight into `slot`, reserved
    /// with [`Record::reserve`]: returns its length and priority. Then [`Record::commit`]
    /// (a message) or [`Record::cancel`] (none).
    pub fn receive(&mut self, slot: usize, queue: &Queue) -> nix::Result<(usize, u32)> {
        let at = self.geo.slot(slot);
        let room = self.geo.room();
        match queue {
            Queue::Posix(mq) => {
                let buf = self.ptr(at + S_MSG, room);
                let prio = self.ptr(at + S_PRIO, 4).cast::<u32>();
                // SAFETY: `buf` is valid for `room` bytes and `prio` for an aligned u32 (both
                // in bounds, checked by `ptr`; slot offsets are multiples of 8), in a mapping
                // that lives as long as `self`, which nothing else in this process touches
                // during the call.
                let n = unsafe { mq.receive_raw(buf, room, prio) }?;
                let prio =
                    u32::from_ne_bytes(self.get(at + S_PRIO, 4).try_into().unwrap_or_default());
                Ok((n, prio))
            }
            Queue::Sysv(q) => {
                let msgbuf = self.ptr(at + S_MTYPE, S_MSG - S_MTYPE + room);
                // SAFETY: `msgbuf` is an aligned `long` (slot offsets are multiples of 8, and
                // S_MTYPE is S_MSG less a long) followed by `room` bytes, in bounds (checked
                // by `ptr`), in a mapping that lives as long as `self`, which nothing else in
                // this process touches during the call.
                let n = unsafe { q.receive_raw(msgbuf, room) }?;
                let prio = self.received(slot).unwrap_or(0);
                Ok((n, prio))
            }
        }
    }

    /// The message in `slot` is a whole one of `len` bytes: held.
    pub fn commit(&mut self, slot: usize, len: usize, prio: u32) {
        self.commit_as(slot, len, prio);
    }

    fn commit_as(&mut self, slot: usize, len: usize, prio: u32) {
        let at = self.geo.slot(slot);
        self.put(at + S_LEN, &to_u32(len).to_ne_bytes());
        self.put(at + S_PRIO, &prio.to_ne_bytes());
        self.put(at + S_STATE, &[HELD]);
    }

    /// Nothing was received into `slot`: free it.
    pub fn cancel(&mut self, slot: usize) {
        self.release(slot);
    }

    /// The message held in `slot`, copied into `out`.
    pub fn message(&self, slot: usize, out: &mut Vec<u8>) {
        let at = self.geo.slot(slot);
        let len = u32::from_ne_bytes(self.get(at + S_LEN, 4).try_into().unwrap_or_default());
        let len = usize::try_from(len).unwrap_or(0).min(self.geo.room());
        out.resize(len, 0);
        let from = self.ptr(at + S_MSG, len);
        // SAFETY: `len` bytes at `from` are inside the mapping (checked by `ptr`) and `out` has
        // room for them; they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(from, out.as_mut_ptr(), len) };
    }

    /// The task in `slot` is now in worker `pid`'s hands (None: in nobody's).
    pub fn give(&mut self, slot: usize, pid: Option<Pid>) {
        let pid = pid.map_or(0, Pid::as_raw);
        self.put(self.geo.slot(slot) + S_WORKER, &pid.to_ne_bytes());
    }

    /// The task in `slot` goes out again as attempt `attempt` (the fourth byte of a task).
    pub fn set_attempt(&mut self, slot: usize, attempt: u8) {
        self.put(self.geo.slot(slot) + S_MSG + 3, &[attempt]);
    }

    /// `n` messages about the task in `slot` are on their way to a queue; the slot is freed
    /// when the last is out ([`Record::letter_out`]).
    pub fn await_letters(&mut self, slot: usize, n: u8) {
        self.letters[slot] = n;
    }

    /// One of them is out (sent, or dropped as undeliverable).
    pub fn letter_out(&mut self, slot: usize) {
        let left = self.letters[slot].saturating_sub(1);
        self.letters[slot] = left;
        if left == 0 {
            self.release(slot);
        }
    }

    fn release(&mut self, slot: usize) {
        self.put(self.geo.slot(slot) + S_STATE, &[FREE]);
        self.free.insert(slot);
    }

    /// True if no slot is free: take no new task.
    pub fn full(&self) -> bool {
        self.free.is_empty()
    }

    /// Remember worker `pid` (its System V inbox id, or -1), so that a next supervisor can
    /// remove its inbox if we both die. A worker beyond the table's room is not remembered.
    pub fn add_worker(&mut self, pid: Pid, sysv_inbox: i32) {
        let i = match self.workers.iter().position(|&p| p == pid.as_raw()) {
            Some(i) => i,
            None => match self.workers.iter().position(|&p| p == 0) {
                Some(i) => i,
                None => return,
            },
        };
        self.workers[i] = pid.as_raw();
        let mut entry = [0; WORKER];
        entry[..4].copy_from_slice(&pid.as_raw().to_ne_bytes());
        entry[4..].copy_from_slice(&sysv_inbox.to_ne_bytes());
        self.put(self.geo.worker(i), &entry);
    }

    /// Forget worker `pid` (it is buried, its inbox removed).
    pub fn forget_worker(&mut self, pid: Pid) {
        if let Some(i) = self.workers.iter().position(|&p| p == pid.as_raw()) {
            self.workers[i] = 0;
            self.put(self.geo.worker(i), &[0; WORKER]);
        }
    }

    /// A pointer to `len` bytes at `off` in the mapping, after checking they are inside it.
    fn ptr(&self, off: usize, len: usize) -> *mut u8 {
        // Offsets come from the geometry; failing this is a bug here, not bad input.
        assert!(
            off.checked_add(len)
                .is_some_and(|end| end <= self.geo.len()),
            "{off}+{len} outside the record's {} bytes",
            self.geo.len()
        );
        // SAFETY: `off` is inside the mapping (checked above), so the result stays within the
        // same allocation.
        unsafe { self.map.as_ptr().add(off) }
    }

    /// Store `bytes` at `off`. Volatile stores, in program order: a store the compiler moved
    /// after a later one (a slot's state before its length) could be what a kill finds.
    fn put(&self, off: usize, bytes: &[u8]) {
        let at = self.ptr(off, bytes.len());
        for (i, &b) in bytes.iter().enumerate() {
            // SAFETY: `at + i` is inside the mapping (`ptr` checked the whole range), which
            // lives as long as `self`; no other process writes it while we hold its lock.
            unsafe { at.add(i).write_volatile(b) };
        }
    }

    /// Copy `len` bytes at `off` out of the mapping.
    fn get(&self, off: usize, len: usize) -> Vec<u8> {
        let at = self.ptr(off, len);
        let mut out = vec![0; len];
        // SAFETY: `len` bytes at `at` are inside the mapping (checked by `ptr`) and `out` has
        // room for them; they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(at, out.as_mut_ptr(), len) };
        out
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `map` with this length, and no pointer into it
        // outlives `self`.
        if let Err(e) = unsafe { munmap(self.map.cast(), self.geo.len()) } {
            eprintln!("warning: munmap {}: {e}", self.name);
        }
        // The name first, while the lock is still ours, and only if it still names our file
        // (and we serve, or made it); then closing the descriptor drops the lock.
        let ours = self.remove
            && nix::sys::stat::stat(shm_path(&self.name).as_str())
                .is_ok_and(|now| (now.st_dev, now.st_ino) == self.id);
        if ours {
            match shm_unlink(self.name.as_str()) {
                Ok(()) | Err(Errno::ENOENT) => trace!("shm_unlink({})", self.name),
                Err(e) => eprintln!("warning: shm_unlink {}: {}", self.name, e.desc()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mq::{Access, Created, Mq};
    use common::cleanup::{Object, Unlink};

    fn task(id: u64) -> Vec<u8> {
        let t = crate::protocol::Task {
            id,
            kind: crate::protocol::Kind::Echo,
            attempt: 1,
            reply: String::new(),
            arg: b"hi".to_vec(),
        };
        crate::protocol::encode_task(&t, 256).unwrap()
    }

    /// A record "left by a killed supervisor" (here: forgotten, its lock and mapping leaked,
    /// as a kill leaves them; a process's own lock does not stop it taking the record again)
    /// gives back exactly the tasks it held: committed ones, one received into a slot at the
    /// instant of the kill (not yet committed), and not one whose slot was only reserved.
    #[test]
    fn a_killed_supervisors_record_gives_back_what_it_held() {
        let base = common::names::posix_name(&common::names::unique("rec-unit"));
        let names = Names::new(&base).unwrap();
        let Ok(Created::New(q)) = Mq::create(&names.tasks, 4, 256, Access::ReadWrite) else {
            panic!("mq_open {}", names.tasks)
        };
        let _q = Unlink::new(Object::Mqueue(names.tasks.clone()));
        let q = Queue::Posix(q);
        let (mut record, found) = Record::open(&names, Flavor::Posix, 256).unwrap();
        assert!(found.is_none(), "a new record");
        for (id, prio) in [(1, 3), (2, 7)] {
            q.send(&task(id), prio).unwrap();
        }
        // Task 2 (priority 7) comes first: committed, given to worker 42.
        let a = record.reserve(100).unwrap();
        assert_eq!(record.receive(a, &q), Ok((task(2).len(), 7)));
        record.commit(a, task(2).len(), 7);
        record.give(a, Some(Pid::from_raw(42)));
        record.add_worker(Pid::from_raw(42), -1);
        // Task 1: received into its slot, and the supervisor "killed" before the commit.
        let b = record.reserve(200).unwrap();
        assert_eq!(record.receive(b, &q), Ok((task(1).len(), 3)));
        // A slot reserved, and nothing received (the queue is empty).
        let c = record.reserve(300).unwrap();
        assert_eq!(record.receive(c, &q), Err(Errno::EAGAIN));
        std::mem::forget(record);

        let (record, found) = Record::open(&names, Flavor::Posix, 256).unwrap();
        let found = found.expect("the record of the killed supervisor");
        assert_eq!(found.pid, nix::unistd::getpid().as_raw());
        assert_eq!(found.workers, [(Pid::from_raw(42), -1)]);
        assert_eq!(found.garbage, 0);
        let mut tasks: Vec<_> = found
            .tasks
            .iter()
            .map(|f| (f.msg.clone(), f.prio, f.taken_ns))
            .collect();
        tasks.sort_by_key(|t| t.2);
        assert_eq!(tasks, [(task(2), 7, 100), (task(1), 3, 200)]);
        // A record taken over is removed on drop only once its supervisor serves.
        let mut record = record;
        record.serving();
        drop(record);
        assert!(std::fs::metadata(shm_path(&names.record)).is_err());
    }
}
