//! The header's counters, for `stats` and the server's SIGUSR1 line: figures for people,
//! read without the seqlock.

use std::sync::atomic::Ordering;

use super::Db;
use crate::layout::{self, EMPTY, R_STATE};

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
    /// it), or every slot if none is empty. Deletes leave no tombstone to lengthen it: a
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
}
