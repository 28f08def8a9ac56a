//! Requests: what a client sends, parsed (server side) and encoded (client side).

use super::{MAX_ARGS, MAX_BULK, MAX_REQUEST, array_len, bulk, header, line_end};

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
