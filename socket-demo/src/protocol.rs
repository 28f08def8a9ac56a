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
//! gives, the two differ only in [`nil`] and [`map_len`]. [`parse_reply`] and [`format_reply`]
//! are the client side, printing replies the way `redis-cli` does.

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

/// Format a reply as `redis-cli` does on a terminal (`cliFormatReplyTTY`): `"v"`,
/// `(integer) 3`, `(nil)`, `(error) ERR ...`, numbered arrays. Ends with a newline.
pub fn format_reply(reply: &Reply) -> String {
    let mut out = String::new();
    format_into(reply, "", &mut out);
    out
}

fn format_into(reply: &Reply, prefix: &str, out: &mut String) {
    match reply {
        Reply::Status(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Reply::Error(s) => {
            out.push_str("(error) ");
            out.push_str(s);
            out.push('\n');
        }
        Reply::Integer(n) => {
            out.push_str(&format!("(integer) {n}\n"));
        }
        Reply::Bulk(None) | Reply::Array(None) => out.push_str("(nil)\n"),
        Reply::Bulk(Some(b)) => {
            out.push_str(&repr(b));
            out.push('\n');
        }
        Reply::Array(Some(items)) if items.is_empty() => out.push_str("(empty array)\n"),
        Reply::Array(Some(items)) => {
            let width = items.len().to_string().len();
            // Nested arrays line up under their parent's first element.
            let nested = format!("{prefix}{}", " ".repeat(width + 2));
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(prefix);
                }
                out.push_str(&format!("{:>width$}) ", i + 1));
                format_into(item, &nested, out);
            }
        }
    }
}

/// A reply as `redis-cli --raw` prints it (what it prints when stdout is not a terminal):
/// values as they are, one per line, nothing quoted or labelled, so that a script gets
/// `1000`, not `"1000"` or `(integer) 1000`. Nothing (a nil, an empty array) is an empty line.
pub fn format_reply_raw(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    raw_into(reply, &mut out);
    if out.is_empty() {
        out.push(b'\n');
    }
    out
}

fn raw_into(reply: &Reply, out: &mut Vec<u8>) {
    match reply {
        Reply::Status(s) | Reply::Error(s) => out.extend_from_slice(s.as_bytes()),
        Reply::Integer(n) => decimal(out, *n),
        Reply::Bulk(Some(b)) => out.extend_from_slice(b),
        Reply::Bulk(None) | Reply::Array(None) => {}
        Reply::Array(Some(items)) => {
            for item in items {
                raw_into(item, out);
            }
            return;
        }
    }
    out.push(b'\n');
}

/// Quote bytes as `redis-cli` does (`sdscatrepr`): `"a\n\x00"`.
pub fn repr(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => s.push(char::from(b)),
            b => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(p: Parse<'_>) -> (Vec<Vec<u8>>, usize) {
        match p {
            Parse::Complete(a, n) => (a.into_iter().map(<[u8]>::to_vec).collect(), n),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn err_text(p: Parse<'_>) -> String {
        match p {
            Parse::Error(e) => e.to_string(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn v(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    const REQUESTS: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"SET key value\r\n",
        b"GET key\n",
        b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
        b"*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n",
    ];

    #[test]
    fn every_split_point_gives_incomplete_then_the_same_request() {
        for req in REQUESTS {
            let (whole, used) = args(parse(req));
            assert_eq!(used, req.len());
            for cut in 0..req.len() {
                assert_eq!(
                    parse(&req[..cut]),
                    Parse::Incomplete,
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(req)
                );
            }
            assert_eq!(args(parse(req)).0, whole);
        }
    }

    #[test]
    fn binary_safe_bulk_keeps_crlf_inside() {
        let (a, _) = args(parse(b"*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n"));
        assert_eq!(a, vec![b"GET".to_vec(), b"a\r\nb".to_vec()]);
    }

    #[test]
    fn pipelined_batch_parses_one_by_one() {
        let batch: Vec<u8> = REQUESTS.concat();
        let mut pos = 0;
        let mut n = 0;
        while pos < batch.len() {
            let (_, used) = args(parse(&batch[pos..]));
            pos += used;
            n += 1;
        }
        assert_eq!(n, REQUESTS.len());
    }

    #[test]
    fn inline_forms() {
        assert_eq!(args(parse(b"SET  k   v\r\n")).0, v(&["SET", "k", "v"]));
        assert_eq!(args(parse(b"ping\n")).0, v(&["ping"]));
        assert_eq!(args(parse(b"\r\n")), (vec![], 2));
        assert_eq!(args(parse(b"*0\r\n")), (vec![], 4));
        assert_eq!(args(parse(b"*-1\r\n")), (vec![], 5));
    }

    #[test]
    fn inline_line_limit() {
        let mut ok = vec![b'a'; MAX_LINE];
        ok.extend_from_slice(b"\r\n");
        assert_eq!(args(parse(&ok)).1, MAX_LINE + 2);
        let mut long = vec![b'a'; MAX_LINE + 1];
        long.push(b'\n');
        assert!(err_text(parse(&long)).contains("too big inline request"));
        // No newline at all: refused as soon as the limit is passed, without a newline.
        let flood = vec![b'a'; MAX_LINE + 2];
        assert!(err_text(parse(&flood)).contains("too big inline request"));
        assert_eq!(parse(&flood[..MAX_LINE]), Parse::Incomplete);
    }

    #[test]
    fn too_many_arguments() {
        let e = err_text(parse(b"*1025\r\n"));
        assert!(e.contains("invalid multibulk length"), "{e}");
        assert!(parse(b"*1024\r\n") == Parse::Incomplete);
        let mut inline = "x ".repeat(MAX_ARGS + 1).into_bytes();
        inline.push(b'\n');
        assert!(err_text(parse(&inline)).contains("too many arguments"));
    }

    #[test]
    fn bulk_limit_is_checked_before_the_bytes_arrive() {
        let e = err_text(parse(b"*2\r\n$3\r\nGET\r\n$1048577\r\n"));
        assert_eq!(e, "Protocol error: invalid bulk length");
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1048576\r\n"), Parse::Incomplete);
    }

    #[test]
    fn total_request_limit() {
        let mut req = b"*9\r\n".to_vec();
        for _ in 0..9 {
            req.extend_from_slice(format!("${MAX_BULK}\r\n").as_bytes());
            req.extend(std::iter::repeat_n(b'x', MAX_BULK));
            req.extend_from_slice(b"\r\n");
        }
        assert!(err_text(parse(&req)).contains("request larger than 8 MiB"));
    }

    #[test]
    fn malformed_lengths_are_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"*-5x\r\n", "invalid multibulk length"),
            (b"*-5\r\n", "invalid multibulk length"),
            (b"*-0\r\n", "invalid multibulk length"),
            (b"*01\r\n", "invalid multibulk length"),
            (b"*1\r\n$-0\r\n", "invalid bulk length"),
            (b"*1\r\n$03\r\nGET\r\n", "invalid bulk length"),
            (b"*abc\r\n", "invalid multibulk length"),
            (b"*99999999999999999999999\r\n", "invalid multibulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$-100\r\n", "invalid bulk length"),
            (b"*1\r\n$\r\n", "invalid bulk length"),
            (b"*1\r\n$9223372036854775807\r\n", "invalid bulk length"),
            (b"*1\r\n$18446744073709551616\r\n", "invalid bulk length"),
            (b"*1\r\n$1x\r\n", "invalid bulk length"),
            (b"*1\r\n:1\r\n", "expected '$', got ':'"),
            (b"*1\r\n$1\r\nab\r\n", "not followed by CRLF"),
            (b"*1\n", "not terminated by CRLF"),
        ];
        for (input, want) in cases {
            let e = err_text(parse(input));
            assert!(
                e.contains(want),
                "{:?}: {e}",
                String::from_utf8_lossy(input)
            );
        }
        let huge_header = [b"*1\r\n$".as_slice(), &vec![b'9'; MAX_LINE + 2]].concat();
        assert!(err_text(parse(&huge_header)).contains("too big bulk length line"));
    }

    #[test]
    fn encoders_and_reply_parser_round_trip() {
        let mut out = Vec::new();
        simple(&mut out, "OK");
        error(&mut out, "ERR bad\r\ninjected");
        integer(&mut out, -42);
        integer(&mut out, i64::MIN);
        bulk(&mut out, b"v\x00");
        nil(&mut out, Resp::V2);
        array_len(&mut out, 2);
        bulk(&mut out, b"a");
        integer(&mut out, 1);
        let want = [
            Reply::Status("OK".into()),
            Reply::Error("ERR bad  injected".into()),
            Reply::Integer(-42),
            Reply::Integer(i64::MIN),
            Reply::Bulk(Some(b"v\x00".to_vec())),
            Reply::Bulk(None),
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"a".to_vec())),
                Reply::Integer(1),
            ])),
        ];
        let mut pos = 0;
        for (i, w) in want.iter().enumerate() {
            match parse_reply(&out[pos..]) {
                ReplyParse::Complete(r, used) => {
                    assert_eq!(&r, w, "{i}");
                    pos += used;
                }
                other => panic!("{i}: {other:?}"),
            }
        }
        assert_eq!(pos, out.len());
    }

    #[test]
    fn format_like_redis_cli() {
        assert_eq!(
            format_reply(&Reply::Bulk(Some(b"a\"b\n\x01".to_vec()))),
            "\"a\\\"b\\n\\x01\"\n"
        );
        assert_eq!(format_reply(&Reply::Integer(3)), "(integer) 3\n");
        assert_eq!(format_reply(&Reply::Bulk(None)), "(nil)\n");
        assert_eq!(
            format_reply(&Reply::Error("ERR x".into())),
            "(error) ERR x\n"
        );
        assert_eq!(format_reply(&Reply::Array(Some(vec![]))), "(empty array)\n");
        let nested = Reply::Array(Some(vec![
            Reply::Array(Some(vec![Reply::Integer(1), Reply::Integer(2)])),
            Reply::Bulk(Some(b"c".to_vec())),
        ]));
        assert_eq!(
            format_reply(&nested),
            "1) 1) (integer) 1\n   2) (integer) 2\n2) \"c\"\n"
        );
    }

    #[test]
    fn reply_parser_limits() {
        assert!(matches!(
            parse_reply(b"$999999999999\r\n"),
            ReplyParse::Error(_)
        ));
        let deep = "*1\r\n".repeat(100);
        assert!(matches!(parse_reply(deep.as_bytes()), ReplyParse::Error(_)));
        assert_eq!(parse_reply(b"*1000000\r\n"), ReplyParse::Incomplete);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random bytes never panic, and a Complete never claims more than it was given.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut pos = 0;
            while pos < bytes.len() {
                match parse(&bytes[pos..]) {
                    Parse::Complete(a, used) => {
                        prop_assert!(used > 0 && pos + used <= bytes.len());
                        prop_assert!(a.len() <= MAX_ARGS);
                        pos += used;
                    }
                    Parse::Incomplete | Parse::Error(_) => break,
                }
            }
            let _ = parse_reply(&bytes);
        }

        /// Random RESP-looking input (sigils, digits, CRLF) stresses the length paths.
        #[test]
        fn resp_shaped_noise_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
                    Just(b"-".to_vec()), Just(b"-1".to_vec()), Just(b"1048577".to_vec()),
                    Just(b"99999999999999999999".to_vec()), Just(b"3".to_vec()),
                    Just(b"abc".to_vec()), Just(b"\n".to_vec()),
                ],
                0..40,
            )
        ) {
            let bytes = parts.concat();
            let _ = parse(&bytes);
            let _ = parse_reply(&bytes);
        }

        /// A batch of valid requests, cut into random pieces and fed as a server reads them,
        /// yields exactly the requests that were sent.
        #[test]
        fn random_splits_of_a_pipelined_batch(
            reqs in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
                1..8,
            ),
            cuts in proptest::collection::vec(1usize..64, 1..40),
        ) {
            let mut wire = Vec::new();
            for r in &reqs {
                encode_request(r, &mut wire);
            }
            let mut got: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut buf: Vec<u8> = Vec::new();
            let mut sent = 0;
            let mut cut = cuts.iter().cycle();
            while sent < wire.len() {
                let n = (*cut.next().unwrap()).min(wire.len() - sent);
                buf.extend_from_slice(&wire[sent..sent + n]);
                sent += n;
                loop {
                    match parse(&buf) {
                        Parse::Complete(a, used) => {
                            got.push(a.into_iter().map(<[u8]>::to_vec).collect());
                            buf.drain(..used);
                        }
                        Parse::Incomplete => break,
                        Parse::Error(e) => return Err(TestCaseError::fail(e.to_string())),
                    }
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, reqs);
        }
    }
}
