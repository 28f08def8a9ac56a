//! POSIX shared memory (`shm_open` + `mmap`) with busy-polling: no system call at all once
//! the mapping exists. Round trip: a turn word, as for the futex, but a waiting side spins on
//! it instead of sleeping. Bulk: a ring of four slots, each with a state word (empty, full,
//! end) and up to 64 KiB of data; the sender copies in, the receiver copies out.
//!
//! Spinning costs a whole CPU per waiting side, and on *one* CPU it is the worst choice of
//! all: the peer cannot run until the spinner's time slice ends, so a round trip takes
//! scheduler ticks (milliseconds) instead of nanoseconds.
//!
//! The name is needed only until the mapping exists (ping and pong inherit it across fork),
//! so it is unlinked at once.

use std::cell::UnsafeCell;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::cleanup::{Object, Unlink};
use common::{Context, Error, Result};
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, mmap_anonymous, munmap, shm_open};
use nix::sys::stat::Mode;
use nix::unistd::ftruncate;

use super::{Endpoint, MAX_MSG, Names, Pair};

const SLOTS: usize = 4;
const EMPTY: u32 = 0;
const FULL: u32 = 1;
const ENDED: u32 = 2;

/// The layout, identical to `struct shm_ring` in the C twin.
#[repr(C)]
struct Ring {
    /// Round trips: 1 = ping's turn has ended, 2 = pong's has.
    turn: AtomicU32,
    _pad: [u32; 15],
    slots: [Slot; SLOTS],
}

#[repr(C)]
struct Slot {
    state: AtomicU32,
    len: AtomicU32,
    /// Written by one process while the other may read the state words, so it sits in an
    /// UnsafeCell: no `&` to these bytes ever exists, only raw pointers.
    data: UnsafeCell<[u8; MAX_MSG]>,
}

/// A shared mapping, unmapped when the last end holding it is dropped.
pub struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: NonZeroUsize,
}

impl Mapping {
    /// `len` bytes of `MAP_SHARED | MAP_ANONYMOUS` memory: shared with children across fork.
    pub fn anonymous(len: usize) -> Result<Mapping> {
        let len = NonZeroUsize::new(len).expect("a mapping is not empty");
        // SAFETY: a new anonymous mapping aliases nothing in this process.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .ctx("mmap", "MAP_SHARED | MAP_ANONYMOUS")?;
        Ok(Mapping { ptr, len })
    }

    /// The `i`-th 32-bit word of the mapping, as an atomic shared with the other process.
    pub fn word(&self, i: usize) -> &AtomicU32 {
        assert!(
            (i + 1) * 4 <= self.len.get(),
            "word {i} is inside the mapping"
        );
        // SAFETY: the mapping is page-aligned, so every 4-byte offset is aligned for a u32,
        // the word is inside it (checked above), and it lives as long as `self`. Other
        // processes touch it only through atomics as well.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().cast::<u32>().add(i)) }
    }

    fn ring(&self) -> &Ring {
        assert!(size_of::<Ring>() <= self.len.get());
        // SAFETY: the mapping is page-aligned and large enough for a Ring (checked), zeroed
        // by the kernel (a valid Ring: atomics and bytes), and outlives the reference. The
        // data bytes are written through raw pointers only while the slot's state gives
        // this process exclusive use of them.
        unsafe { &*self.ptr.as_ptr().cast::<Ring>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr and len are those mmap returned, and no reference into the mapping
        // outlives `self`.
        let _ = unsafe { munmap(self.ptr, self.len.get()) };
    }
}

/// One end: the mapping and its position in the ring.
pub struct ShmEnd {
    map: Rc<Mapping>,
    mine: u32,
    theirs: u32,
    seq: usize,
}

/// A ring in a POSIX shared memory object, unlinked once mapped.
pub fn pair(names: &Names) -> Result<Pair<ShmEnd, ShmEnd>> {
    let name = &names.a;
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
    let fd = shm_open(name.as_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR).ctx("shm_open", name)?;
    let _name = Unlink::new(Object::Shm(name.clone()));
    let len = NonZeroUsize::new(size_of::<Ring>()).expect("a Ring is not empty");
    let size = libc::off_t::try_from(len.get()).expect("a Ring fits in off_t");
    ftruncate(&fd, size).ctx("ftruncate", name)?;
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    // SAFETY: a new shared mapping of a new object aliases nothing in this process.
    let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, &fd, 0) }.ctx("mmap", name)?;
    let map = Rc::new(Mapping { ptr, len });
    let end = |mine, theirs| ShmEnd {
        map: Rc::clone(&map),
        mine,
        theirs,
        seq: 0,
    };
    Ok(Pair::new(end(1, 2), end(2, 1)))
}

/// Wait for `word` to hold a value other than `not`, spinning; returns what it holds.
fn spin_while(word: &AtomicU32, not: u32) -> u32 {
    loop {
        let v = word.load(Ordering::Acquire);
        if v != not {
            return v;
        }
        std::hint::spin_loop();
    }
}

impl ShmEnd {
    fn next_slot(&mut self) -> &Slot {
        let i = self.seq % SLOTS;
        self.seq += 1;
        &self.map.ring().slots[i]
    }
}

impl Endpoint for ShmEnd {
    fn post(&mut self) -> Result<()> {
        self.map.ring().turn.store(self.mine, Ordering::Release);
        Ok(())
    }

    fn wait(&mut self) -> Result<()> {
        let turn = &self.map.ring().turn;
        while turn.load(Ordering::Acquire) != self.theirs {
            std::hint::spin_loop();
        }
        Ok(())
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        // The copy below trusts this bound: past it, the bytes would run into the next
        // slot's state word, or past the end of the mapping. Checked before a slot is taken,
        // so a refused message leaves the ring as it was.
        if msg.len() > MAX_MSG {
            return Err(Error::msg(format!(
                "shm send: a {}-byte message does not fit a {MAX_MSG}-byte slot",
                msg.len()
            )));
        }
        let slot = self.next_slot();
        spin_while(&slot.state, FULL);
        // SAFETY: the slot is EMPTY, so until we publish it the receiver does not touch its
        // data; msg.len() <= MAX_MSG, the size of `data` (checked above).
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), slot.data.get().cast::<u8>(), msg.len());
        }
        let len = u32::try_from(msg.len()).expect("at most MAX_MSG, which fits in a u32");
        slot.len.store(len, Ordering::Relaxed);
        let state = if msg.is_empty() { ENDED } else { FULL };
        slot.state.store(state, Ordering::Release);
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        let slot = self.next_slot();
        let state = spin_while(&slot.state, EMPTY);
        // The length was written by the other process: bound it before using it.
        let n = if state == ENDED {
            0
        } else {
            (slot.len.load(Ordering::Relaxed) as usize)
                .min(MAX_MSG)
                .min(buf.len())
        };
        // SAFETY: the slot is FULL, so the sender does not touch its data until we mark it
        // EMPTY; n is within both `data` and `buf`.
        unsafe {
            std::ptr::copy_nonoverlapping(slot.data.get().cast::<u8>(), buf.as_mut_ptr(), n);
        }
        slot.state.store(EMPTY, Ordering::Release);
        Ok(n)
    }

    fn end(&mut self) -> Result<()> {
        self.send(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mech::Mech;

    #[test]
    fn a_message_larger_than_a_slot_is_refused_and_the_ring_is_untouched() {
        let names = Names::for_mech(Mech::Shm).expect("names");
        let Pair {
            mut ping, mut pong, ..
        } = pair(&names).expect("a ring");
        let big = vec![0x5a; MAX_MSG + 1];
        let err = ping.send(&big).expect_err("one byte too many");
        assert_eq!(
            err.to_string(),
            "shm send: a 65537-byte message does not fit a 65536-byte slot"
        );
        // Unchecked, the 65537th byte lands on the next slot's state word, and the first
        // slot is published as full.
        let ring = ping.map.ring();
        for slot in &ring.slots {
            assert_eq!(slot.state.load(Ordering::Acquire), EMPTY);
        }
        // The refused message took no slot: one that fits goes through, and arrives whole.
        ping.send(&big[..MAX_MSG]).expect("a full slot's worth");
        let mut buf = vec![0; MAX_MSG];
        assert_eq!(pong.recv(&mut buf).expect("recv"), MAX_MSG);
        assert!(buf.iter().all(|&b| b == 0x5a));
    }
}
