//! Deletes: a backward shift, no tombstones (the algorithm and why a lock-free reader
//! racing it is never fooled are in [`crate::layout`]'s docs, "Deletion").
//!
//! A reader racing a move could walk past the key it looks for: so a miss is trusted only if
//! the table's `moves` count, read with Acquire before the probe and again after an Acquire
//! fence, has not changed; otherwise the probe starts again ([`super::Db::get`]). The count is a
//! seqlock over the table's arrangement, as a record's sequence count is over its contents,
//! and hits pay for it with one load of a header word that puts never write.
//!
//! A delete runs under the writers' mutex, as a put does. Each record it moves is a complete
//! seqlock write of one record ([`Writer::rewrite`]) inside a step of the table's `moves`
//! count, and the header's `hole` says where it stands, so that the next writer can finish
//! a delete whose writer was killed half-way ([`Writer::repair`]).

use std::sync::atomic::{Ordering, fence};

use common::Result;

use super::hook::stop_for_test;
use super::notify::wake;
use super::{Found, Writer, copy_record};
use crate::layout::{self, EMPTY, LIVE, R_HASH, R_NOTIFY};

impl Writer<'_> {
    /// After EOWNERDEAD (see [`Writer::repair`]): finish the delete that a writer killed
    /// half-way left recorded in the header's `hole`, and wake the watchers it never woke.
    pub(super) fn finish_delete(&mut self) -> Option<String> {
        let (r, geo) = (&self.db.region, &self.db.geo);
        // The header was validated at attach: hole <= slots.
        let hole = r
            .u32(layout::H_HOLE)
            .load(Ordering::Relaxed)
            .checked_sub(1)?;
        self.fill_hole(hole);
        // A home slot out of range, from a damaged header, wakes nobody.
        let home = r.u32(layout::H_HOLE_HOME).load(Ordering::Relaxed);
        if home < geo.slots {
            wake(r.u32(geo.record(home) + R_NOTIFY), home);
        }
        Some(format!("the delete that was filling slot {hole} finished"))
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
    pub(super) fn fill_hole(&mut self, mut hole: u32) {
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
    pub(super) fn moving(&mut self, step: impl FnOnce(&mut Self)) {
        let moves = self.db.region.u64(layout::H_MOVES);
        // Rounded up to even and wrapping, as a record's count in `rewrite`.
        let m = moves.load(Ordering::Relaxed).wrapping_add(1) & !1;
        moves.store(m.wrapping_add(1), Ordering::Release);
        fence(Ordering::Release);
        step(self);
        moves.store(m.wrapping_add(2), Ordering::Release);
    }

    /// Record where a delete stands (`None`: no delete in progress).
    pub(super) fn set_hole(&self, hole: Option<u32>) {
        let v = hole.map_or(0, |slot| slot + 1);
        self.db
            .region
            .u32(layout::H_HOLE)
            .store(v, Ordering::Relaxed);
    }
}
