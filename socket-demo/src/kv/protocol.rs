//! The wire format every role shares: a subset of RESP2 and RESP3, the Redis protocol.
//!
//! Requests live in [`request`] (parsed by the server, encoded by the client), replies in
//! [`reply`] (written by the server, parsed by the client); this module holds the limits and
//! the line and number parsing both share.
//!
//! Speaking Redis's protocol means clients nobody here wrote can talk to our server:
//! `redis-cli`, `redis-benchmark`, a Python one-liner, or a person typing into `nc -U`.
//!
//! # Requests
//!
//! A request is either an *inline command*, one line of words as a person types it
//! (`SET k v\r\n`, or just `\n`-terminated), or a *multibulk array*, which is what real
//! clients send because it can carry any bytes:
//!
//! ```text
//! *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n
//! ```
//!
//! [`parse`] is incremental: given the bytes received so far it answers
//! [`Parse::Complete`] (a request and how many bytes it used), [`Parse::Incomplete`] (read
//! more, then call again with the old bytes plus the new), or [`Parse::Error`]. A stream
//! socket delivers bytes, not messages: one `read` may return half a request, or fifty
//! pipelined ones, and the parser has to be right at every split point.
//!
//! # Limits, checked before anything is allocated
//!
//! A peer controls every length in the stream. Each of these is refused with a
//! `-ERR Protocol error: ...` reply, after which the server closes the connection (the
//! stream can no longer be trusted to be in step):
//!
//! - an inline line, or a `*`/`$` header line, longer than [`MAX_LINE`] (64 KiB);
//! - a bulk string longer than [`MAX_BULK`] (1 MiB), before its bytes are awaited;
//! - more than [`MAX_ARGS`] (1024) arguments;
//! - a request whose bulks add up to more than [`MAX_REQUEST`] (8 MiB), so 1024 arguments of
//!   1 MiB each cannot make us buffer a gigabyte;
//! - lengths that are negative, not numbers, or not followed by CRLF.
//!
//! # Replies
//!
//! The encoders ([`simple`], [`error`], [`integer`], [`bulk`], [`nil`], [`array_len`],
//! [`map_len`]) append to a connection's output buffer. A connection speaks RESP2 unless its
//! client asks for RESP3 (`HELLO 3`, what redis-py sends first); for the replies this server
//! gives, the two differ only in [`nil`] and [`map_len`]. [`parse_reply`] is the client side;
//! printing replies the way `redis-cli` does is the client's own business
//! ([`crate::client::format_reply`]).

use memchr::memchr;

/// The longest inline request line or header line, in bytes (Redis: PROTO_INLINE_MAX_SIZE).
pub const MAX_LINE: usize = 64 * 1024;
/// The longest bulk string a request may carry.
pub const MAX_BULK: usize = 1024 * 1024;
/// The most arguments one request may have.
pub const MAX_ARGS: usize = 1024;
/// The most bytes of bulk data one request may declare in total.
pub const MAX_REQUEST: usize = 8 * 1024 * 1024;
/// The longest bulk string accepted in a *reply* (client side).
pub const MAX_REPLY_BULK: usize = 64 * 1024 * 1024;
/// How deeply reply arrays may nest before a client gives up.
const MAX_REPLY_DEPTH: usize = 16;

mod reply;
mod request;

pub use reply::*;
pub use request::*;

/// Find the end of a line starting at `start`: `Ok(Some((content_end, next)))`, where the
/// content excludes `\n` and a `\r` before it. Only `MAX_LINE + 2` bytes are searched, so a
/// peer that never sends a newline costs us one bounded scan, not an ever-growing one.
fn line_end(buf: &[u8], start: usize) -> Result<Option<(usize, usize)>, ()> {
    let window = &buf[start..buf.len().min(start + MAX_LINE + 2)];
    match memchr(b'\n', window) {
        Some(nl) => {
            let content = if nl > 0 && window[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if content > MAX_LINE {
                Err(())
            } else {
                Ok(Some((start + content, start + nl + 1)))
            }
        }
        None if window.len() >= MAX_LINE + 2 => Err(()),
        None => Ok(None),
    }
}

/// A strict decimal that fits in an i64, written the one way Redis writes it: an optional
/// `-`, then 1 to 19 digits, with no leading zero (so no `-0` either). No `+`, no spaces: a
/// length is either exactly a number or the request is refused.
pub fn parse_decimal(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits[0] == b'0' && (neg || digits.len() > 1) {
        return None;
    }
    // 19 digits fit in an i128 with room to spare; the range check is i64's own.
    let n = digits
        .iter()
        .fold(0i128, |acc, d| acc * 10 + i128::from(d - b'0'));
    i64::try_from(if neg { -n } else { n }).ok()
}

/// A header line `<sigil><decimal>\r\n` at `pos`: `Ok(Some((value, next)))`.
fn header(buf: &[u8], pos: usize, sigil: u8, what: &str) -> Result<Option<(i64, usize)>, String> {
    let (end, next) = match line_end(buf, pos) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(()) => return Err(format!("too big {what} line")),
    };
    if buf[pos] != sigil {
        return Err(format!(
            "expected '{}', got '{}'",
            char::from(sigil),
            printable(buf[pos])
        ));
    }
    if buf[end..next].first() != Some(&b'\r') {
        return Err(format!("{what} line not terminated by CRLF"));
    }
    match parse_decimal(&buf[pos + 1..end]) {
        Some(n) => Ok(Some((n, next))),
        None => Err(format!("invalid {what}")),
    }
}

fn printable(b: u8) -> char {
    if b.is_ascii_graphic() || b == b' ' {
        char::from(b)
    } else {
        '?'
    }
}

#[cfg(test)]
mod tests;
