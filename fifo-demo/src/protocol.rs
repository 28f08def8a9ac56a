//! What travels through the FIFO, and what the daemon writes to its log.
//!
//! # The wire format (writer -> daemon)
//!
//! One record is one line: `pid=<pid> <message>\n`, for example `pid=4242 disk almost full\n`.
//!
//! - **One `write()` per record, at most [`PIPE_BUF`] bytes.** POSIX promises that a write of
//!   at most PIPE_BUF bytes to a pipe or FIFO is atomic: its bytes land contiguously, never
//!   interleaved with another writer's. That is the whole reason many unrelated processes can
//!   share one FIFO without tearing each other's lines; a larger write may be split and
//!   interleaved. So a message that does not fit one atomic record is *refused* by
//!   [`encode`] (the `log` role reports it and sends nothing of it), never cut silently.
//! - **The pid is the writer's own claim.** A FIFO carries bytes and nothing else: unlike a
//!   Unix socket (SCM_CREDENTIALS) it cannot tell the reader who wrote. The daemon logs the
//!   number it is given.
//! - **Plain shell writers work too.** `echo hello > log.fifo` sends `hello\n`: a line that
//!   does not start with `pid=<digits> ` is logged whole with `pid=?`.
//! - A message cannot contain a newline (it ends the record): the `log` role sends each line
//!   of a multi-line message as a record of its own.
//!
//! # The log format (daemon -> file)
//!
//! `2026-11-26T03:20:50.123456Z pid=4242 disk almost full` — the UTC time at which the daemon
//! read the record (microseconds), the pid (or `?`), the message. The log is always valid
//! UTF-8 with one record per line and no control characters, whatever a peer sent:
//!
//! - printable text, ASCII or UTF-8, is copied as is, and so is a tab;
//! - a backslash becomes `\\`;
//! - control characters (NUL, CR, ESC, BEL, DEL, ...) and bytes that are not valid UTF-8
//!   become `\xNN`; C1 controls and the Unicode bidi controls, which reorder how a terminal
//!   shows the rest of the line (U+202E RIGHT-TO-LEFT OVERRIDE), become `\u{NN}`
//!   (`common::out::escape_into`, shared by every demo);
//! - an empty line is logged as a record with an empty message: every newline that reaches
//!   the daemon is one line in the log, so lines in = lines out.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The atomic-write limit for pipes and FIFOs (4096 on Linux; POSIX requires at least 512).
pub const PIPE_BUF: usize = libc::PIPE_BUF;

/// The byte every record ends with.
pub const END: u8 = b'\n';

/// A message that cannot travel as one atomic record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// The message's length in bytes.
    pub len: usize,
    /// The most this writer may send in one record.
    pub max: usize,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message is {} bytes, but one atomic record holds at most {} \
             (PIPE_BUF {PIPE_BUF} minus the \"pid=N \" prefix and the newline); not sent",
            self.len, self.max
        )
    }
}

/// The longest message writer `pid` can send in one record.
pub fn max_message(pid: u32) -> usize {
    PIPE_BUF - "pid= \n".len() - pid.to_string().len()
}

/// Build the record for `message` (which must not contain a newline) into `out`, replacing
/// what was there. Refuses a message that would make the record longer than [`PIPE_BUF`].
pub fn encode(pid: u32, message: &[u8], out: &mut Vec<u8>) -> Result<(), TooLong> {
    debug_assert!(!message.contains(&END), "the caller splits lines");
    let max = max_message(pid);
    if message.len() > max {
        return Err(TooLong {
            len: message.len(),
            max,
        });
    }
    out.clear();
    out.extend_from_slice(b"pid=");
    out.extend_from_slice(pid.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
    out.push(END);
    Ok(())
}

/// One record as the daemon reads it (the newline already removed).
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The digits of the pid the writer claimed, or `None` for a plain line.
    pub pid: Option<&'a [u8]>,
    /// The message bytes, exactly as sent.
    pub message: &'a [u8],
}

/// Split a line into the claimed pid and the message. Never fails: anything that is not a
/// well-formed `pid=<1-10 digits> ` prefix is a plain line, logged whole with `pid=?`.
pub fn parse(line: &[u8]) -> Record<'_> {
    if let Some(rest) = line.strip_prefix(b"pid=") {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if (1..=10).contains(&digits) && rest.get(digits) == Some(&b' ') {
            return Record {
                pid: Some(&rest[..digits]),
                message: &rest[digits + 1..],
            };
        }
    }
    Record {
        pid: None,
        message: line,
    }
}

/// Append `message` to `out`, escaped as the module docs describe: by
/// [`common::out::escape_into`], which every demo uses for bytes from another process, plus a
/// backslash doubled, so that an escape in the log always means an escaped byte.
pub fn escape_into(message: &[u8], out: &mut Vec<u8>) {
    // The common case, plain printable ASCII, is one copy. The test has no early exit on
    // purpose: a fold over all bytes compiles to SIMD and beats a byte-by-byte `all` on lines
    // of typical length (this is the daemon's hottest loop).
    let needs_escape = message.iter().fold(false, |acc, &b| {
        acc | !(0x20..0x7f).contains(&b) | (b == b'\\')
    });
    if !needs_escape {
        out.extend_from_slice(message);
        return;
    }
    let mut pieces = message.split(|&b| b == b'\\');
    if let Some(first) = pieces.next() {
        common::out::escape_into(out, first);
    }
    for piece in pieces {
        out.extend_from_slice(b"\\\\");
        common::out::escape_into(out, piece);
    }
}

/// Append one log line for `record`, read at the time `stamp` formats, to `out`.
pub fn log_line(stamp: &[u8], record: &Record<'_>, out: &mut Vec<u8>) {
    let pid = record.pid.unwrap_or(b"?");
    // One capacity check for the common case instead of one per piece.
    out.reserve(stamp.len() + " pid= \n".len() + pid.len() + record.message.len());
    out.extend_from_slice(stamp);
    out.extend_from_slice(b" pid=");
    out.extend_from_slice(pid);
    out.push(b' ');
    escape_into(record.message, out);
    out.push(END);
}

/// Formats `SystemTime`s as `2026-11-26T03:20:50.123456Z` (RFC 3339, UTC, microseconds) with
/// `humantime`, into a buffer it reuses. The daemon stamps once per `read`, not per record.
#[derive(Default)]
pub struct Stamp {
    text: Vec<u8>,
}

/// Length of a formatted timestamp.
pub const STAMP_LEN: usize = "2026-11-26T03:20:50.123456Z".len();

/// The last instant RFC 3339 can write (four-digit years).
const LATEST: Duration = Duration::new(253_402_300_799, 999_999_000);

impl Stamp {
    /// Format `now`; the result is valid until the next call.
    pub fn format(&mut self, now: SystemTime) -> &[u8] {
        // A clock set before 1970 or past 9999 is not worth failing a log line for (humantime
        // would panic or fail): log the nearest time it can write.
        let now = now.clamp(UNIX_EPOCH, UNIX_EPOCH + LATEST);
        self.text.clear();
        write!(self.text, "{}", humantime::format_rfc3339_micros(now))
            .expect("a time within the RFC 3339 range formats into a Vec");
        &self.text
    }
}

/// A line longer than this without a newline is logged in pieces: only a writer that ignores
/// the protocol can send one, and it must not make the daemon's memory grow without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// The daemon's side of the wire: the bytes of successive reads of the FIFO in, log lines out.
///
/// A FIFO carries bytes, not messages: a read returns whatever the pipe holds, which may end
/// in the middle of a record (a writer's record is never torn by another's, but a read may cut
/// the stream anywhere). The bytes after the last newline wait here for the rest of their
/// record.
#[derive(Default)]
pub struct LogLines {
    /// The start of a record that a read cut off: it ends in the next read.
    tail: Vec<u8>,
    stamp: Stamp,
}

impl LogLines {
    /// Append to `out` a log line for each record that `data` (one read's bytes) completes,
    /// stamped `now`; returns how many.
    pub fn push(&mut self, data: &[u8], now: SystemTime, out: &mut Vec<u8>) -> u64 {
        let stamp = self.stamp.format(now);
        let mut records = 0;
        let mut start = 0;
        if !self.tail.is_empty() {
            match memchr::memchr(END, data) {
                Some(nl) => {
                    self.tail.extend_from_slice(&data[..nl]);
                    log_line(stamp, &parse(&self.tail), out);
                    records += 1;
                    self.tail.clear();
                    start = nl + 1;
                }
                None => {
                    self.tail.extend_from_slice(data);
                    start = data.len();
                }
            }
        }
        if start < data.len() {
            let rest = &data[start..];
            let mut line_start = 0;
            for nl in memchr::memchr_iter(END, rest) {
                log_line(stamp, &parse(&rest[line_start..nl]), out);
                records += 1;
                line_start = nl + 1;
            }
            self.tail.extend_from_slice(&rest[line_start..]);
        }
        if self.tail.len() > MAX_LINE {
            // Only a writer that ignores the protocol gets here; bound our memory.
            log_line(stamp, &parse(&self.tail), out);
            records += 1;
            self.tail.clear();
        }
        records
    }

    /// At the end of the stream: a record whose newline never came, as a log line stamped
    /// `now`, rather than dropped; returns how many (0 or 1).
    pub fn finish(&mut self, now: SystemTime, out: &mut Vec<u8>) -> u64 {
        if self.tail.is_empty() {
            return 0;
        }
        log_line(self.stamp.format(now), &parse(&self.tail), out);
        self.tail.clear();
        1
    }
}

/// A log line taken apart again (used by the demo's check and by tests).
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The timestamp text.
    pub stamp: &'a str,
    /// The pid, or `None` for `pid=?`.
    pub pid: Option<u32>,
    /// The (escaped) message.
    pub message: &'a str,
}

/// Parse one line of the log (without its newline); `None` if it is not a well-formed line.
pub fn parse_log_line(line: &str) -> Option<LogLine<'_>> {
    let (stamp, rest) = line.split_at_checked(STAMP_LEN)?;
    let well_formed = stamp.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T',
        13 | 16 => b == b':',
        19 => b == b'.',
        26 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    if !well_formed {
        return None;
    }
    let rest = rest.strip_prefix(" pid=")?;
    let (pid, message) = rest.split_once(' ')?;
    let pid = match pid {
        "?" => None,
        digits => Some(digits.parse().ok()?),
    };
    Some(LogLine {
        stamp,
        pid,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut out = Vec::new();
        encode(4242, b"disk almost full", &mut out).unwrap();
        assert_eq!(out, b"pid=4242 disk almost full\n");
        let rec = parse(&out[..out.len() - 1]);
        assert_eq!(rec.pid, Some(&b"4242"[..]));
        assert_eq!(rec.message, b"disk almost full");
    }

    #[test]
    fn the_longest_message_fills_pipe_buf_exactly() {
        let mut out = Vec::new();
        let max = max_message(4242);
        encode(4242, &vec![b'a'; max], &mut out).unwrap();
        assert_eq!(out.len(), PIPE_BUF);
        let err = encode(4242, &vec![b'a'; max + 1], &mut out).unwrap_err();
        assert_eq!(err, TooLong { len: max + 1, max });
    }

    #[test]
    fn plain_lines_have_no_pid() {
        for line in [
            &b"hello"[..],
            b"pid=",
            b"pid=12",
            b"pid=x hi",
            b"pid=12345678901 x",
            b"",
        ] {
            assert_eq!(parse(line).pid, None, "{line:?}");
            assert_eq!(parse(line).message, line);
        }
        assert_eq!(parse(b"pid=7 ").message, b"");
    }

    #[test]
    fn garbage_is_escaped() {
        let mut out = Vec::new();
        escape_into(
            b"a\x00b\tc\\d\xff\xfee\x1b[31m \xc3\xa9 \xc2\x85\x07 \xe2\x80\xaeevil\\",
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\x00b\tc\\\\d\\xff\\xfee\\x1b[31m é \\u{85}\\x07 \\u{202e}evil\\\\"
        );
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let mut stamp = Stamp::default();
        // 2026-11-26T03:20:50Z is 1795663250 seconds after the epoch.
        let t = UNIX_EPOCH + Duration::new(1_795_663_250, 123_456_789);
        assert_eq!(stamp.format(t), b"2026-11-26T03:20:50.123456Z");
        let t = UNIX_EPOCH + Duration::new(1_795_663_250, 7_000);
        assert_eq!(stamp.format(t), b"2026-11-26T03:20:50.000007Z");
        assert_eq!(stamp.format(UNIX_EPOCH), b"1970-01-01T00:00:00.000000Z");
        // A leap day, and the day after it.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(stamp.format(t), b"2000-02-29T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_868_799);
        assert_eq!(stamp.format(t), b"2000-02-29T23:59:59.000000Z");
        // Clocks out of range are clamped, never a panic.
        let t = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(stamp.format(t), b"1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(stamp.format(t), b"9999-12-31T23:59:59.999999Z");
    }

    /// Records cut anywhere by the reads come out whole, one line each; a run without a
    /// newline is logged in pieces of MAX_LINE, and a last record without one at the end.
    #[test]
    fn records_that_straddle_reads_are_logged_whole() {
        let (mut lines, mut out) = (LogLines::default(), Vec::new());
        let t = UNIX_EPOCH;
        assert_eq!(lines.push(b"pid=1 a", t, &mut out), 0);
        assert_eq!(lines.push(b"b\npid=2 c\npid", t, &mut out), 2);
        assert_eq!(lines.push(b"=3 d", t, &mut out), 0);
        assert_eq!(lines.push(b"\n", t, &mut out), 1);
        assert_eq!(lines.push(b"no newline", t, &mut out), 0);
        assert_eq!(lines.finish(t, &mut out), 1);
        assert_eq!(lines.finish(t, &mut out), 0);
        let text = String::from_utf8(out).unwrap();
        let messages: Vec<(Option<u32>, &str)> = text
            .lines()
            .map(|l| parse_log_line(l).unwrap())
            .map(|l| (l.pid, l.message))
            .collect();
        assert_eq!(
            messages,
            [
                (Some(1), "ab"),
                (Some(2), "c"),
                (Some(3), "d"),
                (None, "no newline")
            ]
        );
        let mut out = Vec::new();
        assert_eq!(lines.push(&vec![b'x'; MAX_LINE + 1], t, &mut out), 1);
        assert_eq!(lines.push(b"x\n", t, &mut out), 1);
    }

    #[test]
    fn log_lines_parse_back() {
        let mut out = Vec::new();
        let rec = parse(b"pid=42 w=1 seq=2");
        log_line(b"2026-11-26T03:20:50.123456Z", &rec, &mut out);
        let text = String::from_utf8(out).unwrap();
        let line = parse_log_line(text.trim_end()).unwrap();
        assert_eq!(line.pid, Some(42));
        assert_eq!(line.message, "w=1 seq=2");
        assert!(parse_log_line("2026-11-26T03:20:50.12345Z pid=1 x").is_none());
        assert!(parse_log_line("garbage").is_none());
    }
}
