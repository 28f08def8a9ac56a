//! The database in the segment: lock-free readers, and writers serialised by a robust mutex
//! that survives a writer killed holding it. This is the lesson; each pitfall is named where
//! it is avoided. Beside it, in `db/`: `delete.rs` (the backward shift deletes make),
//! [`notify`] (the futex `watch` sleeps on), `mutex.rs` (the pthread calls), `create.rs` (a
//! new segment's header), `scan.rs` (whole-table reads), [`patience`] (how long a reader
//! retries), `owners.rs` (the creator, the mutex's holder), `counters.rs`, `hook.rs` (the
//! test hook).
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
//! A delete moves records (`delete.rs`), and a reader racing a move could walk past its key:
//! a miss counts only if the table's `moves` count (a seqlock over the table's arrangement)
//! held during the probe; otherwise the probe starts again. A reader gives up after
//! [`READ_PATIENCE`], never spinning for ever; sizes read in the copy are checked before they
//! are used as lengths, and a bad one is reported as corruption.
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

use std::marker::PhantomData;
use std::sync::MutexGuard;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use common::{Error, Result, trace};
use nix::errno::Errno;

use crate::layout::{self, DROPPED, EMPTY, Geometry, LIVE, R_HASH, R_KEY, R_KEY_LEN, R_NOTIFY};
use crate::layout::{R_SEQ, R_STATE, R_VALUE_LEN};
use crate::segment::Region;

mod counters;
mod create;
mod delete;
mod hook;
mod mutex;
pub mod notify;
mod owners;
pub mod patience;
mod scan;

pub use counters::Stats;
use hook::stop_for_test;
pub use hook::{STOP_HOOK, stop_hook};
use mutex::pthread_result;
use notify::wake;
pub use owners::{Holder, start_time};
pub use patience::READ_PATIENCE;
use patience::{Patience, Stuck};

/// How long a writer waits for the mutex before it says who might be holding it.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// An attached database.
pub struct Db {
    region: Region,
    geo: Geometry,
    /// The test hook ([`stop_hook`]): stop inside the critical section, holding the mutex.
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

impl Db {
    /// Map the existing database `target` and check its header: what every client does
    /// first.
    pub fn open(target: &crate::segment::Target) -> Result<Db> {
        Db::attach(crate::segment::open(target)?)
    }

    /// Attach to an existing segment after checking its header against its real size.
    pub fn attach(region: Region) -> Result<Db> {
        let geo = layout::validate(&region.raw_header(), region.size(), &region.label)?;
        Ok(Db::new(region, geo))
    }

    pub(super) fn new(region: Region, geo: Geometry) -> Db {
        Db {
            region,
            geo,
            stop_mid_write: false,
            quiet: false,
        }
    }

    /// The segment's geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The error for record `slot`, which holds what no writer of ours leaves behind: a
    /// `state` that is none, or a live record's lengths past the limits.
    fn corrupt(&self, slot: u32, state: u32, klen: u32, vlen: u32) -> Error {
        let why = if state == LIVE {
            format!("key length {klen}, value length {vlen}")
        } else {
            format!("state {state}")
        };
        let label = &self.region.label;
        Error::msg(format!("{label}: record {slot} is corrupt ({why})"))
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
                    return Err(self.corrupt(slot, state, klen, vlen));
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

    /// What a locking call returned: the writer (after repairing what a dead owner left
    /// behind, on EOWNERDEAD), None if the mutex was not had (busy, timed out), or the error.
    pub(super) fn locked(&self, rc: libc::c_int) -> Result<Option<Writer<'_>>> {
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
                    "shm-demo: recovered the writers' mutex of {label}: its owner died holding \
                     it; {report}"
                );
                trace!(
                    "pthread_mutex_lock({label}) -> EOWNERDEAD; repaired; pthread_mutex_consistent"
                );
                Ok(Some(writer))
            }
            libc::ETIMEDOUT | libc::EBUSY => Ok(None),
            libc::ENOTRECOVERABLE => Err(Error::msg(format!(
                "{label}: the writers' mutex is not recoverable (a repair was abandoned); start \
                 the server with --fresh"
            ))),
            e => Err(Error::sys("pthread_mutex_lock", label, Errno::from_raw(e))),
        }
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
                        return Err(db.corrupt(slot, LIVE, klen, vlen));
                    }
                    if r.u64(rec + R_HASH).load(Ordering::Relaxed) == hash
                        && klen as usize == key.len()
                        && r.bytes_equal(rec + R_KEY, key)
                    {
                        return Ok(Found::Key(slot));
                    }
                }
                other => return Err(db.corrupt(slot, other, 0, 0)),
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
        done.extend(self.finish_delete());
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

#[cfg(test)]
mod tests;
