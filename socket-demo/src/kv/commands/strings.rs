//! Strings: GET, SET and its options, SETNX, GETSET, MGET, MSET, APPEND, STRLEN, and the
//! counters INCR, DECR, INCRBY, DECRBY.

use crate::kv::protocol;
use crate::kv::store::Ttl;

use super::keys::deadline_in;
use super::{Call, is};

/// The longest value APPEND may build: what our own client accepts in a reply. Requests are
/// bounded by the parser; this bounds what many of them can add up to in one key.
const MAX_VALUE: usize = protocol::MAX_REPLY_BULK;

pub(super) fn get(c: &mut Call<'_>, a: &[&[u8]]) {
    let Call {
        state,
        session,
        out,
        ..
    } = c;
    match state.store.get(a[0]) {
        Some(v) => protocol::bulk(out, v),
        None => protocol::nil(out, session.resp),
    }
}

/// SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]
pub(super) fn set(c: &mut Call<'_>, a: &[&[u8]]) {
    let (key, value) = (a[0], a[1]);
    if a.len() == 2 {
        // The common case first: no options.
        c.store().set(key, value, Ttl::Clear);
        c.ok();
        return;
    }
    let (mut nx, mut xx, mut get, mut ttl) = (false, false, false, None);
    let mut opts = a[2..].iter();
    while let Some(&opt) = opts.next() {
        if is(opt, "NX") && !xx {
            nx = true;
        } else if is(opt, "XX") && !nx {
            xx = true;
        } else if is(opt, "GET") {
            get = true;
        } else if is(opt, "KEEPTTL") && ttl.is_none() {
            ttl = Some(Ttl::Keep);
        } else if (is(opt, "EX") || is(opt, "PX")) && ttl.is_none() {
            let Some(&amount) = opts.next() else {
                return c.syntax_error();
            };
            let unit = if is(opt, "EX") { 1000 } else { 1 };
            match deadline_in(amount, unit) {
                Ok(Some(at)) => ttl = Some(Ttl::At(at)),
                Ok(None) | Err(()) => {
                    return c.error("ERR invalid expire time in 'set' command");
                }
            }
        } else {
            return c.syntax_error();
        }
    }
    let exists = c.store().contains(key);
    let old = if get {
        c.store().get(key).map(<[u8]>::to_vec)
    } else {
        None
    };
    let write = !(nx && exists || xx && !exists);
    if write {
        c.store().set(key, value, ttl.unwrap_or(Ttl::Clear));
    }
    if get {
        c.bulk_or_nil(old.as_deref());
    } else if write {
        c.ok();
    } else {
        c.nil();
    }
}

pub(super) fn setnx(c: &mut Call<'_>, a: &[&[u8]]) {
    let fresh = !c.store().contains(a[0]);
    if fresh {
        c.store().set(a[0], a[1], Ttl::Clear);
    }
    c.bool(fresh);
}

pub(super) fn getset(c: &mut Call<'_>, a: &[&[u8]]) {
    let old = c.store().get(a[0]).map(<[u8]>::to_vec);
    c.store().set(a[0], a[1], Ttl::Clear);
    c.bulk_or_nil(old.as_deref());
}

pub(super) fn mget(c: &mut Call<'_>, a: &[&[u8]]) {
    let Call {
        state,
        session,
        out,
        ..
    } = c;
    protocol::array_len(out, a.len());
    for key in a {
        match state.store.get(key) {
            Some(v) => protocol::bulk(out, v),
            None => protocol::nil(out, session.resp),
        }
    }
}

pub(super) fn mset(c: &mut Call<'_>, a: &[&[u8]]) {
    if a.len() % 2 != 0 {
        c.error("ERR wrong number of arguments for 'mset' command");
        return;
    }
    for pair in a.chunks_exact(2) {
        c.store().set(pair[0], pair[1], Ttl::Clear);
    }
    c.ok();
}

pub(super) fn append(c: &mut Call<'_>, a: &[&[u8]]) {
    let (key, more) = (a[0], a[1]);
    let len = match c.store().get_mut(key) {
        Some(v) if v.len() + more.len() > MAX_VALUE => {
            return c.error(&format!(
                "ERR string exceeds maximum allowed size ({MAX_VALUE} bytes)"
            ));
        }
        Some(v) => {
            v.extend_from_slice(more);
            v.len()
        }
        None => {
            c.store().set(key, more, Ttl::Clear);
            more.len()
        }
    };
    c.integer(len as i64);
}

pub(super) fn strlen(c: &mut Call<'_>, a: &[&[u8]]) {
    let len = c.store().get(a[0]).map_or(0, <[u8]>::len);
    c.integer(len as i64);
}

pub(super) fn incr(c: &mut Call<'_>, a: &[&[u8]]) {
    incr_by(c, a[0], 1);
}

pub(super) fn decr(c: &mut Call<'_>, a: &[&[u8]]) {
    incr_by(c, a[0], -1);
}

pub(super) fn incrby(c: &mut Call<'_>, a: &[&[u8]]) {
    match protocol::parse_decimal(a[1]) {
        Some(n) => incr_by(c, a[0], n),
        None => c.not_an_integer(),
    }
}

pub(super) fn decrby(c: &mut Call<'_>, a: &[&[u8]]) {
    match protocol::parse_decimal(a[1]).map(i64::checked_neg) {
        Some(Some(n)) => incr_by(c, a[0], n),
        Some(None) => c.error("ERR decrement would overflow"),
        None => c.not_an_integer(),
    }
}

/// Add `delta` to the integer stored at `key` (0 if there is none), keeping its deadline.
fn incr_by(c: &mut Call<'_>, key: &[u8], delta: i64) {
    let Call { state, out, .. } = c;
    let next = match state.store.get_mut(key) {
        // Strict like Redis (no "+1", " 1", "01" or "-0"), so that the value stored always
        // reads back as the same string.
        Some(v) => match protocol::parse_decimal(v).map(|n| n.checked_add(delta)) {
            Some(Some(next)) => {
                v.clear();
                protocol::decimal(v, next);
                next
            }
            Some(None) => return protocol::error(out, "ERR increment or decrement would overflow"),
            None => return protocol::error(out, "ERR value is not an integer or out of range"),
        },
        None => {
            let mut digits = Vec::new();
            protocol::decimal(&mut digits, delta);
            state.store.set(key, &digits, Ttl::Clear);
            delta
        }
    };
    protocol::integer(out, next);
}
