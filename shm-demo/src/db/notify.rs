//! Watch: a futex in the segment.
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

use std::sync::atomic::{AtomicU32, Ordering};

use common::{Error, Result, trace};
use nix::errno::Errno;

use super::Db;
use crate::layout::{self, R_NOTIFY};

/// The notify word's top bit: a watcher is (about to be) asleep on it.
pub const WAITING: u32 = 1 << 31;

impl Db {
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
pub(super) fn wake(word: &AtomicU32, slot: u32) {
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
