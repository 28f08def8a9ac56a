//! The demo's worker processes (also used by the tests): writers that put rounds of
//! self-checking values to their own keys, readers that get random keys and check each
//! value's checksum. Each is a real process mapping the segment on its own.
//!
//! A value is `w<I> k<J> r<R> <filler> sum=<16 hex digits>`, about 100 bytes, where the sum is
//! the FNV-1a 64 hash of everything before ` sum=`. A torn read (half of one round's value and
//! half of another's) fails the sum; a value under the wrong key fails the prefix.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::sysv_key::fnv1a64;
use common::{Result, say};

use crate::cli::{ReaderArgs, WriterArgs};
use crate::client;

/// The key of writer `id`'s `j`th key.
pub fn key_for(id: u32, j: u32) -> String {
    format!("w{id}-k{j}")
}

/// The value writer `id` puts under its `j`th key in round `r`.
pub fn value_for(id: u32, j: u32, r: u64) -> Vec<u8> {
    let mut v = format!("w{id} k{j} r{r} ").into_bytes();
    // Filler that differs from round to round, so a torn copy differs from both rounds.
    let mut x = fnv1a64(&v) | 1;
    while v.len() < 76 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    let sum = fnv1a64(&v);
    v.extend_from_slice(format!(" sum={sum:016x}").as_bytes());
    v
}

/// True if `value` is whole (its sum holds) and belongs under `key`.
pub fn value_ok(key: &str, value: &[u8]) -> bool {
    let Some(at) = value.len().checked_sub(21) else {
        return false;
    };
    let (body, tail) = value.split_at(at);
    let want = format!(" sum={:016x}", fnv1a64(body));
    let (id_j, _) = key.split_once("-k").unwrap_or(("", ""));
    let prefix = format!("{} k{} ", id_j, &key[id_j.len() + 2..]);
    tail == want.as_bytes() && body.starts_with(prefix.as_bytes())
}

/// `shm-demo writer`: rounds of puts until the time is up; the last round is whole.
pub fn writer(args: &WriterArgs) -> Result<ExitCode> {
    let (mut db, _) = client::open(&args.db)?;
    let keys: Vec<String> = (0..args.keys).map(|j| key_for(args.id, j)).collect();
    let end = Instant::now() + Duration::from_millis(args.duration_ms);
    let (mut rounds, mut puts) = (0u64, 0u64);
    while rounds == 0 || Instant::now() < end {
        rounds += 1;
        for (j, key) in keys.iter().enumerate() {
            // One lock per put, as independent clients would do.
            db.lock()?
                .put(key.as_bytes(), &value_for(args.id, j as u32, rounds))?;
            puts += 1;
        }
        // -v narrates the first round; the rest are the same calls again.
        db.quiet = true;
    }
    say!("done: rounds {rounds} puts {puts}")?;
    Ok(ExitCode::SUCCESS)
}

/// `shm-demo reader`: random gets until the time is up, every value checked.
pub fn reader(args: &ReaderArgs) -> Result<ExitCode> {
    let (db, _) = client::open(&args.db)?;
    let keys: Vec<String> = (0..args.writers)
        .flat_map(|w| (0..args.keys).map(move |j| key_for(w, j)))
        .collect();
    let end = Instant::now() + Duration::from_millis(args.duration_ms);
    let mut x = u64::from(std::process::id()) | 1;
    let (mut gets, mut found, mut bad) = (0u64, 0u64, 0u64);
    let mut value = Vec::new();
    while gets == 0 || Instant::now() < end {
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = &keys[(x % keys.len() as u64) as usize];
            gets += 1;
            if db.get(key.as_bytes(), &mut value)? {
                found += 1;
                if !value_ok(key, &value) {
                    bad += 1;
                    eprintln!(
                        "shm-demo reader: checksum failure under {key}: {}",
                        common::out::escape(&value)
                    );
                }
            }
        }
    }
    say!("done: gets {gets} found {found} checksum failures {bad}")?;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_check_themselves() {
        let v = value_for(3, 17, 42);
        assert!(v.len() >= 90 && v.len() <= 110, "{}", v.len());
        assert!(value_ok("w3-k17", &v));
        assert!(!value_ok("w3-k1", &v));
        let mut torn = v.clone();
        torn[..40].copy_from_slice(&value_for(3, 17, 43)[..40]);
        assert!(!value_ok("w3-k17", &torn));
        assert!(!value_ok("w3-k17", b"short"));
    }
}
