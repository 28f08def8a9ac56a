//! The segment as the rest of the program sees it once it is mapped: bounds-checked atomic
//! accessors, and nothing else, so that every `unsafe` of the crate's shared memory is here,
//! each with the evidence that makes it sound.

use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::sys::mman::munmap;

use crate::layout::{self, RawHeader};

/// How the region was attached, hence how it is detached.
#[derive(Debug)]
pub(super) enum Attach {
    Mmap,
    SysV,
}

/// The segment as mapped into this process. Every access goes through an atomic of the
/// size the layout gives the field, at a bounds-checked, aligned offset.
///
/// Why atomics for every byte: other processes write this memory while we read it. In Rust's
/// memory model a non-atomic read that races with a write is undefined behaviour, even if the
/// value is then thrown away (as a seqlock reader does with a torn copy). Relaxed atomic
/// loads and stores of whole words compile to the same plain `mov`s on x86-64 and ARM64, so
/// the model is kept at no cost. (Volatile reads would not do: they are not atomic, and a
/// racing volatile read is still a data race in Rust's definition.)
#[derive(Debug)]
pub struct Region {
    pub(super) ptr: NonNull<u8>,
    pub(super) len: usize,
    pub(super) attach: Attach,
    /// What the region is, for messages.
    pub label: String,
}

// SAFETY: Region hands out only atomics (and a raw mutex pointer used with pthread calls,
// which are thread-safe), so sharing it between threads is as safe as sharing the atomics.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// The mapped length in bytes (from `fstat`/`IPC_STAT`, never from the header).
    pub fn size(&self) -> usize {
        self.len
    }

    fn check(&self, off: usize, size: usize) {
        // Offsets come from a validated geometry; failing this is a bug in this program,
        // not bad input, so it panics rather than reading out of bounds.
        assert!(
            off % size == 0 && off.checked_add(size).is_some_and(|end| end <= self.len),
            "offset {off} (+{size}) outside {} bytes or misaligned",
            self.len
        );
    }

    /// The 64-bit field at `off`.
    pub fn u64(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8);
        // SAFETY: `off..off+8` is inside the mapping and 8-aligned (the mapping is
        // page-aligned; `check` verified the offset), the mapping lives as long as `self`,
        // and every process accesses this field only through 64-bit atomics.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// The 32-bit field at `off`.
    pub fn u32(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4);
        // SAFETY: as for `u64`, with 4 bytes and 4-alignment.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// The fixed fields of the record at `off` (its first [`layout::R_KEY`] bytes: sequence,
    /// notify, state, hash, lengths), bounds-checked once here instead of at each of the
    /// loads a read makes of them (a get's hot path).
    pub fn fields(&self, off: usize) -> Fields<'_> {
        // As in `check`: offsets come from a validated geometry.
        assert!(
            off % 8 == 0
                && off
                    .checked_add(layout::R_KEY)
                    .is_some_and(|end| end <= self.len),
            "record at offset {off} outside {} bytes or misaligned",
            self.len
        );
        Fields { region: self, off }
    }

    /// The writers' mutex.
    pub fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.check(layout::H_MUTEX, layout::MUTEX_ROOM);
        // SAFETY: H_MUTEX + MUTEX_ROOM is inside the mapping (checked above); only the
        // pointer is computed here.
        unsafe { self.ptr.as_ptr().add(layout::H_MUTEX).cast() }
    }

    /// The `n` 64-bit words at `off`, bounds-checked once for all of them.
    fn words(&self, off: usize, n: usize) -> &[AtomicU64] {
        let end = n.checked_mul(8).and_then(|b| off.checked_add(b));
        // As in `check`: offsets come from a validated geometry.
        assert!(
            off % 8 == 0 && end.is_some_and(|end| end <= self.len),
            "{n} words at offset {off} outside {} bytes or misaligned",
            self.len
        );
        // SAFETY: the n words at `off` are inside the mapping and 8-aligned (checked above),
        // the mapping lives as long as `self`, AtomicU64 has the size and alignment of u64,
        // and every process accesses these words only through 64-bit atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off).cast::<AtomicU64>(), n) }
    }

    /// Append `n` bytes at `off` (8-aligned, inside an area rounded up to 8) to `out`, one
    /// relaxed 64-bit load per word.
    #[inline]
    pub fn load_bytes(&self, off: usize, n: usize, out: &mut Vec<u8>) {
        let words = self.words(off, n.div_ceil(8));
        // Whole words into the spare capacity, then the length set to what was asked for: no
        // zero-filling first, no capacity check per word.
        out.reserve(words.len() * 8);
        let start = out.len();
        let spare = out.spare_capacity_mut();
        for (dst, w) in spare.chunks_exact_mut(8).zip(words) {
            dst.copy_from_slice(
                &w.load(Ordering::Relaxed)
                    .to_ne_bytes()
                    .map(MaybeUninit::new),
            );
        }
        // SAFETY: the loop wrote words.len() * 8 >= n bytes from `start` on (`reserve` made
        // room for all of them, and the zip stops at the last word), so the first `start + n`
        // bytes are initialised.
        unsafe { out.set_len(start + n) };
    }

    /// True if the bytes at `off` equal `want`, compared a word at a time. The stored last
    /// word is zero-padded ([`Region::store_bytes`]), so `want`'s is padded the same way.
    pub fn bytes_equal(&self, off: usize, want: &[u8]) -> bool {
        let words = self.words(off, want.len().div_ceil(8));
        let whole = want.chunks_exact(8);
        let tail = whole.remainder();
        // Whole words first, as they lie in memory; then the zero-padded last one, if any.
        let (last, full) = match tail {
            [] => (None, words),
            _ => (words.last(), &words[..words.len() - 1]),
        };
        whole.zip(full).all(|(chunk, w)| {
            let bytes = <[u8; 8]>::try_from(chunk).unwrap_or_default();
            w.load(Ordering::Relaxed) == u64::from_ne_bytes(bytes)
        }) && last.is_none_or(|w| w.load(Ordering::Relaxed) == u64::from_le(layout::le_word(tail)))
    }

    /// Store `bytes` at `off` (8-aligned), zero-padding the last word.
    pub fn store_bytes(&self, off: usize, bytes: &[u8]) {
        let words = self.words(off, bytes.len().div_ceil(8));
        for (chunk, w) in bytes.chunks(8).zip(words) {
            // from_le: the word whose bytes in memory are `chunk`, on any byte order.
            w.store(u64::from_le(layout::le_word(chunk)), Ordering::Relaxed);
        }
    }

    /// Copy `n` bytes, word by word, from `from` to `to` (both 8-aligned).
    pub fn copy_words(&self, from: usize, to: usize, n: usize) {
        let count = n.div_ceil(8);
        for (src, dst) in self.words(from, count).iter().zip(self.words(to, count)) {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// True unless we can tell that process `pid` does not have this very object mapped: its
    /// `/proc/PID/maps` shows no mapping with our mapping's device and inode (for SysV, the
    /// inode is the shmid). A header's creator pid is data from the segment; a live process
    /// with that pid and start time is the creator only if it uses the segment, which is how
    /// `destroy` avoids signalling some other process a damaged or hand-made header names.
    /// Without /proc to tell, it answers true (trusting the start time alone).
    pub fn mapped_by(&self, pid: i32) -> bool {
        let Some((dev, inode)) = self.identity() else {
            return true;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(maps) => maps.lines().any(|l| dev_inode(l) == Some((&dev, inode))),
            Err(_) => false,
        }
    }

    /// Our mapping's device and inode, from the line of `/proc/self/maps` that starts at it.
    fn identity(&self) -> Option<(String, u64)> {
        let start = format!("{:x}-", self.ptr.as_ptr() as usize);
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let line = maps.lines().find(|l| l.starts_with(&start))?;
        dev_inode(line).map(|(dev, inode)| (dev.to_owned(), inode))
    }

    /// The header's fixed fields (the region is at least [`layout::FIXED_HEADER`] long).
    pub fn raw_header(&self) -> RawHeader {
        let u32_at = |off| self.u32(off).load(Ordering::Relaxed);
        RawHeader {
            magic: self
                .u64(layout::H_MAGIC)
                .load(Ordering::Acquire)
                .to_ne_bytes(),
            version: u32_at(layout::H_VERSION),
            header_size: u32_at(layout::H_HEADER_SIZE),
            total_size: self.u64(layout::H_TOTAL).load(Ordering::Relaxed),
            slots: u32_at(layout::H_SLOTS),
            key_max: u32_at(layout::H_KEY_MAX),
            value_max: u32_at(layout::H_VALUE_MAX),
            record_size: u32_at(layout::H_RECORD_SIZE),
            mutex_size: u32_at(layout::H_MUTEX_SIZE),
            used: u32_at(layout::H_USED),
            undo_slot: u32_at(layout::H_UNDO_SLOT),
            hole: u32_at(layout::H_HOLE),
        }
    }
}

/// A record's fixed fields (see [`Region::fields`]): the record's bounds were checked when it
/// was made, and each field's offset is checked against them at compile time.
pub struct Fields<'a> {
    region: &'a Region,
    off: usize,
}

impl<'a> Fields<'a> {
    /// The 64-bit field at offset `F` of the record (a `layout::R_*` constant).
    #[inline]
    pub fn u64<const F: usize>(&self) -> &'a AtomicU64 {
        const { assert!(F % 8 == 0 && F + 8 <= layout::R_KEY) };
        // SAFETY: off..off + R_KEY is inside the mapping and off is 8-aligned (checked in
        // `Region::fields`), F + 8 <= R_KEY and F is 8-aligned (checked at compile time), the
        // mapping lives as long as the region we borrow, and every process accesses this
        // field only through 64-bit atomics.
        unsafe { AtomicU64::from_ptr(self.region.ptr.as_ptr().add(self.off + F).cast()) }
    }

    /// The 32-bit field at offset `F` of the record.
    #[inline]
    pub fn u32<const F: usize>(&self) -> &'a AtomicU32 {
        const { assert!(F % 4 == 0 && F + 4 <= layout::R_KEY) };
        // SAFETY: as for `u64`, with 4 bytes and 4-alignment.
        unsafe { AtomicU32::from_ptr(self.region.ptr.as_ptr().add(self.off + F).cast()) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match self.attach {
            Attach::Mmap => {
                // SAFETY: ptr/len are exactly what mmap returned, and no reference into the
                // mapping outlives `self` (every accessor borrows it).
                let _ = unsafe { munmap(self.ptr.cast(), self.len) };
            }
            Attach::SysV => {
                // SAFETY: ptr is what shmat returned; as above for references.
                unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
            }
        }
    }
}

/// The device and inode fields of a `/proc/PID/maps` line
/// (`7f..-7f.. rw-s 00000000 00:1a 4242 /dev/shm/ipc-demo-db`); None for an anonymous one.
fn dev_inode(line: &str) -> Option<(&str, u64)> {
    let mut fields = line.split_whitespace().skip(3);
    let dev = fields.next()?;
    let inode = fields.next()?.parse().ok().filter(|&i| i != 0)?;
    Some((dev, inode))
}
