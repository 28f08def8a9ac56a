//! Keys: DEL, EXISTS, TYPE, KEYS, SCAN; and their time to live: EXPIRE, PEXPIRE, TTL, PTTL,
//! PERSIST.

use std::time::{Duration, Instant};

use crate::kv::protocol;
use crate::kv::store::glob_match;

use super::{Call, is};

pub(super) fn del(c: &mut Call<'_>, a: &[&[u8]]) {
    let n = a.iter().filter(|k| c.store().remove(k)).count();
    c.integer(n as i64);
}

pub(super) fn exists(c: &mut Call<'_>, a: &[&[u8]]) {
    // Counted once per mention, as in Redis: EXISTS k k is 2.
    let n = a.iter().filter(|k| c.store().contains(k)).count();
    c.integer(n as i64);
}

pub(super) fn type_(c: &mut Call<'_>, a: &[&[u8]]) {
    let kind = if c.store().contains(a[0]) {
        "string"
    } else {
        "none"
    };
    protocol::simple(c.out, kind);
}

pub(super) fn keys(c: &mut Call<'_>, a: &[&[u8]]) {
    let Call { state, out, .. } = c;
    let found: Vec<&[u8]> = state.store.keys().filter(|k| glob_match(a[0], k)).collect();
    protocol::array_len(out, found.len());
    for k in found {
        protocol::bulk(out, k);
    }
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: see
/// [`Store::scan`](crate::kv::store::Store::scan) for what the cursor promises. COUNT is how
/// many keys to look at, so with MATCH a step may return fewer (even none) before the scan is
/// complete; only cursor 0 says it is.
pub(super) fn scan(c: &mut Call<'_>, a: &[&[u8]]) {
    let Some(cursor) = std::str::from_utf8(a[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return c.error("ERR invalid cursor");
    };
    let (mut pattern, mut count, mut strings) = (None, 10, true);
    let mut opts = a[1..].iter();
    while let Some(&opt) = opts.next() {
        let Some(&value) = opts.next() else {
            return c.syntax_error();
        };
        if is(opt, "MATCH") {
            pattern = Some(value);
        } else if is(opt, "COUNT") {
            match protocol::parse_decimal(value) {
                Some(n) if n >= 1 => count = usize::try_from(n).unwrap_or(usize::MAX),
                Some(_) => return c.syntax_error(),
                None => return c.not_an_integer(),
            }
        } else if is(opt, "TYPE") {
            // Every value here is a string.
            strings = is(value, "string");
        } else {
            return c.syntax_error();
        }
    }
    let Call { state, out, .. } = c;
    let (next, mut found) = state.store.scan(cursor, count);
    found.retain(|k| strings && pattern.is_none_or(|p| glob_match(p, k)));
    protocol::array_len(out, 2);
    let mut digits = Vec::new();
    protocol::decimal(&mut digits, i64::try_from(next).unwrap_or(i64::MAX));
    protocol::bulk(out, &digits);
    protocol::array_len(out, found.len());
    for k in found {
        protocol::bulk(out, k);
    }
}

// ---------------------------------------------------------------------------------------
// Expiry

/// The instant `amount` units of `unit_ms` milliseconds from now: Ok(None) if `amount` is not
/// positive, Err if it is not an integer or too far away.
pub(super) fn deadline_in(amount: &[u8], unit_ms: u64) -> Result<Option<Instant>, ()> {
    let n = protocol::parse_decimal(amount).ok_or(())?;
    if n <= 0 {
        return Ok(None);
    }
    let ms = n.unsigned_abs().checked_mul(unit_ms).ok_or(())?;
    Instant::now()
        .checked_add(Duration::from_millis(ms))
        .map(Some)
        .ok_or(())
}

pub(super) fn expire(c: &mut Call<'_>, a: &[&[u8]]) {
    expire_in(c, a, 1000, "expire");
}

pub(super) fn pexpire(c: &mut Call<'_>, a: &[&[u8]]) {
    expire_in(c, a, 1, "pexpire");
}

/// EXPIRE and PEXPIRE: 1 if the key exists and now has the deadline. A deadline that is not
/// in the future deletes the key at once, as in Redis.
fn expire_in(c: &mut Call<'_>, a: &[&[u8]], unit_ms: u64, name: &str) {
    if protocol::parse_decimal(a[1]).is_none() {
        return c.not_an_integer();
    }
    match deadline_in(a[1], unit_ms) {
        Ok(Some(at)) => {
            let set = c.store().set_deadline(a[0], Some(at));
            c.bool(set);
        }
        Ok(None) => {
            let removed = c.store().remove(a[0]);
            c.bool(removed);
        }
        Err(()) => c.error(&format!("ERR invalid expire time in '{name}' command")),
    }
}

pub(super) fn ttl(c: &mut Call<'_>, a: &[&[u8]]) {
    // Whole seconds, rounded as Redis rounds them.
    let left = time_left_ms(c, a[0]);
    c.integer(if left < 0 { left } else { (left + 500) / 1000 });
}

pub(super) fn pttl(c: &mut Call<'_>, a: &[&[u8]]) {
    let left = time_left_ms(c, a[0]);
    c.integer(left);
}

/// Milliseconds until `key` expires; -1 if it has no deadline, -2 if there is no such key.
fn time_left_ms(c: &mut Call<'_>, key: &[u8]) -> i64 {
    match c.store().deadline(key) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            let left = at.saturating_duration_since(Instant::now());
            i64::try_from(left.as_millis()).unwrap_or(i64::MAX)
        }
    }
}

pub(super) fn persist(c: &mut Call<'_>, a: &[&[u8]]) {
    let had = matches!(c.store().deadline(a[0]), Some(Some(_)));
    if had {
        c.store().set_deadline(a[0], None);
    }
    c.bool(had);
}
