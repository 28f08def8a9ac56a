//! Whole-table reads (`list`, and `server --save`): every record read as a get reads one,
//! and the scan as a whole checked against the table's `moves` count, as a miss is.

use std::sync::atomic::{Ordering, fence};

use common::Result;

use super::patience::{Patience, Stuck};
use super::{Db, Seen};
use crate::layout;

impl Db {
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
    pub(super) fn scan(
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
}
