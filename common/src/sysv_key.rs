//! System V IPC keys for named objects, and the FNV-1a hash they come from.
//!
//! A System V object (a semaphore set, a message queue, a shared memory segment) has no name:
//! it is found by a numeric `key_t`, then used by the id `semget`/`msgget`/`shmget` return.
//! The demos give their objects names, as POSIX does, so each name needs a key, and every
//! key we use needs to be recognisable as ours, so that `make clean-ipc` removes our
//! leftovers and nobody else's.
//!
//! # The key range: `0x1dc0xxxx`
//!
//! Every key made here is [`KEY_BASE`] (`0x1dc0_0000`) with 16 bits below it: the low 16 bits
//! of the 64-bit FNV-1a hash of the name ([`key_for`]). `common/clean-ipc.sh` sweeps this
//! range (and only objects our uid created, that no live process uses). The range is a
//! convention, not a reservation: another program may use keys in it, which is one more
//! reason every user checks what it finds (below).
//!
//! shm-demo's `--sysv` segments are keyed by `ftok(3)` instead, `0x1d` in the top byte, the
//! low byte of the key file's device number, then 16 bits of its inode: `0x1dDDIIII`. On a
//! filesystem whose device number ends in `0xc0` those keys fall in our range too; the checks
//! below cover them like any other collision.
//!
//! # Collisions, and what each user must do about them
//!
//! Sixteen bits is 65 536 keys. Two given names share a key with probability 1/65 536; among
//! `n` names alive at once (tests running in parallel, several users' demos) some pair does
//! with probability about n²/131 072: 0.3 % for 20 names, 7 % for 100. So no user may assume
//! that the object at its key is its own, and the workspace does one of two things:
//!
//! - **Create exclusively, and probe on a clash** (mqueue-demo): `msgget(key, IPC_CREAT |
//!   IPC_EXCL)`; on EEXIST try the next key of [`probe`]; then record the *id* where the
//!   other roles find it (a file beside the pid file) and never look the key up again.
//! - **Record whose it is, and check** (sem-demo; shm-demo's header for ftok's keys): the
//!   object stores 30 more bits of the name's hash ([`check_values`]), and a process that
//!   finds an object at its key refuses it unless they match. Key and check together are 46
//!   bits: two live names that pass for each other are a one-in-10^13 event.
//!
//! # Why FNV-1a
//!
//! Simple, stable across Rust versions and machines (std's `DefaultHasher` is neither
//! promised nor seeded the same everywhere), and well spread in its low bits for short
//! strings. The keys are not secret and need no keyed hash: only our own uid can create an
//! object that our checks accept (every object is created 0600 and its owner is checked).
//! [`fnv1a64`] is also shm-demo's checksum of its snapshots and values.

/// The top 16 bits of every key this workspace derives from a name (`common/clean-ipc.sh`
/// sweeps `0x1dc0xxxx`).
pub const KEY_BASE: libc::key_t = 0x1dc0_0000;

/// FNV-1a, 64 bits (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The key for `name`: [`KEY_BASE`] | the low 16 bits of its [`fnv1a64`].
pub fn key_for(name: &str) -> libc::key_t {
    in_range(fnv1a64(name.as_bytes()))
}

/// The keys to try, in order, for a creator that takes the next free key on a clash (see
/// the module docs): [`key_for`] first, then the following keys of the range, wrapping
/// around, each once.
pub fn probe(name: &str) -> impl Iterator<Item = libc::key_t> {
    let start = fnv1a64(name.as_bytes());
    (0..=0xffff_u64).map(move |i| in_range(start.wrapping_add(i)))
}

/// Two more 15-bit pieces of `name`'s hash (bits 16..31 and 31..46), for an object to
/// record and an opener to check (see the module docs). Fifteen bits each because a SysV
/// semaphore holds at most 32 767 (SEMVMX).
pub fn check_values(name: &str) -> [u16; 2] {
    let h = fnv1a64(name.as_bytes());
    let piece = |shift: u32| u16::try_from((h >> shift) & 0x7fff).unwrap_or(0);
    [piece(16), piece(31)]
}

/// True if `key` is in our range, `0x1dc0xxxx`.
pub fn is_ours(key: libc::key_t) -> bool {
    key & !0xffff == KEY_BASE
}

/// [`KEY_BASE`] | the low 16 bits of `h`.
fn in_range(h: u64) -> libc::key_t {
    // Sixteen bits fit any key_t.
    KEY_BASE | libc::key_t::try_from(h & 0xffff).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a", "foobar".
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_are_ours_stable_and_differ_by_name() {
        let k = key_for("build");
        assert!(is_ours(k), "{k:#x}");
        assert_eq!(k & 0xffff, (fnv1a64(b"build") & 0xffff) as libc::key_t);
        assert_eq!(key_for("build"), k);
        assert_ne!(key_for("build"), key_for("build2"));
        assert!(!is_ours(0x1dc1_0000) && !is_ours(0x0dc0_0001));
    }

    #[test]
    fn the_probe_starts_at_the_key_and_visits_every_key_of_the_range_once() {
        let keys: Vec<_> = probe("tasks").collect();
        assert_eq!(keys[0], key_for("tasks"));
        assert_eq!(keys.len(), 65_536);
        assert!(keys.iter().all(|&k| is_ours(k)));
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), 65_536);
    }

    #[test]
    fn check_values_fit_a_semaphore_and_are_the_bits_after_the_key() {
        let h = fnv1a64(b"build");
        let [a, b] = check_values("build");
        assert!(a <= 32_767 && b <= 32_767);
        assert_eq!(u64::from(a), (h >> 16) & 0x7fff);
        assert_eq!(u64::from(b), (h >> 31) & 0x7fff);
    }
}
