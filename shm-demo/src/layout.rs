//! The segment's layout: what lies at which offset, and the checks that every process runs
//! on it before trusting a byte.
//!
//! The segment is shared with other processes, so it is *input*: another process (a buggy
//! one, a foreign one, one that died mid-write) may have put anything in it. Every size,
//! index and offset read from it is checked here before it is used; the length of the
//! mapping comes from `fstat` (or `IPC_STAT`), never from the header.
//!
//! All integers are little-endian (the machine's order: the segment never leaves the
//! machine, and the layout version covers the ABI through the mutex size).
//!
//! # What protects you: the owner and the mode, not these checks
//!
//! The checks make a *reader* safe from whatever the records hold: a reader touches the
//! segment only through bounds-checked atomic loads, and a damaged record is an error, never
//! an out-of-bounds access. That is not true of the writers' mutex. Its bytes (offset 128)
//! are glibc's `pthread_mutex_t`, and a robust mutex is kept on its owner's *robust list*: a
//! linked list through the mutexes a thread holds, whose `next`/`prev` pointers glibc stores
//! in the mutex itself (`__list`, bytes 24..40 of it on x86-64) and writes *through* when it
//! unlocks. Those pointers are addresses in the locking process. A process that can write
//! the segment can therefore aim the next writer's unlock at any address of that writer's
//! memory, and the kernel reads the same list when a thread dies. So every process that
//! locks the mutex (`put`, `del`, the server) must trust every process that can write the
//! segment.
//!
//! The boundary that gives that trust is the object's owner and mode: the server creates it
//! 0600 (`O_EXCL`, or `IPC_EXCL` with `--sysv`), and every process checks, before it maps
//! anything, that it is a regular object owned by its own uid with mode 0600 (`fstat`, or
//! `IPC_STAT`'s `shm_perm`). Only processes of the same user (and root) can open it, and they
//! can already write each other's memory through `ptrace` or `/proc/PID/mem`. Do not make
//! the object group- or world-writable, and do not share it with a process you would not
//! give your own uid: "a hostile writer cannot hurt a reader" holds for the records, not for
//! the mutex, which no writer of another trust level should ever lock.
//!
//! # Header (offsets in bytes from the start of the segment)
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `b"SHMKVDB\0"` |
//! | 8 | 4 | layout version, [`VERSION`] |
//! | 12 | 4 | header size: `round_up(192 + record_size, 64)` |
//! | 16 | 8 | total size: header size + slots × record size |
//! | 24 | 4 | slots (records in the hash table) |
//! | 28 | 4 | key max (bytes) |
//! | 32 | 4 | value max (bytes) |
//! | 36 | 4 | record size: `32 + round_up(key max, 8) + round_up(value max, 8)` |
//! | 40 | 4 | creator pid |
//! | 44 | 4 | `sizeof(pthread_mutex_t)` of the creator (40 on x86-64 glibc): an ABI check |
//! | 48 | 8 | creator start time (clock ticks after boot, field 22 of `/proc/PID/stat`) |
//! | 56 | 8 | moves: +1 before and +1 after each record a delete moves (see below) |
//! | 64 | 8 | generation: +1 per committed put or del |
//! | 72 | 4 | records in use |
//! | 76 | 4 | undo slot: 0, or 1 + the slot whose old image is in the undo record |
//! | 80 | 4 | hole: 0, or 1 + the slot a delete in progress is about to fill (see below) |
//! | 84 | 4 | the home slot of the key that delete removes (whose watchers it wakes) |
//! | 88 | 4 | removed: 1 once the name is gone (watchers exit, writers refuse) |
//! | 92 | 4 | reserved (zero) |
//! | 96 | 8 | name hash: [`name_hash`] of the database's name, checked by every opener |
//! | 104 | 24 | reserved (zero) |
//! | 128 | 64 | the writers' mutex: a robust, process-shared `pthread_mutex_t` |
//! | 192 | record size | the undo record: the image of the record being written, for repair |
//!
//! # Record (offsets from the start of record `i`, at `header size + i × record size`)
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | sequence: odd while a writer is changing the record, +2 per write |
//! | 8 | 4 | notify: the futex word `watch` waits on (see below) |
//! | 12 | 4 | state: 0 empty, 1 live, 2 dropped by a repair (see below) |
//! | 16 | 8 | hash of the key ([`key_hash`]: word-wise multiply-mix, then MurmurHash3's `fmix64`) |
//! | 24 | 4 | key length |
//! | 28 | 4 | value length |
//! | 32 | key max, rounded up to 8 | key bytes |
//! | 32 + that | value max, rounded up to 8 | value bytes (binary-safe) |
//!
//! A key's home slot is `(hash * slots) >> 64` (the high bits of a 128-bit product); it lives
//! there or in the next slots (linear probing), so a lookup is O(1) expected and stops at the
//! first empty slot.
//!
//! A record's notify word counts, in its bits 0-30, the changes to keys whose *home* slot is
//! this one; bit 31 is set while a watcher waits on it (see `db/notify.rs`). The header's
//! `moves` is odd while a delete moves a record; `removed` is set once the database's name is
//! gone (its server stopped, or `destroy`), and from then on watchers exit and writers
//! refuse; the name hash is written when the object is made, before anyone can find it
//! initialised.
//!
//! # Deletion: backward shift, no tombstones
//!
//! A delete leaves no marker behind (a table of tombstones makes every miss and every put
//! scan the whole table). A lookup stops at the first empty slot, so every slot between a
//! key's home and the key must stay occupied; emptying the deleted key's slot would cut off
//! the keys after it whose probe passes over it. So that slot becomes the *hole*, and the
//! delete walks the run of occupied slots after it: a record whose probe path (from its home
//! to where it lies) passes over the hole is copied into it, and its old slot becomes the
//! hole; the first empty slot ends the walk (or the hole itself, met again in a table with
//! no empty slot), and the last hole is emptied. (Knuth's Algorithm R, TAOCP vol. 3, 6.4.)
//! Every key stays reachable from its home, and deleting everything leaves an empty table.
//!
//! Readers take no lock while this happens. A move copies a record *before* its old slot is
//! overwritten, so a key present all along is at worst in two slots at once, and both copies
//! hold its value (the delete holds the mutex throughout, so no put changes it meanwhile);
//! each copy is read under its own sequence count, so a hit is a whole record of that key.
//! What a reader can be fooled by is a miss: it reads slot 5 before a key is moved from 6
//! to 5, and slot 6 after, and never sees the key. So each move is bracketed by the `moves`
//! count (odd during the move, as a record's sequence count is during a write), and a reader
//! trusts a miss only if `moves` held the same value before and after its probe; otherwise
//! it probes again. With no move in between, the slots it read are one arrangement of the
//! table, in which every key is reachable. `list` does the same for a whole scan.
//!
//! The `hole` field says where a delete in progress stands, updated after each move: a
//! writer killed in the middle of one leaves it set, and the next writer (which gets the
//! mutex with EOWNERDEAD) finishes the delete from there, and wakes the watchers of the
//! deleted key's home slot, which the header keeps for that. State 2 marks a record that such a
//! repair found half-written with no undo image (which this program's writers never leave):
//! lookups pass over it and a put may reuse its slot.

use std::mem::size_of;

use common::{Error, Result};

/// The first 8 bytes of every segment.
pub const MAGIC: [u8; 8] = *b"SHMKVDB\0";
/// The layout version this program reads and writes.
pub const VERSION: u32 = 2;

/// Keys are at most this long unless a segment says otherwise.
pub const KEY_MAX: u32 = 64;
/// Values are at most this long unless `--value-max` says otherwise.
pub const VALUE_MAX: u32 = 1024;
/// The largest `--slots`: 4 Mi records.
pub const SLOTS_LIMIT: u32 = 1 << 22;
/// The largest key max a segment may declare.
pub const KEY_LIMIT: u32 = 1024;
/// The largest value max a segment may declare: 1 MiB.
pub const VALUE_LIMIT: u32 = 1 << 20;
/// The largest segment: 4 GiB. A header claiming more is refused before anything is mapped
/// past the object's real size.
pub const TOTAL_LIMIT: u64 = 1 << 32;

pub const H_MAGIC: usize = 0;
pub const H_VERSION: usize = 8;
pub const H_HEADER_SIZE: usize = 12;
pub const H_TOTAL: usize = 16;
pub const H_SLOTS: usize = 24;
pub const H_KEY_MAX: usize = 28;
pub const H_VALUE_MAX: usize = 32;
pub const H_RECORD_SIZE: usize = 36;
pub const H_CREATOR_PID: usize = 40;
pub const H_MUTEX_SIZE: usize = 44;
pub const H_CREATOR_START: usize = 48;
pub const H_MOVES: usize = 56;
pub const H_GENERATION: usize = 64;
pub const H_USED: usize = 72;
pub const H_UNDO_SLOT: usize = 76;
pub const H_HOLE: usize = 80;
pub const H_HOLE_HOME: usize = 84;
pub const H_REMOVED: usize = 88;
pub const H_NAME_HASH: usize = 96;
pub const H_MUTEX: usize = 128;
/// Room reserved for the mutex; glibc's is 40 bytes on 64-bit targets.
pub const MUTEX_ROOM: usize = 64;
pub const H_UNDO: usize = 192;
/// The part of the header before the undo record: what must be mapped to read the rest.
pub const FIXED_HEADER: usize = H_UNDO;

pub const R_SEQ: usize = 0;
pub const R_NOTIFY: usize = 8;
pub const R_STATE: usize = 12;
pub const R_HASH: usize = 16;
pub const R_KEY_LEN: usize = 24;
pub const R_VALUE_LEN: usize = 28;
pub const R_KEY: usize = 32;

/// Record states.
pub const EMPTY: u32 = 0;
pub const LIVE: u32 = 1;
/// A record a repair found half-written with no undo image to restore (see the module docs).
pub const DROPPED: u32 = 2;

/// The dimensions of a segment, from which every offset follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub slots: u32,
    pub key_max: u32,
    pub value_max: u32,
    pub record_size: usize,
    pub header_size: usize,
    pub total_size: usize,
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Geometry {
    /// The geometry for these limits, or a one-line reason why it cannot be.
    pub fn new(slots: u32, key_max: u32, value_max: u32) -> Result<Geometry> {
        if !(1..=SLOTS_LIMIT).contains(&slots) {
            return Err(Error::msg(format!(
                "slots {slots}: must be 1..={SLOTS_LIMIT}"
            )));
        }
        if !(1..=KEY_LIMIT).contains(&key_max) {
            return Err(Error::msg(format!(
                "key max {key_max}: must be 1..={KEY_LIMIT}"
            )));
        }
        if !(1..=VALUE_LIMIT).contains(&value_max) {
            return Err(Error::msg(format!(
                "value max {value_max}: must be 1..={VALUE_LIMIT}"
            )));
        }
        // Within these limits nothing overflows a u64; the total is checked against
        // TOTAL_LIMIT so that it also fits a 32-bit usize's worth of address space checks.
        let record_size = R_KEY + round_up(key_max as usize, 8) + round_up(value_max as usize, 8);
        let header_size = round_up(H_UNDO + record_size, 64);
        let total = header_size as u64 + u64::from(slots) * record_size as u64;
        if total > TOTAL_LIMIT {
            return Err(Error::msg(format!(
                "{slots} slots of {record_size} bytes make {total} bytes, over the \
                 {TOTAL_LIMIT}-byte limit"
            )));
        }
        let total_size = usize::try_from(total).map_err(|_| {
            Error::msg(format!(
                "{total} bytes do not fit this machine's address space"
            ))
        })?;
        Ok(Geometry {
            slots,
            key_max,
            value_max,
            record_size,
            header_size,
            total_size,
        })
    }

    /// The offset of record `slot` (which the caller has checked is `< slots`).
    pub fn record(&self, slot: u32) -> usize {
        debug_assert!(slot < self.slots);
        self.header_size + slot as usize * self.record_size
    }

    /// The offset of a record's value bytes, relative to the record.
    pub fn value_off(&self) -> usize {
        R_KEY + round_up(self.key_max as usize, 8)
    }

    /// The slot where a key with this hash starts its probe: `(hash * slots) >> 64`.
    ///
    /// A multiply-shift (Lemire's range reduction) rather than `hash % slots`: no division,
    /// and it uses the hash's high bits, which [`key_hash`] has mixed well.
    pub fn home(&self, hash: u64) -> u32 {
        // The product of a u64 and a u32 fits a u128; shifted by 64 it is < slots.
        ((u128::from(hash) * u128::from(self.slots)) >> 64) as u32
    }
}

/// The header fields that describe the geometry, as read from a segment.
#[derive(Clone, Copy, Debug)]
pub struct RawHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub total_size: u64,
    pub slots: u32,
    pub key_max: u32,
    pub value_max: u32,
    pub record_size: u32,
    pub mutex_size: u32,
    pub used: u32,
    pub undo_slot: u32,
    pub hole: u32,
}

/// Check a header read from a segment of `len` bytes (from `fstat`/`IPC_STAT`), and return
/// its geometry. `object` names the segment in the error.
pub fn validate(h: &RawHeader, len: usize, object: &str) -> Result<Geometry> {
    let bad = |why: String| Err(Error::msg(format!("{object}: {why}")));
    if h.magic != MAGIC {
        if h.magic == [0; 8] {
            return bad("no database header (all zero: not initialised, or not ours)".into());
        }
        return bad(format!(
            "not a shm-demo database (magic {:?}, expected \"SHMKVDB\\0\")",
            common::out::escape(&h.magic)
        ));
    }
    if h.version != VERSION {
        return bad(format!(
            "layout version {}, this program reads version {VERSION}",
            h.version
        ));
    }
    if h.mutex_size as usize != size_of::<libc::pthread_mutex_t>() {
        return bad(format!(
            "made by a program whose pthread_mutex_t is {} bytes (ours: {}); refusing to use \
             its mutex",
            h.mutex_size,
            size_of::<libc::pthread_mutex_t>()
        ));
    }
    let geo =
        Geometry::new(h.slots, h.key_max, h.value_max).or_else(|e| bad(format!("header: {e}")))?;
    if h.record_size as usize != geo.record_size
        || h.header_size as usize != geo.header_size
        || h.total_size != geo.total_size as u64
    {
        return bad(format!(
            "header sizes disagree (record {} header {} total {}; expected {} {} {})",
            h.record_size,
            h.header_size,
            h.total_size,
            geo.record_size,
            geo.header_size,
            geo.total_size
        ));
    }
    if geo.total_size != len {
        return bad(format!(
            "the header says {} bytes but the object has {len}{}",
            geo.total_size,
            if len < geo.total_size {
                " (truncated?)"
            } else {
                ""
            }
        ));
    }
    if h.used > h.slots || h.undo_slot > h.slots || h.hole > h.slots {
        return bad(format!(
            "header counters out of range (used {}, undo slot {}, hole {} of {} slots)",
            h.used, h.undo_slot, h.hole, h.slots
        ));
    }
    Ok(geo)
}

/// The key hash stored in a record and used to find its home slot.
///
/// The key is taken 8 bytes at a time (little-endian words, the last one zero-padded), each
/// mixed in with a multiplication, and the result goes through MurmurHash3's 64-bit
/// finaliser (`fmix64`), which spreads every input bit over the whole word:
///
/// ```text
/// h = 0x9e3779b97f4a7c15 ^ len
/// for each word w: h = (h ^ w) * 0xff51afd7ed558ccd; h ^= h >> 32
/// h ^= h >> 33; h *= 0xff51afd7ed558ccd; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53; h ^= h >> 33
/// ```
///
/// A word at a time, because every get hashes its key, and a byte-at-a-time hash (FNV-1a)
/// makes that a chain of dependent multiplies as long as the key (BENCHMARKS.md, shm-demo,
/// has what it cost); the finaliser, because a plain FNV-1a crowds keys like `key:000001`,
/// `key:000002`... into a few runs of slots (its high and low bits both depend mostly on the
/// keys' low bits).
/// There is no untrusted party choosing keys to flood a table that only processes of one
/// user can open, so no keyed hash is needed; the Python interop test recomputes this one.
pub fn key_hash(key: &[u8]) -> u64 {
    const M: u64 = 0xff51_afd7_ed55_8ccd;
    let mix = |h: u64, word: u64| {
        let h = (h ^ word).wrapping_mul(M);
        h ^ (h >> 32)
    };
    let mut h = 0x9e37_79b9_7f4a_7c15 ^ key.len() as u64;
    let whole = key.chunks_exact(8);
    let tail = whole.remainder();
    for chunk in whole {
        h = mix(h, u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
    }
    if !tail.is_empty() {
        h = mix(h, le_word(tail));
    }
    h ^= h >> 33;
    h = h.wrapping_mul(M);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Up to 8 bytes as a little-endian word, zero-padded: the way keys and values are packed
/// into the segment's words.
///
/// Built with shifts rather than by copying a short slice into an array: a copy of a length
/// the compiler cannot see becomes a call to `memcpy`, on every get's path (BENCHMARKS.md,
/// shm-demo).
#[inline]
pub fn le_word(chunk: &[u8]) -> u64 {
    if let Ok(whole) = <[u8; 8]>::try_from(chunk) {
        return u64::from_le_bytes(whole);
    }
    // A short chunk (the last of a key or value) in at most three pieces of 4, 2 and 1
    // bytes, rather than a loop over its bytes: a key's last chunk is hashed and compared on
    // every get.
    let (mut w, mut at) = (0, 0);
    if let Some(four) = chunk.get(..4).filter(|_| chunk.len() & 4 != 0) {
        w = u64::from(u32::from_le_bytes(four.try_into().unwrap_or_default()));
        at = 4;
    }
    if let Some(two) = chunk.get(at..at + 2).filter(|_| chunk.len() & 2 != 0) {
        w |= u64::from(u16::from_le_bytes(two.try_into().unwrap_or_default())) << (8 * at);
        at += 2;
    }
    if let Some(&one) = chunk.get(at).filter(|_| chunk.len() & 1 != 0) {
        w |= u64::from(one) << (8 * at);
    }
    w
}

/// The hash of a database's name that its header records: FNV-1a 64 of the name
/// (`/ipc-demo-db`), [`common::sysv_key::fnv1a64`].
///
/// A SysV segment is found by its `ftok` key, which keeps only 24 bits of the key file's
/// device and inode, so the segment at a name's key may belong to another name (as two names
/// can share a key in sem-demo, whose sets record their name's hash the same way). A POSIX
/// object is found by its name, and the hash catches one renamed or copied by hand.
pub fn name_hash(name: &str) -> u64 {
    common::sysv_key::fnv1a64(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_for(geo: &Geometry) -> RawHeader {
        RawHeader {
            magic: MAGIC,
            version: VERSION,
            header_size: geo.header_size as u32,
            total_size: geo.total_size as u64,
            slots: geo.slots,
            key_max: geo.key_max,
            value_max: geo.value_max,
            record_size: geo.record_size as u32,
            mutex_size: size_of::<libc::pthread_mutex_t>() as u32,
            used: 0,
            undo_slot: 0,
            hole: 0,
        }
    }

    #[test]
    fn default_geometry_is_as_documented() {
        let g = Geometry::new(1024, KEY_MAX, VALUE_MAX).unwrap();
        assert_eq!(g.record_size, 32 + 64 + 1024);
        assert_eq!(g.header_size, 1344); // round_up(192 + 1120, 64)
        assert_eq!(g.total_size, 1344 + 1024 * 1120);
        assert_eq!(g.value_off(), 96);
        assert_eq!(g.record(1), 1344 + 1120);
    }

    #[test]
    fn limits_are_enforced() {
        assert!(Geometry::new(0, 64, 10).is_err());
        assert!(Geometry::new(SLOTS_LIMIT + 1, 64, 10).is_err());
        assert!(Geometry::new(10, 64, VALUE_LIMIT + 1).is_err());
        assert!(Geometry::new(SLOTS_LIMIT, KEY_LIMIT, VALUE_LIMIT).is_err());
    }

    #[test]
    fn validation_refuses_each_kind_of_damage() {
        let g = Geometry::new(16, 64, 100).unwrap();
        let good = header_for(&g);
        assert_eq!(validate(&good, g.total_size, "x").unwrap(), g);
        type Damage = fn(&mut RawHeader);
        let cases: [(Damage, &str); 5] = [
            (|h| h.magic = *b"NOTOURS!", "not a shm-demo database"),
            (|h| h.version = 9, "layout version 9"),
            (|h| h.slots = 17, "header sizes disagree"),
            (|h| h.slots = 0, "slots 0"),
            (|h| h.used = 99, "counters out of range"),
        ];
        for (damage, want) in cases {
            let mut h = good;
            damage(&mut h);
            let err = validate(&h, g.total_size, "/x").unwrap_err().to_string();
            assert!(err.starts_with("/x: ") && err.contains(want), "{err}");
        }
        let err = validate(&good, g.total_size - 1, "/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    /// The hashes records hold, as an independent (Python) copy of the documented algorithm
    /// computes them: a change of how the words are read must not change one.
    #[test]
    fn key_hash_keeps_its_values() {
        let cases: [(&[u8], u64); 7] = [
            (b"k", 0xe9aa_f72d_76de_8bf8),
            (b"key:000001", 0xf2af_0c52_bdb6_9566),
            (b"12345678", 0x51e9_237e_6b44_04d2),
            (b"greeting", 0x94b0_2607_a045_2139),
            (b"w3-k17", 0x916d_6373_3478_ade0),
            (&[b'a'; 64], 0x5bf3_ad28_3bc3_877d),
            (
                &[
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                    23,
                ],
                0x911b_4d8d_1476_8a36,
            ),
        ];
        for (key, want) in cases {
            assert_eq!(key_hash(key), want, "{key:?}");
        }
    }

    /// A short chunk packs as its bytes one by one would, for every length.
    #[test]
    fn le_word_packs_every_length_little_endian() {
        let bytes = [0x81, 0x02, 0xf3, 0x04, 0x75, 0x06, 0xa7, 0x08];
        for len in 0..=8 {
            let chunk = &bytes[..len];
            let want = chunk
                .iter()
                .enumerate()
                .fold(0, |w, (i, &b)| w | u64::from(b) << (8 * i));
            assert_eq!(le_word(chunk), want, "{len} bytes");
        }
    }

    #[test]
    fn key_hash_spreads_sequential_keys() {
        let g = Geometry::new(4096, 64, 100).unwrap();
        let mut used = std::collections::HashSet::new();
        for i in 0..1000 {
            used.insert(g.home(key_hash(format!("key:{i:06}").as_bytes())));
        }
        // Random placement of 1000 keys in 4096 slots leaves about 885 distinct homes.
        assert!(used.len() > 850, "{} distinct home slots", used.len());
    }
}
