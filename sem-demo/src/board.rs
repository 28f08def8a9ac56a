//! The bridge's board: a small POSIX shared-memory object where every car records, with one
//! atomic instruction, that it entered or left, and so learns the occupancy it caused.
//!
//! Layout (`repr(C)`, native endianness: every process on the board runs on this machine):
//!
//! | field | type | |
//! |---|---|---|
//! | magic | AtomicU64 | [`MAGIC`], so a car never trusts some other object of that name |
//! | lanes | AtomicU32 | K |
//! | cars | AtomicU32 | N; the event log has 2N slots |
//! | state | AtomicU64 | high 32 bits: events so far; low 32 bits: cars on the bridge |
//! | max | AtomicU32 | the highest occupancy any car saw |
//! | over | AtomicU32 | how many times a car saw more than K |
//! | events | [AtomicU64; 2N] | slot i: event i, `(car+1) << 32 \| enter << 31 \| occupancy` |
//!
//! Entering adds `1 << 32 | 1` to `state`: one more event, one more car; leaving adds
//! `0xffff_ffff`, which is one more event *and* one car less (the low half wraps, carrying
//! into the high half). Either way `fetch_add` returns the state just before, so each car
//! learns its event's number and the occupancy it made in the same atomic step: the timeline
//! that results is exactly the order of those steps, with no lock of its own.
//!
//! Every field is an atomic, the three the creator writes once included: the object has a name
//! from `shm_open` on, before its header is written, so another process may read the header
//! while it is being written, and in Rust's memory model a plain read that races a write is
//! undefined behaviour (the rule shm-demo's layout states). The creator stores K and N first and
//! the magic last (Release); a car loads the magic first (Acquire), so a car that finds the
//! magic also finds K and N, and one that comes earlier finds no magic and is refused.
//!
//! The sizes a car reads from the board are checked against the object's real size before the
//! event log is touched.

use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use common::cleanup::{Object, Unlink};
use common::{Context, Error, Result, trace};
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{Uid, ftruncate};

/// "semboard" in ASCII.
pub const MAGIC: u64 = u64::from_be_bytes(*b"semboard");

#[repr(C)]
struct Header {
    magic: AtomicU64,
    lanes: AtomicU32,
    cars: AtomicU32,
    state: AtomicU64,
    max: AtomicU32,
    over: AtomicU32,
}

/// One event on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The car.
    pub car: u32,
    /// Entered (true) or left.
    pub enter: bool,
    /// Cars on the bridge just after.
    pub occupancy: u32,
}

/// A mapped board.
pub struct Board {
    base: NonNull<libc::c_void>,
    len: usize,
    name: String,
}

fn size_for(cars: u32) -> Option<usize> {
    let events = usize::try_from(cars).ok()?.checked_mul(2)?;
    events
        .checked_mul(size_of::<AtomicU64>())?
        .checked_add(size_of::<Header>())
}

impl Board {
    /// Create the board `name` (`/ipc-demo-...`) for `cars` cars and `lanes` lanes:
    /// `shm_open(O_CREAT|O_EXCL, 0600)`, `ftruncate`, `mmap`.
    pub fn create(name: &str, lanes: u32, cars: u32) -> Result<Self> {
        let len = size_for(cars).ok_or_else(|| Error::msg("too many cars"))?;
        let fd = shm_open(
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .ctx("shm_open(O_CREAT|O_EXCL)", name)?;
        // O_EXCL made it ours: if it cannot be sized or mapped, it goes again at once.
        let guard = Unlink::new(Object::Shm(name.to_owned()));
        let off = libc::off_t::try_from(len).map_err(|_| Error::msg("board too large"))?;
        ftruncate(&fd, off).ctx("ftruncate", name)?;
        let board = Board::map(&fd, len, name)?;
        // The caller guards the name from here on.
        let _ = guard.keep();
        trace!("shm_open({name}, O_CREAT|O_EXCL, 0600) + ftruncate({len}) + mmap");
        board.stamp(lanes, cars);
        Ok(board)
    }

    /// Write the header of a new board: K and N, then the magic that makes a car believe them
    /// (see the module docs for the order).
    fn stamp(&self, lanes: u32, cars: u32) {
        let h = self.header();
        h.lanes.store(lanes, Ordering::Relaxed);
        h.cars.store(cars, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
    }

    /// Open an existing board, checked: ours, a regular shm object, big enough for the car
    /// count it claims, with our magic.
    pub fn open(name: &str) -> Result<Self> {
        let fd = shm_open(name, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .ctx("shm_open", name)?;
        let st = fstat(fd.as_fd()).ctx("fstat", name)?;
        if st.st_uid != Uid::effective().as_raw() {
            return Err(Error::msg(format!(
                "board {name}: owned by uid {}, not by us",
                st.st_uid
            )));
        }
        let len = usize::try_from(st.st_size).unwrap_or(0);
        if len < size_of::<Header>() {
            return Err(Error::msg(format!("board {name}: too small ({len} bytes)")));
        }
        let board = Board::map(&fd, len, name)?;
        // The magic first (Acquire), and K and N only if it is there: see the module docs.
        if board.header().magic.load(Ordering::Acquire) != MAGIC {
            return Err(Error::msg(format!("board {name}: not a sem-demo board")));
        }
        let cars = board.cars();
        if size_for(cars) != Some(len) {
            return Err(Error::msg(format!(
                "board {name}: claims {cars} cars but is {len} bytes"
            )));
        }
        trace!(
            "shm_open({name}, O_RDWR) + mmap: K={}, {cars} cars",
            board.lanes()
        );
        Ok(board)
    }

    fn map(fd: &std::os::fd::OwnedFd, len: usize, name: &str) -> Result<Self> {
        let nz = NonZeroUsize::new(len).ok_or_else(|| Error::msg("empty board"))?;
        // SAFETY: a fresh shared mapping of a descriptor we own, at an address of the
        // kernel's choosing: it aliases no Rust object. It is unmapped only in Drop.
        let base = unsafe {
            mmap(
                None,
                nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )
        }
        .ctx("mmap", name)?;
        Ok(Board {
            base,
            len,
            name: name.to_owned(),
        })
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least size_of::<Header>() bytes (checked at create/open)
        // and page-aligned, and lives as long as `self`; every field of Header is an atomic
        // (see the test `every_header_field_is_an_atomic`), so shared references to it are
        // sound while other processes write it.
        unsafe { &*self.base.as_ptr().cast::<Header>() }
    }

    fn events(&self) -> &[AtomicU64] {
        let n = (self.len - size_of::<Header>()) / size_of::<AtomicU64>();
        // SAFETY: the log follows the header inside the mapping, 8-byte aligned (the header
        // is 32 bytes), `n` slots exactly fit in what is left of `len` bytes; atomics
        // may be shared between processes.
        unsafe {
            std::slice::from_raw_parts(
                self.base
                    .as_ptr()
                    .cast::<u8>()
                    .add(size_of::<Header>())
                    .cast(),
                n,
            )
        }
    }

    /// K.
    pub fn lanes(&self) -> u32 {
        self.header().lanes.load(Ordering::Relaxed)
    }

    /// N.
    pub fn cars(&self) -> u32 {
        self.header().cars.load(Ordering::Relaxed)
    }

    /// Record that `car` entered; returns the occupancy now. Counts a violation if above K.
    pub fn enter(&self, car: u32) -> Result<u32> {
        let old = self
            .header()
            .state
            .fetch_add((1 << 32) | 1, Ordering::SeqCst);
        let occupancy = (old as u32).wrapping_add(1);
        self.log(old >> 32, car, true, occupancy)?;
        self.header().max.fetch_max(occupancy, Ordering::SeqCst);
        if occupancy > self.lanes() {
            self.header().over.fetch_add(1, Ordering::SeqCst);
        }
        Ok(occupancy)
    }

    /// Record that `car` left; returns the occupancy now.
    pub fn leave(&self, car: u32) -> Result<u32> {
        // +0xffff_ffff: events + 1, cars - 1 (see the module docs).
        let old = self.header().state.fetch_add(0xffff_ffff, Ordering::SeqCst);
        let occupancy = (old as u32).wrapping_sub(1);
        self.log(old >> 32, car, false, occupancy)?;
        Ok(occupancy)
    }

    fn log(&self, seq: u64, car: u32, enter: bool, occupancy: u32) -> Result<()> {
        let slot = usize::try_from(seq)
            .ok()
            .and_then(|i| self.events().get(i))
            .ok_or_else(|| {
                Error::msg(format!("board {}: event {seq} beyond its log", self.name))
            })?;
        let v = (u64::from(car) + 1) << 32
            | u64::from(enter) << 31
            | u64::from(occupancy & 0x7fff_ffff);
        slot.store(v, Ordering::SeqCst);
        Ok(())
    }

    /// The events so far, in the order they happened (an unwritten slot ends the list).
    pub fn timeline(&self) -> Vec<Event> {
        let n = usize::try_from(self.header().state.load(Ordering::SeqCst) >> 32).unwrap_or(0);
        self.events()
            .iter()
            .take(n)
            .map(|e| e.load(Ordering::SeqCst))
            .take_while(|&v| v != 0)
            .map(|v| Event {
                car: ((v >> 32) as u32).wrapping_sub(1),
                enter: v & (1 << 31) != 0,
                occupancy: (v & 0x7fff_ffff) as u32,
            })
            .collect()
    }

    /// The highest occupancy and the number of violations the cars recorded.
    pub fn max_and_over(&self) -> (u32, u32) {
        let h = self.header();
        (h.max.load(Ordering::SeqCst), h.over.load(Ordering::SeqCst))
    }

    /// Cars on the bridge now.
    pub fn occupancy(&self) -> u32 {
        self.header().state.load(Ordering::SeqCst) as u32
    }
}

impl Drop for Board {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `map`, unmapped once, here; no
        // reference into it outlives `self`.
        let _ = unsafe { munmap(self.base, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::names;

    /// Only atomics may be shared with other processes (see the module docs).
    trait SharedWord {}
    impl SharedWord for AtomicU32 {}
    impl SharedWord for AtomicU64 {}
    fn shared<T: SharedWord>(_: &T) {}

    /// A compile-time check: a plain field added to the header (or one of these turned back
    /// into a plain integer) fails to build this test. The destructuring names every field,
    /// so a new one must be listed here too.
    #[test]
    fn every_header_field_is_an_atomic() {
        let zeroed = [0u64; size_of::<Header>() / 8];
        // SAFETY: Header is repr(C), atomics only (as this test checks), 8-aligned like the
        // array, exactly its size, and all-zero is a valid value of every atomic.
        let h = unsafe { &*zeroed.as_ptr().cast::<Header>() };
        let Header {
            magic,
            lanes,
            cars,
            state,
            max,
            over,
        } = h;
        shared(magic);
        shared(lanes);
        shared(cars);
        shared(state);
        shared(max);
        shared(over);
        assert_eq!(size_of::<Header>(), 32, "the event log starts 8-aligned");
    }

    /// A car that opens the board between its creator's `ftruncate` and its header (the
    /// instant made certain: the test is that creator) finds no magic and is refused, never
    /// believes a K or an N of 0; once the header is stamped, it opens.
    #[test]
    fn a_board_caught_before_its_header_is_written_is_refused() {
        let name = names::posix_name(&names::unique("t-board"));
        let len = size_for(3).expect("size");
        let fd = shm_open(
            name.as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .expect("shm_open");
        let _unlink = Unlink::new(Object::Shm(name.clone()));
        ftruncate(&fd, libc::off_t::try_from(len).expect("len")).expect("ftruncate");
        let creator = Board::map(&fd, len, &name).expect("map");
        let early = Board::open(&name).err().expect("refused");
        assert!(
            early.to_string().ends_with("not a sem-demo board"),
            "{early}"
        );
        creator.stamp(2, 3);
        let car = Board::open(&name).expect("stamped");
        assert_eq!((car.lanes(), car.cars()), (2, 3));
    }
}
