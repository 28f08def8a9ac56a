//! What travels through the queues, byte by byte, so that another language can speak it
//! (`tests/interop.rs` does, from Python with `posix_ipc`).
//!
//! Every message is one `mq_send`: a queue keeps message boundaries, so there is no framing
//! beyond the message itself. All integers are little-endian. Every message starts with the
//! same two bytes: a type (`b'T'`, `b'R'`, `b'H'`, `b'S'`) and the version, [`VERSION`] (1). A
//! message must be exactly as long as its fields say; anything else is malformed and is
//! reported and dropped (or dead-lettered), never trusted.
//!
//! The mq priority of a task message is the task's priority (0–9, higher first): the kernel
//! keeps each queue sorted by priority, FIFO within one priority, so `mq_receive` always
//! returns the oldest of the most urgent tasks. It is not repeated inside the message.
//!
//! # Task (`b'T'`), producer -> `NAME`, supervisor -> worker inbox, supervisor -> `NAME-dead`
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | `b'T'` |
//! | 1 | 1 | version, 1 |
//! | 2 | 1 | kind: 1 `echo`, 2 `sleep`, 3 `fib`, 4 `sha256`, 5 `fail` |
//! | 3 | 1 | attempt, 1–5 (producers send 1; each retry adds one) |
//! | 4 | 8 | id, u64: unique per producer; ours is `pid << 32 \| sequence` |
//! | 12 | 2 | R, u16: length of the reply queue name, 0 for the default `NAME-results` |
//! | 14 | 2 | A, u16: length of the argument |
//! | 16 | R | reply queue: `NAME-r<pid>` or `NAME-r<pid>-<hex>`; `sysv:<id>` with `--sysv` |
//! | 16+R | A | argument: bytes (`echo`, `sha256`, `fail`); ASCII decimal (`sleep` ms, `fib` N) |
//!
//! `submit --wait` makes its reply queue `NAME-r<its pid>-<CLOCK_MONOTONIC ns, in hex>`.
//!
//! # Result (`b'R'`), worker -> `NAME-done`, supervisor -> `NAME-results` or the reply queue
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | `b'R'` |
//! | 1 | 1 | version, 1 |
//! | 2 | 1 | status: 0 ok, 1 failed (the task reported an error), 2 dead (dead-lettered) |
//! | 3 | 1 | attempt that produced it |
//! | 4 | 8 | task id |
//! | 12 | 4 | worker pid, i32 |
//! | 16 | 8 | taken: CLOCK_MONOTONIC ns when first taken off `NAME`; 0 from a worker |
//! | 24 | 1 | flags: bit 0, the worker leaves after this task (`--max-tasks`) |
//! | 25 | 1 | reserved, 0 |
//! | 26 | 2 | O, u16: length of the output |
//! | 28 | O | output (UTF-8 from our workers; printed escaped) |
//!
//! # Hello (`b'H'`), worker -> `NAME-done`: "I am idle, my inbox is `NAME-w<pid>`"
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | `b'H'` |
//! | 1 | 1 | version, 1 |
//! | 2 | 2 | reserved, 0 |
//! | 4 | 4 | worker pid, i32 |
//! | 8 | 4 | System V only: the inbox's queue id, i32 (it has no name); -1 for POSIX |
//!
//! # Stop (`b'S'`), supervisor -> worker inbox: finish and exit
//!
//! Two bytes: `b'S'`, version.

use std::fmt;

/// The protocol version every message carries in its second byte.
pub const VERSION: u8 = 1;

/// The highest task priority (`--priority 9`). The kernel allows up to `MQ_PRIO_MAX - 1`
/// (32767 on Linux); ten levels are plenty and keep SysV's message types small.
pub const MAX_PRIORITY: u32 = 9;

/// A task is dead-lettered when this attempt fails too.
pub const MAX_ATTEMPTS: u8 = 5;

/// How many tasks the supervisor gives a worker at once: one, so a task waits in `NAME`, in
/// priority order, until a worker is free to run it. A worker's inbox holds that many tasks
/// and a stop request (worker.rs).
pub const TASKS_PER_WORKER: usize = 1;

/// The longest `sleep` a task may ask for, so a worker always comes back to its queue.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// The largest `fib` argument whose value fits in a u64.
pub const MAX_FIB: u64 = 93;

/// CLOCK_MONOTONIC in nanoseconds, the clock of a result's `taken` field: one clock for every
/// process on the machine, so times taken by the producers and by the supervisor can be
/// compared.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(t.tv_nsec()).unwrap_or(0)
    })
}

const TASK_HEADER: usize = 16;
/// The bytes of a result before its output: the smallest result there is.
pub const RESULT_HEADER: usize = 28;
const HELLO_LEN: usize = 12;

/// What a task asks a worker to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Return the argument.
    Echo,
    /// Sleep for the argument in milliseconds, then return "slept N ms".
    Sleep,
    /// Return the Nth Fibonacci number.
    Fib,
    /// Return the SHA-256 of the argument, in hex.
    Sha256,
    /// Always fail: the poison task that exercises retries and the dead-letter queue.
    Fail,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Echo, Kind::Sleep, Kind::Fib, Kind::Sha256, Kind::Fail];

    fn code(self) -> u8 {
        match self {
            Kind::Echo => 1,
            Kind::Sleep => 2,
            Kind::Fib => 3,
            Kind::Sha256 => 4,
            Kind::Fail => 5,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Echo => "echo",
            Kind::Sleep => "sleep",
            Kind::Fib => "fib",
            Kind::Sha256 => "sha256",
            Kind::Fail => "fail",
        }
    }
}

/// A unit of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Unique per producer (see the module docs).
    pub id: u64,
    /// What to do.
    pub kind: Kind,
    /// 1 for a new task; a retry carries the attempt it is.
    pub attempt: u8,
    /// Where the result goes; empty for the default `NAME-results`.
    pub reply: String,
    /// The argument, as the producer gave it.
    pub arg: Vec<u8>,
}

/// How a task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The task ran and returned its output.
    Ok,
    /// The task ran and failed; the output says why.
    Failed,
    /// The task failed [`MAX_ATTEMPTS`] times and went to the dead-letter queue.
    Dead,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Dead => 2,
        }
    }

    fn from_code(code: u8) -> Option<Status> {
        [Status::Ok, Status::Failed, Status::Dead]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Dead => "dead",
        })
    }
}

/// What a worker reports for a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    /// The task's id.
    pub id: u64,
    /// The worker that ran it.
    pub pid: i32,
    /// How it ended.
    pub status: Status,
    /// The attempt that produced this result.
    pub attempt: u8,
    /// When the supervisor first took the task (CLOCK_MONOTONIC ns); 0 from a worker.
    pub taken_ns: u64,
    /// The worker exits after this task.
    pub last: bool,
    /// The output, or the error.
    pub output: Vec<u8>,
}

/// Any message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A task.
    Task(Task),
    /// A result.
    Result(TaskResult),
    /// A worker is ready for tasks; its inbox is `NAME-w<pid>`.
    Hello {
        /// The worker's pid.
        pid: i32,
        /// The System V id of its inbox; -1 for POSIX.
        sysv_id: i32,
    },
    /// The supervisor asks a worker to exit.
    Stop,
}

/// Why bytes from a queue could not be decoded. Such bytes come from another process, so this
/// is an ordinary error to report, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

/// A task or result that does not fit the queue's `mq_msgsize`, or a field that does not fit
/// its length field: refused before anything is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooBig {
    /// The encoded size.
    pub len: usize,
    /// The most the queue takes.
    pub max: usize,
}

impl fmt::Display for TooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the task is {} bytes encoded, but the queue's messages hold at most {} \
             (mq_msgsize); nothing was sent",
            self.len, self.max
        )
    }
}

/// The encoded size of a task, to check against `mq_msgsize` before sending.
pub fn task_len(reply: &str, arg: &[u8]) -> usize {
    TASK_HEADER + reply.len() + arg.len()
}

/// The length a task message says it has (its header's lengths), if `b` starts like a task:
/// for bytes whose length nobody recorded (see record.rs). `decode` still checks the rest.
pub fn declared_len(b: &[u8]) -> Option<usize> {
    if b.len() < TASK_HEADER || b[0] != b'T' {
        return None;
    }
    let r = usize::from(u16::from_le_bytes(le(b, 12)));
    let a = usize::from(u16::from_le_bytes(le(b, 14)));
    Some(TASK_HEADER + r + a)
}

/// Encode a task; refused if it would be longer than `max` bytes.
pub fn encode_task(t: &Task, max: usize) -> Result<Vec<u8>, TooBig> {
    let len = task_len(&t.reply, &t.arg);
    let (Ok(r), Ok(a)) = (u16::try_from(t.reply.len()), u16::try_from(t.arg.len())) else {
        return Err(TooBig {
            len,
            max: max.min(usize::from(u16::MAX)),
        });
    };
    if len > max {
        return Err(TooBig { len, max });
    }
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[b'T', VERSION, t.kind.code(), t.attempt]);
    out.extend_from_slice(&t.id.to_le_bytes());
    out.extend_from_slice(&r.to_le_bytes());
    out.extend_from_slice(&a.to_le_bytes());
    out.extend_from_slice(t.reply.as_bytes());
    out.extend_from_slice(&t.arg);
    Ok(out)
}

/// Encode a result, cutting the output (at a character boundary, with a note) so the message
/// fits `max` bytes: a result is always delivered, even for a task whose output is too long.
pub fn encode_result(r: &TaskResult, max: usize) -> Vec<u8> {
    let room = max.saturating_sub(RESULT_HEADER).min(usize::from(u16::MAX));
    let output: std::borrow::Cow<'_, [u8]> = if r.output.len() <= room {
        r.output.as_slice().into()
    } else {
        const NOTE: &[u8] = b"... (cut)";
        let mut keep = room.saturating_sub(NOTE.len());
        // Back up to a UTF-8 character boundary (never in the middle of a sequence).
        while keep > 0 && (r.output[keep] & 0xc0) == 0x80 {
            keep -= 1;
        }
        let mut cut = r.output[..keep].to_vec();
        cut.extend_from_slice(&NOTE[..NOTE.len().min(room)]);
        cut.into()
    };
    let o = u16::try_from(output.len()).expect("the output was cut to fit a u16 above");
    let mut out = Vec::with_capacity(RESULT_HEADER + output.len());
    out.extend_from_slice(&[b'R', VERSION, r.status.code(), r.attempt]);
    out.extend_from_slice(&r.id.to_le_bytes());
    out.extend_from_slice(&r.pid.to_le_bytes());
    out.extend_from_slice(&r.taken_ns.to_le_bytes());
    out.extend_from_slice(&[u8::from(r.last), 0]);
    out.extend_from_slice(&o.to_le_bytes());
    out.extend_from_slice(&output);
    out
}

/// Encode a worker's hello.
pub fn encode_hello(pid: i32, sysv_id: i32) -> Vec<u8> {
    let mut out = vec![b'H', VERSION, 0, 0];
    out.extend_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&sysv_id.to_le_bytes());
    out
}

/// Encode a stop request.
pub fn encode_stop() -> Vec<u8> {
    vec![b'S', VERSION]
}

fn bad(why: impl Into<String>) -> Malformed {
    Malformed(why.into())
}

/// Little-endian integers at fixed offsets, from a slice whose length was checked first.
fn le<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b[at..at + N]
        .try_into()
        .expect("the caller checked the message length")
}

/// Decode any message. Every length is checked against the bytes actually received.
pub fn decode(b: &[u8]) -> Result<Message, Malformed> {
    let (&ty, rest) = b.split_first().ok_or_else(|| bad("empty"))?;
    match rest.first() {
        Some(&VERSION) => {}
        Some(v) => return Err(bad(format!("version {v}, expected {VERSION}"))),
        None => return Err(bad("1 byte, shorter than any message")),
    }
    match ty {
        b'T' => decode_task(b).map(Message::Task),
        b'R' => decode_result(b).map(Message::Result),
        b'H' if b.len() == HELLO_LEN => Ok(Message::Hello {
            pid: i32::from_le_bytes(le(b, 4)),
            sysv_id: i32::from_le_bytes(le(b, 8)),
        }),
        b'H' => Err(bad(format!(
            "hello is {} bytes, expected {HELLO_LEN}",
            b.len()
        ))),
        b'S' if b.len() == 2 => Ok(Message::Stop),
        b'S' => Err(bad(format!("stop is {} bytes, expected 2", b.len()))),
        other => Err(bad(format!(
            "unknown type byte 0x{other:02x} ({} bytes)",
            b.len()
        ))),
    }
}

fn decode_task(b: &[u8]) -> Result<Task, Malformed> {
    if b.len() < TASK_HEADER {
        return Err(bad(format!(
            "task of {} bytes, shorter than its {TASK_HEADER}-byte header",
            b.len()
        )));
    }
    let kind = Kind::from_code(b[2]).ok_or_else(|| bad(format!("unknown task kind {}", b[2])))?;
    let attempt = b[3];
    if !(1..=MAX_ATTEMPTS).contains(&attempt) {
        return Err(bad(format!(
            "attempt {attempt}, expected 1..={MAX_ATTEMPTS}"
        )));
    }
    let id = u64::from_le_bytes(le(b, 4));
    let r = usize::from(u16::from_le_bytes(le(b, 12)));
    let a = usize::from(u16::from_le_bytes(le(b, 14)));
    if b.len() != TASK_HEADER + r + a {
        return Err(bad(format!(
            "task of {} bytes, but its header says {TASK_HEADER} + {r} + {a}",
            b.len()
        )));
    }
    let reply = std::str::from_utf8(&b[TASK_HEADER..TASK_HEADER + r])
        .map_err(|_| bad("reply queue name is not UTF-8"))?
        .to_owned();
    Ok(Task {
        id,
        kind,
        attempt,
        reply,
        arg: b[TASK_HEADER + r..].to_vec(),
    })
}

fn decode_result(b: &[u8]) -> Result<TaskResult, Malformed> {
    if b.len() < RESULT_HEADER {
        return Err(bad(format!(
            "result of {} bytes, shorter than its {RESULT_HEADER}-byte header",
            b.len()
        )));
    }
    let status =
        Status::from_code(b[2]).ok_or_else(|| bad(format!("unknown result status {}", b[2])))?;
    let o = usize::from(u16::from_le_bytes(le(b, 26)));
    if b.len() != RESULT_HEADER + o {
        return Err(bad(format!(
            "result of {} bytes, but its header says {RESULT_HEADER} + {o}",
            b.len()
        )));
    }
    Ok(TaskResult {
        id: u64::from_le_bytes(le(b, 4)),
        pid: i32::from_le_bytes(le(b, 12)),
        status,
        attempt: b[3],
        taken_ns: u64::from_le_bytes(le(b, 16)),
        last: b[24] & 1 != 0,
        output: b[RESULT_HEADER..].to_vec(),
    })
}

/// A task as a user writes it: `KIND [ARG]`, e.g. `echo hello world`, `sleep 250`, `fib 30`,
/// `sha256 abc`, `fail`. The argument of `sleep` and `fib` is checked here, so a bad one is
/// refused before it is sent; a worker checks it again (the bytes may come from anyone).
pub fn parse_task(text: &str) -> Result<(Kind, Vec<u8>), String> {
    let (name, arg) = text.split_once(' ').unwrap_or((text, ""));
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| {
            format!(
                "unknown task kind {name:?}; expected echo TEXT, sleep MS, fib N, sha256 TEXT \
                 or fail"
            )
        })?;
    match kind {
        Kind::Sleep => {
            sleep_ms(arg.as_bytes())?;
        }
        Kind::Fib => {
            fib_arg(arg.as_bytes())?;
        }
        _ => {}
    }
    Ok((kind, arg.as_bytes().to_vec()))
}

/// The argument of `sleep`, checked: 0..=[`MAX_SLEEP_MS`].
pub fn sleep_ms(arg: &[u8]) -> Result<u64, String> {
    number(arg, "sleep", MAX_SLEEP_MS)
}

/// The argument of `fib`, checked: 0..=[`MAX_FIB`].
pub fn fib_arg(arg: &[u8]) -> Result<u64, String> {
    number(arg, "fib", MAX_FIB)
}

fn number(arg: &[u8], what: &str, max: u64) -> Result<u64, String> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&n| n <= max)
        .ok_or_else(|| {
            format!(
                "{what} needs a number from 0 to {max}, not {:?}",
                common::out::escape(arg)
            )
        })
}

/// A task id as users see it: `<pid>-<sequence>` for ids made by `pid << 32 | sequence`.
pub fn show_id(id: u64) -> String {
    format!("{}-{}", id >> 32, id & 0xffff_ffff)
}

/// Parse an id printed by [`show_id`] (or a plain decimal u64).
pub fn parse_id(text: &str) -> Option<u64> {
    match text.split_once('-') {
        Some((hi, lo)) => {
            let hi: u32 = hi.parse().ok()?;
            let lo: u32 = lo.parse().ok()?;
            Some((u64::from(hi) << 32) | u64::from(lo))
        }
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            id: (4242 << 32) | 7,
            kind: Kind::Echo,
            attempt: 1,
            reply: "/ipc-demo-t-r99".into(),
            arg: b"hello".to_vec(),
        }
    }

    #[test]
    fn task_layout_is_as_documented() {
        let b = encode_task(&task(), 1024).unwrap();
        assert_eq!(&b[..4], &[b'T', 1, 1, 1]);
        assert_eq!(&b[4..12], &((4242u64 << 32) | 7).to_le_bytes());
        assert_eq!(&b[12..14], &15u16.to_le_bytes());
        assert_eq!(&b[14..16], &5u16.to_le_bytes());
        assert_eq!(&b[16..31], b"/ipc-demo-t-r99");
        assert_eq!(&b[31..], b"hello");
        assert_eq!(decode(&b).unwrap(), Message::Task(task()));
    }

    #[test]
    fn oversize_task_is_refused() {
        let mut t = task();
        t.arg = vec![b'x'; 1000];
        let err = encode_task(&t, 1024).unwrap_err();
        assert_eq!(
            err,
            TooBig {
                len: 1031,
                max: 1024
            }
        );
        assert!(err.to_string().contains("nothing was sent"));
        t.arg = vec![b'x'; 70_000];
        assert!(encode_task(&t, 100_000).is_err());
    }

    #[test]
    fn result_round_trips_and_long_output_is_cut() {
        let r = TaskResult {
            id: 9,
            pid: 77,
            status: Status::Ok,
            attempt: 2,
            taken_ns: 123,
            last: true,
            output: "é".repeat(100).into_bytes(),
        };
        let b = encode_result(&r, 1024);
        assert_eq!(b.len(), 28 + 200);
        assert_eq!(decode(&b).unwrap(), Message::Result(r.clone()));
        let cut = encode_result(&r, 64);
        assert!(cut.len() <= 64);
        let Message::Result(c) = decode(&cut).unwrap() else {
            panic!("not a result")
        };
        let text = String::from_utf8(c.output).expect("cut at a character boundary");
        assert!(text.ends_with("... (cut)"), "{text}");
    }

    #[test]
    fn garbage_is_reported_not_trusted() {
        for (bytes, want) in [
            (&b""[..], "empty"),
            (b"T", "shorter than any"),
            (b"T\x02", "version 2"),
            (b"X\x01", "unknown type"),
            (b"T\x01\x01\x01", "shorter than its 16-byte header"),
            (b"H\x01\0\0\x01\0\0", "hello is 7 bytes"),
            (b"H\x01\0\0\x01\0\0\0\x01\0\0", "hello is 11 bytes"),
        ] {
            let err = decode(bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{bytes:?}: {err}");
        }
        // A header that claims more bytes than arrived.
        let mut b = encode_task(&task(), 1024).unwrap();
        b.pop();
        assert!(decode(&b).unwrap_err().0.contains("header says"));
        // Kind and attempt are range-checked.
        let mut b = encode_task(&task(), 1024).unwrap();
        b[2] = 9;
        assert!(decode(&b).unwrap_err().0.contains("unknown task kind 9"));
        b[2] = 1;
        b[3] = 6;
        assert!(decode(&b).unwrap_err().0.contains("attempt 6"));
    }

    #[test]
    fn task_text_is_checked() {
        assert_eq!(
            parse_task("echo a b").unwrap(),
            (Kind::Echo, b"a b".to_vec())
        );
        assert_eq!(parse_task("fail").unwrap(), (Kind::Fail, vec![]));
        assert!(parse_task("fib 94").unwrap_err().contains("0 to 93"));
        assert!(parse_task("sleep -1").is_err());
        assert!(
            parse_task("frobnicate")
                .unwrap_err()
                .contains("unknown task kind")
        );
    }

    #[test]
    fn hello_round_trips() {
        let b = encode_hello(4242, -1);
        assert_eq!(b.len(), 12);
        assert_eq!(
            decode(&b).unwrap(),
            Message::Hello {
                pid: 4242,
                sysv_id: -1
            }
        );
    }

    #[test]
    fn ids_print_and_parse() {
        let id = (4242u64 << 32) | 7;
        assert_eq!(show_id(id), "4242-7");
        assert_eq!(parse_id("4242-7"), Some(id));
        assert_eq!(parse_id("12"), Some(12));
        assert_eq!(parse_id("x-1"), None);
    }
}
