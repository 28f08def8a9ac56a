//! The demo's workload: the keys its writers own and the self-checking values they put,
//! which its readers check.
//!
//! A value is `w<I> k<J> r<R> <filler> sum=<16 hex digits>`, about 100 bytes, where the sum is
//! the FNV-1a 64 hash of everything before ` sum=`. A torn read (half of one round's value and
//! half of another's) fails the sum; a value under the wrong key fails the prefix.

use common::sysv_key::fnv1a64;

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
