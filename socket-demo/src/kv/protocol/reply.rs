//! Replies: what the server sends, written (server side) and parsed (client side).

use super::{MAX_REPLY_BULK, MAX_REPLY_DEPTH, line_end, parse_decimal, printable};

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

/// Parse one reply from the start of `buf`. Like [`super::parse`], every length is checked
/// before it is trusted: a server is a peer too.
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
