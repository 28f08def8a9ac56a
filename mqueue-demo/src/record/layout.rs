//! The record's bytes: where each thing is, in native byte order (only this machine reads
//! it).
//!
//! - The header, [`HEADER`] bytes: `mqheld01`, then kind u32 (0 POSIX, 1 System V), msgsize
//!   u32, slots u32, workers u32, and the pid i32 of the supervisor that wrote it.
//! - Workers × [`WORKER`] bytes: pid i32 (0: none), System V inbox id i32 (-1: POSIX), one
//!   entry for each worker the supervisor knows, so that the next one removes the inboxes of
//!   those that died with it.
//! - Slots × (32 + msgsize + 1, rounded up to 8): state u8 at 0 (0 free, 1 receiving, 2
//!   held), priority u32 at 4, length u32 at 8, worker pid i32 at 12 (0: none), taken u64
//!   (CLOCK_MONOTONIC ns) at 16, System V's message type just before the message, the
//!   message at 32.
//!
//! A slot is reserved when a task is taken, and freed when every message about the task (its
//! result, and a dead letter's copy) is in a queue; several slots may name one worker.
//!
//! Another process of the same user could write the record (mode 0600 keeps others out); only
//! the lock holder does, and the next supervisor checks what it reads before believing it.

use nix::unistd::Pid;

use crate::queue::Flavor;

/// The most tasks the supervisor holds at once (in workers' hands, waiting for one, or
/// answered with the result waiting for room); with every slot in use it takes no new task.
pub const MAX_HELD: usize = 4096;
/// The workers it remembers at once.
pub(super) const MAX_WORKERS: usize = 1024;
/// The record is at most this big: a huge `--msgsize` (root only) gets fewer slots.
pub(super) const MAX_BYTES: usize = 64 << 20;

pub(super) const MAGIC: &[u8; 8] = b"mqheld01";
pub(super) const HEADER: usize = 64;
pub(super) const H_KIND: usize = 8;
pub(super) const H_MSGSIZE: usize = 12;
pub(super) const H_SLOTS: usize = 16;
pub(super) const H_WORKERS: usize = 20;
pub(super) const H_PID: usize = 24;
pub(super) const WORKER: usize = 8;

pub(super) const SLOT_HEAD: usize = 32;
pub(super) const S_STATE: usize = 0;
pub(super) const S_PRIO: usize = 4;
pub(super) const S_LEN: usize = 8;
pub(super) const S_WORKER: usize = 12;
pub(super) const S_TAKEN: usize = 16;
/// System V's `struct msgbuf` starts with the type, a `long`, right before the text.
pub(super) const S_MTYPE: usize = S_MSG - std::mem::size_of::<libc::c_long>();
pub(super) const S_MSG: usize = SLOT_HEAD;

pub(super) const FREE: u8 = 0;
pub(super) const RECEIVING: u8 = 1;
pub(super) const HELD: u8 = 2;
/// A priority `mq_receive` never writes: they are below `MQ_PRIO_MAX` (32768 on Linux).
pub(super) const NO_PRIO: u32 = u32::MAX;

/// The shape of a record: what it was made for, and so where everything is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) flavor: Flavor,
    pub(super) msgsize: usize,
    pub(super) slots: usize,
    pub(super) workers: usize,
}

impl Geometry {
    pub(super) fn new(flavor: Flavor, msgsize: usize) -> Geometry {
        let slot = slot_size(msgsize);
        Geometry {
            flavor,
            msgsize,
            slots: (MAX_BYTES / slot).clamp(8, MAX_HELD),
            workers: MAX_WORKERS,
        }
    }

    /// Read from a record's header; None if it is not one (or an absurd one).
    pub(super) fn read(h: &[u8]) -> Option<Geometry> {
        let u32_at = |at: usize| {
            let b = h.get(at..at + 4)?;
            usize::try_from(u32::from_ne_bytes(b.try_into().ok()?)).ok()
        };
        if h.get(..8)? != MAGIC {
            return None;
        }
        let geo = Geometry {
            flavor: match u32_at(H_KIND)? {
                0 => Flavor::Posix,
                1 => Flavor::Sysv,
                _ => return None,
            },
            msgsize: u32_at(H_MSGSIZE)?,
            slots: u32_at(H_SLOTS)?,
            workers: u32_at(H_WORKERS)?,
        };
        // No larger than a record we would make (the kernel's largest message is 16 MiB).
        let sane = geo.msgsize <= 16 << 20
            && (1..=MAX_HELD).contains(&geo.slots)
            && geo.workers <= MAX_WORKERS;
        sane.then_some(geo)
    }

    pub(super) fn header(&self, pid: Pid) -> [u8; HEADER] {
        let mut h = [0; HEADER];
        h[..8].copy_from_slice(MAGIC);
        let mut put = |at: usize, v: u32| h[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        put(H_KIND, u32::from(self.flavor == Flavor::Sysv));
        put(H_MSGSIZE, to_u32(self.msgsize));
        put(H_SLOTS, to_u32(self.slots));
        put(H_WORKERS, to_u32(self.workers));
        h[H_PID..H_PID + 4].copy_from_slice(&pid.as_raw().to_ne_bytes());
        h
    }

    /// Room for a message: one byte more than `msgsize`, so that System V's `msgrcv` shows a
    /// message that was too long (see sysv.rs).
    pub(super) fn room(&self) -> usize {
        self.msgsize + 1
    }

    pub(super) fn worker(&self, i: usize) -> usize {
        HEADER + i * WORKER
    }

    pub(super) fn slot(&self, i: usize) -> usize {
        HEADER + self.workers * WORKER + i * slot_size(self.msgsize)
    }

    pub(super) fn len(&self) -> usize {
        self.slot(self.slots)
    }
}

pub(super) fn slot_size(msgsize: usize) -> usize {
    (SLOT_HEAD + msgsize + 1).next_multiple_of(8)
}

pub(super) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Tasks held and workers known, in a copy of a record.
pub(super) fn census(geo: &Geometry, bytes: &[u8]) -> (usize, Vec<(Pid, i32)>) {
    let i32_at = |at: usize| i32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
    let workers = (0..geo.workers)
        .map(|i| geo.worker(i))
        .filter(|&at| i32_at(at) > 0)
        .map(|at| (Pid::from_raw(i32_at(at)), i32_at(at + 4)))
        .collect();
    let tasks = (0..geo.slots)
        .map(|i| geo.slot(i))
        .filter(|&at| match bytes[at + S_STATE] {
            HELD => true,
            // Receiving: a task only if the kernel wrote its mark (see the module docs).
            RECEIVING if geo.flavor == Flavor::Sysv => {
                bytes[at + S_MTYPE..at + S_MSG].iter().any(|&b| b != 0)
            }
            RECEIVING => i32_at(at + S_PRIO) as u32 != NO_PRIO,
            _ => false,
        })
        .count();
    (tasks, workers)
}
