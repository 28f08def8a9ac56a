//! The database in the segment: lock-free readers, writers serialised by a robust mutex, and
//! the futex that `watch` sleeps on. This is the lesson; each pitfall is named where it is
//! avoided.
//!
//! # Readers: a seqlock, within Rust's memory model
//!
//! Readers take no lock, so any number of them read at memory speed and a reader can never
//! block a writer (or be left holding a lock when killed). Each record has a sequence
//! counter that a writer makes odd before it changes the record and even again after. A
//! reader loads the counter (Acquire), copies the record, issues an Acquire fence and loads
//! the counter again: if both loads saw the same even value, no write overlapped the copy
//! and the copy is whole; otherwise it is thrown away and the read retried.
//!
//! The copy is made of Relaxed atomic 64-bit loads (see [`crate::segment::Region`]), not of
//! `memcpy` or volatile reads, because the copy races with the writer by design, and in Rust
//! a racing non-atomic read is undefined behaviour even when its result is discarded. The
//! fences are the ones Boehm's "Can seqlocks get along with programming language memory
//! models?" (2012) gives: the writer stores the odd count, issues a Release fence, then stores
//! the data; the reader loads the data, issues an Acquire fence, then reloads the count. If
//! the reader saw any byte of a write, the fences synchronise and it must also see the odd
//! count (or a later one): a torn copy cannot pass the check.
//!
//! A delete moves records (backward-shift deletion, see [`crate::layout`]), and a reader
//! racing a move could walk past the key it looks for: a miss is therefore trusted only if
//! the table's `moves` count, read with Acquire before the probe and again after an Acquire
//! fence, has not changed; otherwise the probe starts again. The count is a seqlock over the
//! table's arrangement, as a record's sequence count is over its contents, and hits pay for
//! it with one load of a header word that puts never write.
//!
//! A reader gives up on a record that stays odd (its writer died mid-write and no writer has
//! repaired it yet) or keeps changing after [`READ_PATIENCE`], with an error; it never spins
//! forever. Sizes read inside the copy are checked against the limits before they are used
//! as lengths, and a bad value that survives the sequence check is reported as corruption.
//!
//! # Writers: a robust, process-shared pthread mutex
//!
//! nix has no wrapper for pthread mutexes, so these are libc calls. The mutex lives in the
//! segment, is `PTHREAD_PROCESS_SHARED` (it synchronises processes, not just threads) and
//! `PTHREAD_MUTEX_ROBUST`: if its owner dies, the kernel (through the robust futex list)
//! hands it to the next locker with `EOWNERDEAD` instead of leaving everybody blocked
//! forever. That locker must repair what the dead owner left half-done, then call
//! `pthread_mutex_consistent`, or the mutex becomes unusable (`ENOTRECOVERABLE`) at unlock.
//!
//! Repair is possible because a writer saves the record's old image in the header's undo
//! record (and its slot number in `undo slot`) before it makes the record odd. The next
//! locker finds the odd record named by `undo slot`, copies the old image back, and makes
//! the count even: the interrupted put never happened. A record that is already even was
//! committed before the owner died, and stays. The counters are recounted.
//!
//! # Watch: a futex in the segment
//!
//! Each record has a 32-bit `notify` word: its low 31 bits count the changes to keys whose home
//! slot is that record, and its top bit ([`WAITING`]) says that a watcher sleeps on it. A
//! watcher sets the bit, checks the key's value, and sleeps in `FUTEX_WAIT` only if the word
//! still holds what it set: the kernel compares and sleeps atomically, so a change made
//! between the check and the sleep is never missed. A writer that changes a key advances the
//! count and clears the bit in one atomic step, and calls `FUTEX_WAKE` only if the bit was
//! set, so a put with nobody watching costs no system call. Without `FUTEX_PRIVATE_FLAG`: a
//! private futex is keyed by the process's own address space, and a writer in another
//! process would never find the sleeper. The home slot's word works for a key that is not
//! stored yet, too; keys that share a home slot only cost each other a spurious wake-up.

use std::marker::PhantomData;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::{Duration, Instant};

use common::{Error, Result, trace};
use nix::errno::Errno;

use crate::layout::{self, DROPPED, EMPTY, Geometry, LIVE, R_HASH, R_KEY, R_KEY_LEN, R_NOTIFY};
use crate::layout::{R_SEQ, R_STATE, R_VALUE_LEN};
use crate::segment::Region;

/// The notify word's top bit: a watcher is (about to be) asleep on it.
pub const WAITING: u32 = 1 << 31;

/// How long a reader retries a record that stays odd or keeps changing (or, for a miss or a
/// list, a table whose records keep being moved by deletes).
pub const READ_PATIENCE: Duration = Duration::from_secs(2);
/// How long a writer waits for the mutex before it says who might be holding it.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// An attached database.
pub struct Db {
    region: Region,
    geo: Geometry,
    /// The test hook ([`stop_hook`]): stop with SIGSTOP half-way through writing a value, or
    /// a delete between two of the records it moves, holding the mutex, so that a test (or
    /// the demo's step 3) can look at the table or SIGKILL the writer at that instant.
    pub stop_mid_write: bool,
    /// Leave routine locks out of the `-v` timeline (a demo writer after its first round,
    /// which would otherwise narrate every one of its thousands of puts).
    pub quiet: bool,
}

/// What a reader found in a slot.
enum Seen {
    Empty,
    Dropped,
    /// A live record: the wanted key (its value copied), or any key when none was wanted.
    Live,
    /// A live record of another key.
    Other,
    /// Values no writer of ours leaves behind (kept small: this is on the hot path).
    Corrupt {
        state: u32,
        klen: u32,
        vlen: u32,
    },
}

/// Who holds the writers' mutex (see [`Db::holder`]).
#[derive(Debug)]
pub enum Holder {
    /// Nobody (it was released since).
    Nobody,
    /// A thread that no longer exists: it died, and the kernel did not hand the mutex on
    /// (`EOWNERDEAD` to the next locker) as it does for a robust mutex's owner, so nobody
    /// ever will. A thread of another pid namespace, a robust list that was lost, or a
    /// damaged segment leaves this.
    Gone { tid: u32 },
    /// A live thread, with its process's pid, name and state (`/proc/TID/status`).
    Live {
        tid: u32,
        pid: String,
        name: String,
        state: String,
    },
}

impl Holder {
    /// True if the holder can still release the mutex soon: it lives and is not stopped.
    pub fn may_release(&self) -> bool {
        match self {
            Holder::Nobody => true,
            Holder::Gone { .. } => false,
            Holder::Live { state, .. } => !state.starts_with(['T', 't', 'Z', 'X']),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Nobody => write!(f, "a writer that has just released it (try again)"),
            Holder::Gone { tid } => write!(
                f,
                "thread {tid}, which no longer exists: its owner died without the kernel handing \
                 the mutex on, so no writer will get it again (stop the server, whose --save keeps \
                 the committed records, and start a new one)"
            ),
            Holder::Live {
                tid,
                pid,
                name,
                state,
            } => {
                write!(f, "pid {pid} ({name}")?;
                if pid != &tid.to_string() {
                    write!(f, ", thread {tid}")?;
                }
                write!(f, "), {state}")
            }
        }
    }
}

/// A snapshot of the header's counters.
#[derive(Debug)]
pub struct Stats {
    pub slots: u32,
    pub used: u32,
    /// The most records a get reads (see [`Db::longest_probe`]).
    pub longest_probe: u32,
    pub generation: u64,
    pub creator_pid: i32,
    pub creator_alive: bool,
    pub key_max: u32,
    pub value_max: u32,
    pub total_size: usize,
}

impl Db {
    /// Lay out a fresh, zero-filled segment: header fields, the robust mutex, and the magic
    /// last, so a process that attaches early sees "not initialised" rather than half a header.
    pub fn init(region: Region, geo: Geometry) -> Result<Db> {
        let r = &region;
        let set32 = |off, v: u32| r.u32(off).store(v, Ordering::Relaxed);
        let set64 = |off, v: u64| r.u64(off).store(v, Ordering::Relaxed);
        set32(layout::H_VERSION, layout::VERSION);
        set32(layout::H_HEADER_SIZE, geo.header_size as u32);
        set64(layout::H_TOTAL, geo.total_size as u64);
        set32(layout::H_SLOTS, geo.slots);
        set32(layout::H_KEY_MAX, geo.key_max);
        set32(layout::H_VALUE_MAX, geo.value_max);
        set32(layout::H_RECORD_SIZE, geo.record_size as u32);
        set32(
            layout::H_MUTEX_SIZE,
            std::mem::size_of::<libc::pthread_mutex_t>() as u32,
        );
        init_mutex(r.mutex()).map_err(|e| Error::sys("pthread_mutex_init", &r.label, e))?;
        trace!(
            "pthread_mutex_init(PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST) in {}",
            r.label
        );
        let db = Db {
            region,
            geo,
            stop_mid_write: false,
            quiet: false,
        };
        db.claim();
        db.region
            .u64(layout::H_MAGIC)
            .store(u64::from_ne_bytes(layout::MAGIC), Ordering::Release);
        Ok(db)
    }

    /// Map the existing database `target` and check its header: what every client does
    /// first.
    pub fn open(target: &crate::segment::Target) -> Result<Db> {
        Db::attach(crate::segment::open(target)?)
    }

    /// Attach to an existing segment after checking its header against its real size.
    pub fn attach(region: Region) -> Result<Db> {
        let geo = layout::validate(&region.raw_header(), region.size(), &region.label)?;
        Ok(Db {
            region,
            geo,
            stop_mid_write: false,
            quiet: false,
        })
    }

    /// The segment's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// Write our pid and start time as the creator (a server that creates or adopts it).
    pub fn claim(&self) {
        let pid = std::process::id();
        self.region
            .u32(layout::H_CREATOR_PID)
            .store(pid, Ordering::Relaxed);
        self.region
            .u64(layout::H_CREATOR_START)
            .store(start_time(pid as i32).unwrap_or(0), Ordering::Release);
    }

    /// The creator's pid, and whether that process is still alive: the pid exists, has the
    /// recorded start time (a recycled pid is not mistaken for the creator) and has this
    /// segment mapped (a pid and start time read from a damaged or hand-made header do not
    /// make some other live process the creator).
    pub fn creator(&self) -> (i32, bool) {
        let pid = self
            .region
            .u32(layout::H_CREATOR_PID)
            .load(Ordering::Relaxed) as i32;
        let start = self
            .region
            .u64(layout::H_CREATOR_START)
            .load(Ordering::Acquire);
        let alive = pid > 0 && start_time(pid) == Some(start) && self.region.mapped_by(pid);
        (pid, alive)
    }

    /// Check the key's length; the error names the limit.
    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() || key.len() > self.geo.key_max as usize {
            return Err(Error::msg(format!(
                "key is {} bytes; keys are 1..={} bytes in {}",
                key.len(),
                self.geo.key_max,
                self.region.label
            )));
        }
        Ok(())
    }

    /// Look `key` up without taking any lock; its value is copied into `out`. Ok(false) if
    /// the key is not stored.
    pub fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Result<bool> {
        self.probe(key, out, |_| {})
    }

    /// [`Db::get`], calling `between(slot)` after each slot it has read: the tests' way to
    /// make a delete move records at an exact point of a probe. (`get` passes a closure that
    /// does nothing, which the compiler removes.)
    fn probe(&self, key: &[u8], out: &mut Vec<u8>, mut between: impl FnMut(u32)) -> Result<bool> {
        self.check_key(key)?;
        let hash = layout::key_hash(key);
        let n = self.geo.slots;
        let home = self.geo.home(hash);
        let moves = self.region.u64(layout::H_MOVES);
        let mut scratch = Vec::new();
        let mut patience = Patience::default();
        loop {
            let before = moves.load(Ordering::Acquire);
            let mut slot = home;
            for _ in 0..n {
                let seen = self.read_slot(slot, Some((key, hash)), false, &mut scratch, out)?;
                between(slot);
                match seen {
                    Seen::Live => return Ok(true),
                    Seen::Empty => break,
                    Seen::Dropped | Seen::Other => {}
                    Seen::Corrupt { .. } => {
                        unreachable!("read_slot returns corruption as an error")
                    }
                }
                slot = if slot + 1 == n { 0 } else { slot + 1 };
            }
            // A miss: certain only if no record was moved while we probed (module docs).
            fence(Ordering::Acquire);
            if moves.load(Ordering::Relaxed) == before {
                return Ok(false);
            }
            patience.wait(self, Stuck::Moves)?;
        }
    }

    /// Every stored key and value, each read consistently (not one point in time for all).
    pub fn list(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan(false, |_| {})
    }

    /// Every key and value as last committed, without waiting for any writer: a record
    /// that is being written (odd) counts with its image in the undo record, which is what
    /// it held before that write began, and what a repair would restore. What `server --save`
    /// saves when it cannot have the writers' mutex (a writer stopped holding it, or one
    /// whose thread is gone).
    pub fn committed(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.scan(true, |_| {})
    }

    /// [`Db::list`] or [`Db::committed`], with `between(slot)` as in [`Db::probe`].
    fn scan(
        &self,
        committed: bool,
        mut between: impl FnMut(u32),
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let moves = self.region.u64(layout::H_MOVES);
        let mut patience = Patience::default();
        let mut all = Vec::new();
        loop {
            let before = moves.load(Ordering::Acquire);
            all.clear();
            for slot in 0..self.geo.slots {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                let seen = self.read_slot(slot, None, committed, &mut k, &mut v)?;
                between(slot);
                if let Seen::Live = seen {
                    all.push((k, v));
                }
            }
            // As for a miss: a record moved from ahead of the scan to behind it was missed.
            fence(Ordering::Acquire);
            if moves.load(Ordering::Relaxed) == before {
                break;
            }
            patience.wait(self, Stuck::Moves)?;
        }
        // A delete paused between two moves shows the moved key twice, with one value.
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        Ok(all)
    }

    /// One seqlock read of a slot (see the module docs). With `want`, only a record of that
    /// key (and hash) counts as `Live` and only its value is copied; without, any live
    /// record's key and value are copied. With `committed`, a record being written is read
    /// from the undo record instead of waited for, when the undo slot names it.
    fn read_slot(
        &self,
        slot: u32,
        want: Option<(&[u8], u64)>,
        committed: bool,
        key_out: &mut Vec<u8>,
        value_out: &mut Vec<u8>,
    ) -> Result<Seen> {
        let r = &self.region;
        let rec = self.geo.record(slot);
        let seq = r.fields(rec).u64::<R_SEQ>();
        let undo = r.u32(layout::H_UNDO_SLOT);
        let mut patience = Patience::default();
        loop {
            let s1 = seq.load(Ordering::Acquire);
            // Where the contents are read from: the record, or (committed, odd) its image in
            // the undo record. The odd count was stored with Release after that image and its
            // slot (see `rewrite`), so what this sees of them is that write's; the check after
            // the copy below (same odd count, same undo slot) rejects an image that the next
            // write began to overwrite.
            let image = if s1 & 1 == 0 {
                rec
            } else if committed && undo.load(Ordering::Relaxed) == slot + 1 {
                layout::H_UNDO
            } else {
                patience.wait(self, Stuck::Record(slot))?;
                continue;
            };
            key_out.clear();
            value_out.clear();
            let fields = r.fields(image);
            let seen = match fields.u32::<R_STATE>().load(Ordering::Relaxed) {
                EMPTY => Seen::Empty,
                DROPPED => Seen::Dropped,
                LIVE => {
                    let hash = fields.u64::<R_HASH>().load(Ordering::Relaxed);
                    let klen = fields.u32::<R_KEY_LEN>().load(Ordering::Relaxed);
                    let vlen = fields.u32::<R_VALUE_LEN>().load(Ordering::Relaxed);
                    // Lengths are input: checked before they bound a copy.
                    if klen == 0 || klen > self.geo.key_max || vlen > self.geo.value_max {
                        Seen::Corrupt {
                            state: LIVE,
                            klen,
                            vlen,
                        }
                    } else {
                        let value_off = image + self.geo.value_off();
                        match want {
                            Some((key, h)) => {
                                if h == hash
                                    && klen as usize == key.len()
                                    && r.bytes_equal(image + R_KEY, key)
                                {
                                    r.load_bytes(value_off, vlen as usize, value_out);
                                    Seen::Live
                                } else {
                                    Seen::Other
                                }
                            }
                            None => {
                                r.load_bytes(image + R_KEY, klen as usize, key_out);
                                r.load_bytes(value_off, vlen as usize, value_out);
                                Seen::Live
                            }
                        }
                    }
                }
                state => Seen::Corrupt {
                    state,
                    klen: 0,
                    vlen: 0,
                },
            };
            // Everything above happens before the second load of the count.
            fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) == s1
                && (image == rec || undo.load(Ordering::Relaxed) == slot + 1)
            {
                if let Seen::Corrupt { state, klen, vlen } = seen {
                    let why = if state == LIVE {
                        format!("key length {klen}, value length {vlen}")
                    } else {
                        format!("state {state}")
                    };
                    return Err(Error::msg(format!(
                        "{}: record {slot} is corrupt ({why})",
                        self.region.label
                    )));
                }
                return Ok(seen);
            }
            patience.wait(self, Stuck::Record(slot))?;
        }
    }

    /// Take the writers' mutex, repairing what a dead owner left behind.
    pub fn lock(&self) -> Result<Writer<'_>> {
        match self.lock_within(LOCK_PATIENCE)? {
            Some(writer) => Ok(writer),
            None => Err(Error::msg(format!(
                "{}: the writers' mutex has been held for {} s by {}",
                self.region.label,
                LOCK_PATIENCE.as_secs(),
                self.holder()
            ))),
        }
    }

    /// Take the writers' mutex unless that means waiting for a writer that cannot release
    /// it: one that is stopped (SIGSTOP, Ctrl-Z) or whose thread no longer exists. A writer
    /// that runs is waited for, up to [`LOCK_PATIENCE`]. None: not taken.
    pub fn try_lock(&self) -> Result<Option<Writer<'_>>> {
        let m = self.region.mutex();
        // SAFETY: as in `lock_within`.
        let rc = unsafe { libc::pthread_mutex_trylock(m) };
        if rc != libc::EBUSY {
            return self.locked(rc);
        }
        if !self.holder().may_release() {
            return Ok(None);
        }
        self.lock_within(LOCK_PATIENCE)
    }

    /// `pthread_mutex_timedlock` for up to `patience`; None if it timed out.
    fn lock_within(&self, patience: Duration) -> Result<Option<Writer<'_>>> {
        let m = self.region.mutex();
        let deadline = realtime_after(patience);
        // SAFETY: `m` points at the mutex initialised by `init` in the shared mapping, which
        // outlives the Writer that unlocks it; pthread_mutex_timedlock is thread-safe.
        let rc = unsafe { libc::pthread_mutex_timedlock(m, &deadline) };
        self.locked(rc)
    }

    /// What a locking call returned: the writer (after repairing what a dead owner left
    /// behind, on EOWNERDEAD), None if the mutex was not had (busy, timed out), or the error.
    fn locked(&self, rc: libc::c_int) -> Result<Option<Writer<'_>>> {
        let m = self.region.mutex();
        let label = &self.region.label;
        // Made only once the mutex is ours: its drop unlocks it.
        let writer = || Writer {
            db: self,
            _same_thread: PhantomData,
        };
        match rc {
            0 => {
                if !self.quiet {
                    trace!("pthread_mutex_lock({label}) -> ok");
                }
                Ok(Some(writer()))
            }
            libc::EOWNERDEAD => {
                // We own the mutex now; the guard unlocks it even if the repair fails below.
                let mut writer = writer();
                let report = writer.repair();
                // SAFETY: we own the mutex (EOWNERDEAD hands it over locked).
                pthread_result(unsafe { libc::pthread_mutex_consistent(m) })
                    .map_err(|e| Error::sys("pthread_mutex_consistent", label, e))?;
                eprintln!(
                    "shm-demo: recovered the writers' mutex of {label}: its owner died holding it; {report}"
                );
                trace!(
                    "pthread_mutex_lock({label}) -> EOWNERDEAD; repaired; pthread_mutex_consistent"
                );
                Ok(Some(writer))
            }
            libc::ETIMEDOUT | libc::EBUSY => Ok(None),
            libc::ENOTRECOVERABLE => Err(Error::msg(format!(
                "{label}: the writers' mutex is not recoverable (a repair was abandoned); start the server with --fresh"
            ))),
            e => Err(Error::sys("pthread_mutex_lock", label, Errno::from_raw(e))),
        }
    }

    /// Who holds the writers' mutex, as far as `/proc` tells.
    ///
    /// A robust mutex's lock word (glibc's `__lock`, the first 4 bytes of the
    /// `pthread_mutex_t`) is the futex word of the kernel's robust-futex protocol: the owner's
    /// thread id in its low 30 bits (`FUTEX_TID_MASK`). A thread id from the segment is data
    /// like any other: it names a thread of this machine's pid namespace, or none.
    pub fn holder(&self) -> Holder {
        const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
        let tid = self.region.u32(layout::H_MUTEX).load(Ordering::Relaxed) & FUTEX_TID_MASK;
        if tid == 0 {
            return Holder::Nobody;
        }
        // /proc/TID/status answers for any thread id, not only for a process's first thread.
        let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
            return Holder::Gone { tid };
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map_or("?", str::trim)
                .to_owned()
        };
        Holder::Live {
            tid,
            pid: field("Tgid:"),
            name: field("Name:"),
            state: field("State:"),
        }
    }

    /// The header's counters.
    pub fn stats(&self) -> Stats {
        let r = &self.region;
        let (creator_pid, creator_alive) = self.creator();
        Stats {
            slots: self.geo.slots,
            used: r.u32(layout::H_USED).load(Ordering::Relaxed),
            longest_probe: self.longest_probe(),
            generation: r.u64(layout::H_GENERATION).load(Ordering::Acquire),
            creator_pid,
            creator_alive,
            key_max: self.geo.key_max,
            value_max: self.geo.value_max,
            total_size: self.geo.total_size,
        }
    }

    /// The most records a get reads: one more than the longest run of occupied slots (a miss
    /// that starts at the head of that run reads all of it and the empty slot that ends
    /// it), or every slot if none is empty. What deletes used to leave behind shows here: a
    /// table whose every key was deleted has a longest probe of 1. Counted from the records'
    /// states without the seqlock (a figure for people, not a decision).
    pub fn longest_probe(&self) -> u32 {
        let n = self.geo.slots;
        let occupied = |slot| {
            let rec = self.geo.record(slot);
            self.region.u32(rec + R_STATE).load(Ordering::Relaxed) != EMPTY
        };
        // Counted from an empty slot, so that a run that wraps past the end is one run.
        let Some(empty) = (0..n).find(|&slot| !occupied(slot)) else {
            return n;
        };
        let (mut run, mut longest) = (0, 0);
        for i in 1..n {
            if occupied((empty + i) % n) {
                run += 1;
                longest = longest.max(run);
            } else {
                run = 0;
            }
        }
        longest + 1
    }

    /// Mark the database removed (its name is gone: the server stops, or `destroy` removes a
    /// leftover) and wake every watcher, which then sees the mark and exits; writers that
    /// still have it mapped refuse from now on, since nobody will ever read what they write.
    ///
    /// The mark is stored before the notify words are looked at, and a watcher sets its
    /// waiting bit before it looks at the mark, all SeqCst: either the watcher sees the mark,
    /// or this sees its bit and wakes it (the same pairing as a put's, module docs).
    pub fn mark_removed(&self) {
        let r = &self.region;
        r.u32(layout::H_REMOVED).store(1, Ordering::SeqCst);
        for slot in 0..self.geo.slots {
            let word = r.u32(self.geo.record(slot) + R_NOTIFY);
            // Loaded first: no write to the words nobody waits on (all of a large table).
            if word.load(Ordering::SeqCst) & WAITING != 0 {
                wake(word, slot);
            }
        }
    }

    /// True once the database has been removed (see [`Db::mark_removed`]).
    pub fn removed(&self) -> bool {
        self.region.u32(layout::H_REMOVED).load(Ordering::SeqCst) != 0
    }

    /// The error of a client that finds its database removed.
    pub fn removed_error(&self) -> Error {
        Error::msg(format!(
            "{}: the database was removed (its server stopped, or shm-demo destroy)",
            self.region.label
        ))
    }

    /// The futex word that changes whenever `key` may have changed (its home slot's notify).
    pub fn notify_word(&self, key: &[u8]) -> Result<&AtomicU32> {
        self.check_key(key)?;
        let home = self.geo.home(layout::key_hash(key));
        Ok(self.region.u32(self.geo.record(home) + R_NOTIFY))
    }
}

/// The writers' side, holding the mutex; unlocks when dropped.
///
/// Not `Send`, like std's `MutexGuard`: a pthread mutex is unlocked by the thread that locked
/// it (from another thread, `pthread_mutex_unlock` of this robust mutex fails with EPERM and
/// leaves it locked for good). So this does not compile:
///
/// ```compile_fail
/// fn send<T: Send>() {}
/// send::<shm_demo::db::Writer<'static>>();
/// ```
pub struct Writer<'a> {
    db: &'a Db,
    _same_thread: PhantomData<MutexGuard<'static, ()>>,
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        // SAFETY: we locked this mutex in `Db::lock` and still hold it.
        unsafe { libc::pthread_mutex_unlock(self.db.region.mutex()) };
    }
}

impl Writer<'_> {
    /// Store `value` under `key`, replacing any old value.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let db = self.db;
        db.check_key(key)?;
        if db.removed() {
            return Err(db.removed_error());
        }
        if value.len() > db.geo.value_max as usize {
            return Err(Error::msg(format!(
                "value is {} bytes; the limit in {} is {} (server --value-max)",
                value.len(),
                db.region.label,
                db.geo.value_max
            )));
        }
        let hash = layout::key_hash(key);
        let slot = match self.find(key, hash)? {
            Found::Key(slot) | Found::Free(slot) => slot,
            Found::Full => {
                return Err(Error::msg(format!(
                    "{}: table full: all {} slots hold keys (start the server with more --slots)",
                    db.region.label, db.geo.slots
                )));
            }
        };
        self.write(slot, LIVE, hash, key, value);
        self.committed(hash);
        Ok(())
    }

    /// Delete `key`. Ok(false) if it was not stored.
    ///
    /// Backward-shift deletion (see [`crate::layout`]): the key's slot becomes the hole,
    /// records after it whose probe passes over the hole move back into it, and the last
    /// hole is emptied. No tombstone is left, so deletes never lengthen later probes.
    pub fn del(&mut self, key: &[u8]) -> Result<bool> {
        let db = self.db;
        db.check_key(key)?;
        if db.removed() {
            return Err(db.removed_error());
        }
        let hash = layout::key_hash(key);
        let Found::Key(slot) = self.find(key, hash)? else {
            return Ok(false);
        };
        // Recorded before anything moves: a writer killed from here on leaves the hole for
        // the next one to fill, and the watchers to wake (see `repair`).
        let home = db.geo.home(hash);
        db.region
            .u32(layout::H_HOLE_HOME)
            .store(home, Ordering::Relaxed);
        self.set_hole(Some(slot));
        self.fill_hole(slot);
        self.committed(hash);
        Ok(true)
    }

    /// The backward shift, from `hole` (a slot whose record is to go) to the end of its run:
    /// each record whose probe path passes over the hole is copied into it, and its old slot
    /// becomes the hole; the first empty slot ends the walk (or the hole itself, met again in
    /// a table with no empty slot), and the last hole is emptied.
    ///
    /// Each step is a complete seqlock write of one record, inside a step of the `moves`
    /// count, and the `hole` field is advanced only after the copy: a writer killed at any
    /// point leaves every key reachable (a copy is made before its source is overwritten),
    /// and `hole` pointing at a slot whose record is either the one to delete or a second
    /// copy, which is exactly where the walk resumes.
    fn fill_hole(&mut self, mut hole: u32) {
        let db = self.db;
        let (r, geo) = (&db.region, &db.geo);
        let n = geo.slots;
        // Steps from `a` forward to `b`, around the end of the table.
        let dist = |a: u32, b: u32| (b + n - a) % n;
        let mut j = hole;
        loop {
            j = if j + 1 == n { 0 } else { j + 1 };
            if j == hole || self.state(j) == EMPTY {
                break;
            }
            if self.state(j) != LIVE {
                // Dropped by a repair (or damaged): it stays where it is; probes pass over
                // it, so it does not end the run.
                continue;
            }
            let home = geo.home(r.u64(geo.record(j) + R_HASH).load(Ordering::Relaxed));
            if dist(home, j) >= dist(hole, j) {
                // The hole lies on this record's probe path, at or after its home.
                self.moving(|w| w.rewrite(hole, |to| copy_record(r, geo, geo.record(j), to)));
                hole = j;
                self.set_hole(Some(hole));
                if db.stop_mid_write {
                    // The test hook: one record moved (and still in its old slot too).
                    stop_for_test();
                }
            }
        }
        self.moving(|w| w.write(hole, EMPTY, 0, b"", b""));
        self.set_hole(None);
    }

    /// Run one step of a delete inside a step of the table's `moves` count: odd (then a
    /// Release fence, as for a record's sequence count) before, even (Release) after.
    ///
    /// Unlike a record's reader, a probe does not wait for an even count: one that begins
    /// during a step (a writer stopped there, say) is as good as any if the count has not
    /// changed when it ends. So the odd store is a Release too: a probe that reads it sees
    /// every earlier step complete.
    fn moving(&mut self, step: impl FnOnce(&mut Self)) {
        let moves = self.db.region.u64(layout::H_MOVES);
        // Rounded up to even and wrapping, as a record's count in `rewrite`.
        let m = moves.load(Ordering::Relaxed).wrapping_add(1) & !1;
        moves.store(m.wrapping_add(1), Ordering::Release);
        fence(Ordering::Release);
        step(self);
        moves.store(m.wrapping_add(2), Ordering::Release);
    }

    /// Record where a delete stands (`None`: no delete in progress).
    fn set_hole(&self, hole: Option<u32>) {
        let v = hole.map_or(0, |slot| slot + 1);
        self.db
            .region
            .u32(layout::H_HOLE)
            .store(v, Ordering::Relaxed);
    }

    fn state(&self, slot: u32) -> u32 {
        let rec = self.db.geo.record(slot);
        self.db.region.u32(rec + R_STATE).load(Ordering::Relaxed)
    }

    /// Probe for `key` from its home slot. Under the mutex records do not change, so plain
    /// (Relaxed) loads see each one whole.
    fn find(&self, key: &[u8], hash: u64) -> Result<Found> {
        let db = self.db;
        let r = &db.region;
        let n = db.geo.slots;
        let home = db.geo.home(hash);
        let mut free = None;
        for i in 0..n {
            let slot = (home + i) % n;
            let rec = db.geo.record(slot);
            match self.state(slot) {
                EMPTY => return Ok(Found::Free(free.unwrap_or(slot))),
                DROPPED => {
                    free.get_or_insert(slot);
                }
                LIVE => {
                    let klen = r.u32(rec + R_KEY_LEN).load(Ordering::Relaxed);
                    let vlen = r.u32(rec + R_VALUE_LEN).load(Ordering::Relaxed);
                    // Checked as a reader checks them. A record that readers refuse must stop
                    // a writer too: passed over, it might be this very key, and a put would
                    // store the key a second time further on.
                    if klen == 0 || klen > db.geo.key_max || vlen > db.geo.value_max {
                        return Err(Error::msg(format!(
                            "{}: record {slot} is corrupt (key length {klen}, value length {vlen})",
                            r.label
                        )));
                    }
                    if r.u64(rec + R_HASH).load(Ordering::Relaxed) == hash
                        && klen as usize == key.len()
                        && r.bytes_equal(rec + R_KEY, key)
                    {
                        return Ok(Found::Key(slot));
                    }
                }
                other => {
                    return Err(Error::msg(format!(
                        "{}: record {slot} is corrupt (state {other})",
                        r.label
                    )));
                }
            }
        }
        Ok(free.map_or(Found::Full, Found::Free))
    }

    /// Rewrite one record under the seqlock with these contents.
    fn write(&mut self, slot: u32, state: u32, hash: u64, key: &[u8], value: &[u8]) {
        let db = self.db;
        let (r, geo) = (&db.region, &db.geo);
        self.rewrite(slot, |rec| {
            r.u32(rec + R_STATE).store(state, Ordering::Relaxed);
            r.u64(rec + R_HASH).store(hash, Ordering::Relaxed);
            r.u32(rec + R_KEY_LEN)
                .store(key.len() as u32, Ordering::Relaxed);
            r.u32(rec + R_VALUE_LEN)
                .store(value.len() as u32, Ordering::Relaxed);
            r.store_bytes(rec + R_KEY, key);
            let value_off = rec + geo.value_off();
            if db.stop_mid_write {
                // The test hook: half the value written, the record odd, the mutex held.
                let half = value.len() / 2 / 8 * 8;
                r.store_bytes(value_off, &value[..half]);
                stop_for_test();
            }
            r.store_bytes(value_off, value);
        });
    }

    /// Rewrite one record under the seqlock, with its old image saved for repair first:
    /// `fill` gets the record's offset and stores its new contents.
    fn rewrite(&mut self, slot: u32, fill: impl FnOnce(usize)) {
        let db = self.db;
        let (r, geo) = (&db.region, &db.geo);
        let rec = geo.record(slot);
        let old_state = self.state(slot);

        // 1. The undo image, then the slot it belongs to. A writer that dies before this
        //    point has not touched the record. The fence first: a committed read (see
        //    `Db::committed`) that copies a byte of this new image, over the previous one,
        //    must then see the previous write's count even, and throw its copy away.
        fence(Ordering::Release);
        copy_record(r, geo, rec, layout::H_UNDO);
        r.u32(layout::H_UNDO_SLOT)
            .store(slot + 1, Ordering::Relaxed);

        // 2. Odd: readers retry from here on. The Release fence keeps the data stores below
        //    from becoming visible before the odd count (the writer's half of Boehm's recipe).
        //    The odd store itself is a Release too, for the committed read, which copies the
        //    undo image when it sees this count: it must see the image and its slot whole.
        let seq = r.u64(rec + R_SEQ);
        // Rounded up to even: a count left odd by a damaged segment must not turn even
        // half-way through this write. Wrapping: the count comes from the segment, and one
        // at the top of its range must roll over to 0, not overflow (a panic).
        let s = seq.load(Ordering::Relaxed).wrapping_add(1) & !1;
        seq.store(s.wrapping_add(1), Ordering::Release);
        fence(Ordering::Release);

        // 3. The record itself.
        fill(rec);

        // 4. Even again, with Release: a reader that sees this count sees the whole record.
        seq.store(s.wrapping_add(2), Ordering::Release);
        r.u32(layout::H_UNDO_SLOT).store(0, Ordering::Relaxed);

        let new_state = self.state(slot);
        if old_state == LIVE && new_state != LIVE {
            r.u32(layout::H_USED).fetch_sub(1, Ordering::Relaxed);
        } else if new_state == LIVE && old_state != LIVE {
            r.u32(layout::H_USED).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A put or del of the key with this hash is complete: count it, and wake the watchers of
    /// its home slot.
    fn committed(&self, hash: u64) {
        let (r, geo) = (&self.db.region, &self.db.geo);
        r.u64(layout::H_GENERATION).fetch_add(1, Ordering::Release);
        wake(r.u32(geo.record(geo.home(hash)) + R_NOTIFY), geo.home(hash));
    }

    /// After EOWNERDEAD, with the mutex held: undo the half-written record, finish an
    /// interrupted delete, recount.
    fn repair(&mut self) -> String {
        let db = self.db;
        let (r, geo) = (&db.region, &db.geo);
        let mut done = Vec::new();
        let undo = r.u32(layout::H_UNDO_SLOT).load(Ordering::Relaxed);
        for slot in 0..geo.slots {
            let rec = geo.record(slot);
            let seq = r.u64(rec + R_SEQ);
            let s = seq.load(Ordering::Relaxed);
            if s & 1 == 1 {
                if undo == slot + 1 {
                    // Back to the image saved before the record was made odd.
                    copy_record(r, geo, layout::H_UNDO, rec);
                    done.push(format!(
                        "record {slot} restored to its last committed value"
                    ));
                } else {
                    // No image to restore (cannot happen with this program's writers): drop
                    // the record rather than serve a half-written one. Probes pass over it,
                    // as they would over the record it was.
                    r.u32(rec + R_STATE).store(DROPPED, Ordering::Relaxed);
                    done.push(format!(
                        "record {slot} was half-written with no undo image: dropped"
                    ));
                }
                // Wrapping, as in `rewrite`: the odd count may be u64::MAX.
                seq.store(s.wrapping_add(1), Ordering::Release);
            }
        }
        r.u32(layout::H_UNDO_SLOT).store(0, Ordering::Relaxed);
        // A move cut short was undone above: the table is as it was between two moves.
        let moves = r.u64(layout::H_MOVES);
        let m = moves.load(Ordering::Relaxed);
        if m & 1 == 1 {
            moves.store(m.wrapping_add(1), Ordering::Release);
        }
        // The header was validated at attach: hole <= slots.
        let hole = r.u32(layout::H_HOLE).load(Ordering::Relaxed);
        if hole != 0 {
            self.fill_hole(hole - 1);
            done.push(format!(
                "the delete that was filling slot {} finished",
                hole - 1
            ));
            // Its watchers were never woken. (A home slot out of range, from a damaged
            // header, wakes nobody.)
            let home = r.u32(layout::H_HOLE_HOME).load(Ordering::Relaxed);
            if home < geo.slots {
                wake(r.u32(geo.record(home) + R_NOTIFY), home);
            }
        }
        let used = (0..geo.slots)
            .filter(|&slot| self.state(slot) == LIVE)
            .count() as u32;
        r.u32(layout::H_USED).store(used, Ordering::Relaxed);
        r.u64(layout::H_GENERATION).fetch_add(1, Ordering::Release);
        if done.is_empty() {
            done.push("no record was half-written".into());
        }
        format!("{}; records in use: {used}", done.join(", "))
    }
}

/// The environment variable of the test hook: `put` and `del` run with it set to `1` stop
/// (SIGSTOP) inside their critical section, holding the writers' mutex (see
/// [`Db::stop_mid_write`]). Only the tests and the demo's killed writer set it; it is no
/// option, so it is in no help, man page or completion.
pub const STOP_HOOK: &str = "IPC_DEMO_TEST_STOP_IN_CRITICAL_SECTION";

/// True if the test hook is asked for ([`STOP_HOOK`] is `1`): the one place it is read.
pub fn stop_hook() -> bool {
    std::env::var_os(STOP_HOOK).is_some_and(|v| v == "1")
}

/// The test hook's stop (see [`Db::stop_mid_write`]), announced on stderr first.
fn stop_for_test() {
    eprintln!("shm-demo: stopping inside the critical section (test hook)");
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}

enum Found {
    Key(u32),
    Free(u32),
    Full,
}

/// Copy a record's state, hash, lengths, key and value from the record at `from` to the one
/// at `to` (both records or the undo record), leaving `to`'s sequence and notify words alone.
fn copy_record(r: &Region, geo: &Geometry, from: usize, to: usize) {
    for off in [R_STATE, R_KEY_LEN, R_VALUE_LEN] {
        let v = r.u32(from + off).load(Ordering::Relaxed);
        r.u32(to + off).store(v, Ordering::Relaxed);
    }
    let hash = r.u64(from + R_HASH).load(Ordering::Relaxed);
    r.u64(to + R_HASH).store(hash, Ordering::Relaxed);
    // Lengths are clamped to the areas: even a corrupt length copies only what fits.
    let klen = (r.u32(from + R_KEY_LEN).load(Ordering::Relaxed) as usize).min(geo.key_max as usize);
    let vlen =
        (r.u32(from + R_VALUE_LEN).load(Ordering::Relaxed) as usize).min(geo.value_max as usize);
    r.copy_words(from + R_KEY, to + R_KEY, klen);
    r.copy_words(from + geo.value_off(), to + geo.value_off(), vlen);
}

/// Bounded retrying for a reader: spin briefly, then yield, then give up at the deadline.
#[derive(Default)]
struct Patience {
    tries: u32,
    since: Option<Instant>,
}

/// What a reader is waiting for.
#[derive(Clone, Copy)]
enum Stuck {
    /// A record that is odd or keeps changing.
    Record(u32),
    /// A table whose records keep being moved by deletes.
    Moves,
}

impl Patience {
    fn wait(&mut self, db: &Db, stuck: Stuck) -> Result<()> {
        self.tries += 1;
        if self.tries < 64 {
            std::hint::spin_loop();
            return Ok(());
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > READ_PATIENCE {
            let label = &db.region.label;
            let secs = READ_PATIENCE.as_secs();
            return Err(Error::msg(match stuck {
                Stuck::Record(slot) => format!(
                    "{label}: record {slot} is still being written after {secs} s (its writer may have died mid-write; the next put repairs it)"
                ),
                Stuck::Moves => format!(
                    "{label}: deletes kept moving records for {secs} s; no consistent look at the table (try again)"
                ),
            }));
        }
        std::thread::yield_now();
        Ok(())
    }
}

/// Initialise a robust, process-shared mutex at `m` (zero-filled shared memory).
fn init_mutex(m: *mut libc::pthread_mutex_t) -> std::result::Result<(), Errno> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: attr is initialised by pthread_mutexattr_init before any other use, and
    // destroyed after pthread_mutex_init has copied what it needs; `m` points at MUTEX_ROOM
    // writable bytes of the mapping that nobody uses yet (the magic is not set).
    unsafe {
        pthread_result(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let a = attr.as_mut_ptr();
        let done = pthread_result(libc::pthread_mutexattr_setpshared(
            a,
            libc::PTHREAD_PROCESS_SHARED,
        ))
        .and_then(|()| {
            pthread_result(libc::pthread_mutexattr_setrobust(
                a,
                libc::PTHREAD_MUTEX_ROBUST,
            ))
        })
        .and_then(|()| pthread_result(libc::pthread_mutex_init(m, a)));
        libc::pthread_mutexattr_destroy(a);
        done
    }
}

/// What a pthread function returned, as a Result: 0, or the error number itself. pthread
/// functions return their error rather than set `errno` and return -1, so nix's
/// `Errno::result` does not apply (it would take a positive error for success, and read a
/// stale `errno` for EPERM, which is 1).
fn pthread_result(rc: libc::c_int) -> std::result::Result<(), Errno> {
    match rc {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}

/// CLOCK_REALTIME `after` from now, the absolute deadline pthread_mutex_timedlock takes.
fn realtime_after(after: Duration) -> libc::timespec {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    let t = Duration::from(now) + after;
    libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    }
}

/// Set the waiting bit of a notify word (see the module docs) and return the word as it is
/// now: the value to pass to [`futex_wait`] after checking the key.
pub fn arm(word: &AtomicU32) -> u32 {
    let old = match word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v | WAITING)) {
        Ok(v) | Err(v) => v,
    };
    old | WAITING
}

/// `FUTEX_WAIT` on a shared word while it holds `expected` (no FUTEX_PRIVATE_FLAG: the
/// waker is another process). Returns when woken, when the word differs (EAGAIN), or on a
/// signal (EINTR).
pub fn futex_wait(word: &AtomicU32, expected: u32) -> std::result::Result<(), Errno> {
    // SAFETY: the futex syscall reads the aligned u32 at word's address, which stays mapped
    // for the duration of the call; a null timeout means no timeout.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// A change that concerns the watchers of a notify word (that of `slot`): advance its count
/// and clear the waiting bit in one step, and `FUTEX_WAKE` only if the bit was set (see the
/// module docs), so that a change nobody watches costs no system call.
fn wake(word: &AtomicU32, slot: u32) {
    let bump = |v: u32| Some(v.wrapping_add(1) & !WAITING);
    let old = match word.fetch_update(Ordering::SeqCst, Ordering::SeqCst, bump) {
        Ok(v) | Err(v) => v,
    };
    if old & WAITING != 0 {
        futex_wake(word);
        trace!("futex(FUTEX_WAKE) on slot {slot}'s notify word");
    }
}

/// `FUTEX_WAKE` every waiter on a shared word.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: as for futex_wait; FUTEX_WAKE only uses the address as a key.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

/// A process's start time in clock ticks after boot (field 22 of `/proc/PID/stat`), which
/// tells a process from a later one that was given the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything, so fields are
    // counted from the last ')': the state is field 3, the start time field 22.
    let (_, rest) = text.rsplit_once(") ")?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use common::cleanup::{Object, Unlink};

    use super::*;
    use crate::segment::{self, Target};

    /// A new database of `slots` slots in a POSIX object of its own, removed when the guard
    /// drops.
    fn fresh(slots: u32) -> (Db, Unlink) {
        let name = common::names::posix_name(&common::names::unique("t"));
        let geo = Geometry::new(slots, layout::KEY_MAX, 64).unwrap();
        let region = segment::create(&Target::new(&name, false).unwrap(), geo.total_size)
            .unwrap()
            .expect("a new name");
        let guard = Unlink::new(Object::Shm(name));
        (Db::init(region, geo).unwrap(), guard)
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:06}").into_bytes()
    }

    fn value(k: &[u8]) -> Vec<u8> {
        [b"value of ", k].concat()
    }

    fn put_all(db: &Db, keys: &[Vec<u8>]) {
        let mut w = db.lock().unwrap();
        for k in keys {
            w.put(k, &value(k)).unwrap();
        }
    }

    fn del_all(db: &Db, keys: &[Vec<u8>]) {
        let mut w = db.lock().unwrap();
        for k in keys {
            assert!(w.del(k).unwrap());
        }
    }

    /// Two keys with the same home slot, away from the table's end; the first lands there
    /// and the second in the next slot.
    fn same_home(db: &Db) -> (Vec<u8>, Vec<u8>, u32) {
        let mut by_home = BTreeMap::new();
        for i in 0.. {
            let k = key(i);
            let home = db.geo.home(layout::key_hash(&k));
            if home + 2 >= db.geo.slots {
                continue;
            }
            if let Some(first) = by_home.insert(home, k.clone()) {
                return (first, k, home);
            }
        }
        unreachable!()
    }

    /// The issue's case: a full table of 2048 slots, every key deleted, refilled, deleted
    /// again. No tombstone is left: the table is empty (longest probe 1), and the same keys
    /// put again lie exactly as in a fresh table (the same longest probe).
    /// Once the database is marked removed, writers that still have it mapped refuse.
    #[test]
    fn a_removed_database_refuses_writers() {
        let (db, _g) = fresh(8);
        put_all(&db, &[key(1)]);
        db.mark_removed();
        let mut w = db.lock().unwrap();
        for err in [
            w.put(&key(2), b"v").unwrap_err(),
            w.del(&key(1)).unwrap_err(),
        ] {
            assert!(
                err.to_string().contains("the database was removed"),
                "{err}"
            );
        }
        drop(w);
        assert_eq!(db.list().unwrap(), vec![(key(1), value(&key(1)))]);
    }

    /// A pthread function's error is its return value: ENOMEM is ENOMEM (the negated
    /// `Errno::result` this replaces took it for success), EPERM is EPERM (not whatever
    /// `errno` held).
    #[test]
    fn pthread_errors_are_the_returned_number() {
        assert_eq!(pthread_result(0), Ok(()));
        assert_eq!(pthread_result(libc::ENOMEM), Err(Errno::ENOMEM));
        assert_eq!(pthread_result(libc::EPERM), Err(Errno::EPERM));
    }

    #[test]
    fn deleting_every_key_leaves_probes_as_short_as_in_a_fresh_table() {
        let keys: Vec<Vec<u8>> = (0..2048).map(key).collect();
        let some = &keys[..1500];
        let (new, _g) = fresh(2048);
        put_all(&new, some);
        let want = new.longest_probe();
        assert!(
            want < 200,
            "a fresh table at 73% load: longest probe {want}"
        );

        let (churned, _g) = fresh(2048);
        for _ in 0..2 {
            put_all(&churned, &keys);
            assert_eq!(
                churned.longest_probe(),
                2048,
                "full: a miss reads every slot"
            );
            del_all(&churned, &keys);
            let s = churned.stats();
            assert_eq!((s.used, s.longest_probe), (0, 1), "all deleted");
        }
        put_all(&churned, some);
        assert_eq!(churned.longest_probe(), want);
        let mut out = Vec::new();
        for k in some {
            assert!(churned.get(k, &mut out).unwrap());
            assert_eq!(out, value(k));
        }
        assert!(!churned.get(&keys[1600], &mut out).unwrap());
    }

    /// Random puts and deletes in a small table (full at times, runs wrapping past its end)
    /// against a BTreeMap: after every delete, every key is found with its value, a deleted
    /// key is not, and the counts agree.
    #[test]
    fn deletes_keep_every_other_key_reachable() {
        let (db, _g) = fresh(32);
        let mut model = BTreeMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut out = Vec::new();
        for round in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key((x % 48) as usize);
            let mut w = db.lock().unwrap();
            if x & (1 << 40) != 0 && model.len() < 32 {
                let v = format!("{round}").into_bytes();
                w.put(&k, &v).unwrap();
                model.insert(k, v);
            } else {
                assert_eq!(w.del(&k).unwrap(), model.remove(&k).is_some());
                assert!(!db.get(&k, &mut out).unwrap(), "deleted {k:?} still found");
            }
            drop(w);
            for (k, v) in &model {
                assert!(db.get(k, &mut out).unwrap(), "round {round}: {k:?} lost");
                assert_eq!(&out, v);
            }
            assert_eq!(db.stats().used as usize, model.len());
        }
        let listed: BTreeMap<_, _> = db.list().unwrap().into_iter().collect();
        assert_eq!(listed, model);
    }

    /// The race a reader must survive, made certain: its probe has read slot `home` (another
    /// key, about to be deleted) when the delete moves the key it looks for from `home + 1`
    /// into `home`; then it reads `home + 1`, now empty. The moves count changed, so it
    /// probes again and finds the key, instead of reporting it missing.
    #[test]
    fn a_probe_overtaken_by_a_move_still_finds_its_key() {
        let (db, _g) = fresh(64);
        let (gone, moved, home) = same_home(&db);
        put_all(&db, &[gone.clone(), moved.clone()]);
        let mut out = Vec::new();
        let mut deleted = false;
        let found = db
            .probe(&moved, &mut out, |slot| {
                if slot == home && !deleted {
                    deleted = db.lock().unwrap().del(&gone).unwrap();
                }
            })
            .unwrap();
        assert!(deleted);
        assert!(found, "a key present all along was reported missing");
        assert_eq!(out, value(&moved));
    }

    /// The same race for a whole-table scan (`list`, and `server --save`).
    #[test]
    fn a_scan_overtaken_by_a_move_still_lists_every_key() {
        let (db, _g) = fresh(64);
        let (gone, moved, home) = same_home(&db);
        put_all(&db, &[gone.clone(), moved.clone()]);
        let mut deleted = false;
        let listed = db
            .scan(false, |slot| {
                if slot == home && !deleted {
                    deleted = db.lock().unwrap().del(&gone).unwrap();
                }
            })
            .unwrap();
        assert!(deleted);
        assert_eq!(listed, vec![(moved.clone(), value(&moved))]);
    }

    /// A writer that dies in the middle of a delete, after a move: the next writer's repair
    /// finishes it from the recorded hole. Without that, the moved key's second copy would
    /// stay in the table, counted, and come back when the key is deleted.
    #[test]
    fn a_repair_finishes_a_delete_cut_short() {
        let (db, _g) = fresh(64);
        let (gone, moved, home) = same_home(&db);
        put_all(&db, &[gone.clone(), moved.clone()]);
        {
            // What `del(gone)` does up to its first move, and no further.
            let mut w = db.lock().unwrap();
            w.set_hole(Some(home));
            let (r, geo) = (&db.region, &db.geo);
            w.moving(|w| w.rewrite(home, |to| copy_record(r, geo, geo.record(home + 1), to)));
            w.set_hole(Some(home + 1));
            let report = w.repair();
            assert!(
                report.contains(&format!(
                    "the delete that was filling slot {} finished",
                    home + 1
                )),
                "{report}"
            );
        }
        let mut out = Vec::new();
        assert!(!db.get(&gone, &mut out).unwrap());
        assert_eq!(db.stats().used, 1);
        assert!(db.lock().unwrap().del(&moved).unwrap());
        assert!(
            !db.get(&moved, &mut out).unwrap(),
            "a second copy came back"
        );
        assert_eq!(db.stats().longest_probe, 1);
    }
}
