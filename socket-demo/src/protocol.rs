//! The wire format every role shares: a subset of RESP2 and RESP3, the Redis protocol.
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

/// What [`parse`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    /// One request (its arguments, borrowed from the buffer) and the bytes it used. The
    /// argument list may be empty (a blank inline line, `*0`): skip it and parse on.
    Complete(Vec<&'a [u8]>, usize),
    /// The buffer holds only the beginning of a request: read more and parse again.
    Incomplete,
    /// The bytes cannot be (or must not be allowed to become) a request.
    Error(ProtocolError),
}

/// Why a request was refused; `Display` gives the text after `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol error: {}", self.0)
    }
}

fn fail<'a>(what: impl Into<String>) -> Parse<'a> {
    Parse::Error(ProtocolError(what.into()))
}

/// Parse one request from the start of `buf` (see the module docs).
pub fn parse(buf: &[u8]) -> Parse<'_> {
    match buf.first() {
        None => Parse::Incomplete,
        Some(b'*') => parse_multibulk(buf),
        Some(_) => parse_inline(buf),
    }
}

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

fn parse_inline(buf: &[u8]) -> Parse<'_> {
    let (end, next) = match line_end(buf, 0) {
        Ok(Some(found)) => found,
        Ok(None) => return Parse::Incomplete,
        Err(()) => return fail("too big inline request"),
    };
    let mut args = Vec::new();
    for word in buf[..end]
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
    {
        if args.len() == MAX_ARGS {
            return fail(format!("too many arguments (more than {MAX_ARGS})"));
        }
        args.push(word);
    }
    Parse::Complete(args, next)
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

fn parse_multibulk(buf: &[u8]) -> Parse<'_> {
    let (count, mut pos) = match header(buf, 0, b'*', "multibulk length") {
        Ok(Some(h)) => h,
        Ok(None) => return Parse::Incomplete,
        Err(e) => return fail(e),
    };
    // `*0` is an empty array and `*-1` the null array; Redis skips both as empty requests, and
    // so do we. Any other negative count is malformed.
    if count == 0 || count == -1 {
        return Parse::Complete(Vec::new(), pos);
    }
    let Ok(count) = usize::try_from(count) else {
        return fail("invalid multibulk length");
    };
    if count > MAX_ARGS {
        return fail(format!(
            "invalid multibulk length (more than {MAX_ARGS} arguments)"
        ));
    }
    // Bounded by MAX_ARGS above, so at most 16 KiB of slice headers.
    let mut args = Vec::with_capacity(count);
    let mut total = 0usize;
    for _ in 0..count {
        let (len, data) = match header(buf, pos, b'$', "bulk length") {
            Ok(Some(h)) => h,
            Ok(None) => return Parse::Incomplete,
            Err(e) => return fail(e),
        };
        // Negative (`$-1` is a null bulk, meaningless in a request), or over the limit:
        // refused before we wait for, let alone store, that many bytes.
        let len = match usize::try_from(len) {
            Ok(len) if len <= MAX_BULK => len,
            _ => return fail("invalid bulk length"),
        };
        total += len;
        if total > MAX_REQUEST {
            return fail(format!("request larger than {} MiB", MAX_REQUEST >> 20));
        }
        if buf.len() < data + len + 2 {
            return Parse::Incomplete;
        }
        if &buf[data + len..data + len + 2] != b"\r\n" {
            return fail("bulk string not followed by CRLF");
        }
        args.push(&buf[data..data + len]);
        pos = data + len + 2;
    }
    Parse::Complete(args, pos)
}

/// Encode a request as a RESP array, the way real clients send one.
pub fn encode_request<S: AsRef<[u8]>>(args: &[S], out: &mut Vec<u8>) {
    array_len(out, args.len());
    for a in args {
        bulk(out, a.as_ref());
    }
}

// ---------------------------------------------------------------------------------------
// Reply encoders. They append to an output buffer and never allocate beyond it.

/// `+OK\r\n`: a status reply. `text` must not contain CR or LF.
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-ERR ...\r\n`. Any CR or LF in `text` (it may quote a peer's bytes) becomes a space, so an
/// error cannot end early and inject a second reply.
pub fn error(out: &mut Vec<u8>, text: &str) {
    out.push(b'-');
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `n` in decimal, appended to `out`: in replies, and for the values INCR stores.
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    // By hand rather than with `write!`: this runs for every reply, and the formatting
    // machinery is measurably slower than twenty digits into a stack buffer.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

/// `:42\r\n`
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `$5\r\nhello\r\n`
pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.push(b'$');
    decimal(out, data.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The protocol version a connection speaks: RESP2 until the client asks for RESP3 with
/// `HELLO 3`. The two differ, for our replies, only in how "nothing" and maps are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resp {
    /// RESP2: nothing is a null bulk, a map is a flat array of keys and values.
    #[default]
    V2,
    /// RESP3: nothing is `_`, a map is `%` and its number of pairs.
    V3,
}

/// "No such key": `$-1\r\n` in RESP2, `_\r\n` in RESP3.
pub fn nil(out: &mut Vec<u8>, resp: Resp) {
    out.extend_from_slice(match resp {
        Resp::V2 => b"$-1\r\n",
        Resp::V3 => b"_\r\n",
    });
}

/// `*2\r\n`, followed by that many replies.
pub fn array_len(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    decimal(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

/// A map of `pairs` keys and values, which follow: `%2\r\n` in RESP3, an array of twice as
/// many elements in RESP2.
pub fn map_len(out: &mut Vec<u8>, pairs: usize, resp: Resp) {
    match resp {
        Resp::V2 => array_len(out, 2 * pairs),
        Resp::V3 => {
            out.push(b'%');
            decimal(out, pairs as i64);
            out.extend_from_slice(b"\r\n");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The client side: replies.

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Status(String),
    /// `-ERR ...`
    Error(String),
    /// `:3`
    Integer(i64),
    /// `$1\r\nv`, or `None` for `$-1` (nil).
    Bulk(Option<Vec<u8>>),
    /// `*N`, or `None` for `*-1` (nil array).
    Array(Option<Vec<Reply>>),
}

/// What [`parse_reply`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyParse {
    /// A reply and the bytes it used.
    Complete(Reply, usize),
    /// Read more.
    Incomplete,
    /// Not a RESP2 reply (or over a limit); the text says why.
    Error(String),
}

/// Parse one reply from the start of `buf`. Like [`parse`], every length is checked before it
/// is trusted: a server is a peer too.
pub fn parse_reply(buf: &[u8]) -> ReplyParse {
    match reply_at(buf, 0, 0) {
        Ok(Some((r, used))) => ReplyParse::Complete(r, used),
        Ok(None) => ReplyParse::Incomplete,
        Err(e) => ReplyParse::Error(e),
    }
}

fn reply_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if pos >= buf.len() {
        return Ok(None);
    }
    let (end, next) = match line_end(buf, pos) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(()) => return Err("reply line too long".into()),
    };
    if end == pos {
        return Err("empty line where a reply was expected".into());
    }
    let text = &buf[pos + 1..end];
    let number = || parse_decimal(text).ok_or_else(|| "invalid length in reply".to_owned());
    match buf[pos] {
        b'+' => Ok(Some((
            Reply::Status(String::from_utf8_lossy(text).into_owned()),
            next,
        ))),
        b'-' => Ok(Some((
            Reply::Error(String::from_utf8_lossy(text).into_owned()),
            next,
        ))),
        b':' => Ok(Some((
            Reply::Integer(parse_decimal(text).ok_or("invalid integer reply")?),
            next,
        ))),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            let len = usize::try_from(len).map_err(|_| "invalid bulk length")?;
            if len > MAX_REPLY_BULK {
                return Err(format!(
                    "reply bulk of {len} bytes is over the {MAX_REPLY_BULK}-byte limit"
                ));
            }
            if buf.len() < next + len + 2 {
                return Ok(None);
            }
            if &buf[next + len..next + len + 2] != b"\r\n" {
                return Err("bulk reply not followed by CRLF".into());
            }
            Ok(Some((
                Reply::Bulk(Some(buf[next..next + len].to_vec())),
                next + len + 2,
            )))
        }
        b'*' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), next)));
            }
            if depth >= MAX_REPLY_DEPTH {
                return Err("reply arrays nested too deeply".into());
            }
            let n = usize::try_from(n).map_err(|_| "invalid array length")?;
            // Capacity from the data actually present, never from the declared count alone.
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = next;
            for _ in 0..n {
                match reply_at(buf, at, depth + 1)? {
                    Some((r, used)) => {
                        items.push(r);
                        at = used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), at)))
        }
        other => Err(format!(
            "unexpected byte '{}' at the start of a reply",
            printable(other)
        )),
    }
}

#[cfg(test)]
mod tests;
