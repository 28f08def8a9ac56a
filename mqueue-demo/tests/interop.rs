//! Another language speaks the documented format: Python's `posix_ipc.MessageQueue` (PyPI
//! package `posix_ipc`) submits a task and reads its result.

mod support;

use common::testkit::{self, Sandbox};
use support::*;

/// The producer and results reader, in Python, from the byte tables in `src/protocol.rs`.
const PRODUCER: &str = r#"
import os, struct, sys, posix_ipc
queue = sys.argv[1]
task_id = (os.getpid() << 32) | 1
arg = b"hello from python"
# b'T', version 1, kind 4 (sha256), attempt 1, id, reply length 0, argument length.
task = struct.pack("<cBBBQHH", b"T", 1, 4, 1, task_id, 0, len(arg)) + arg
posix_ipc.MessageQueue(queue).send(task, priority=5)
results = posix_ipc.MessageQueue(queue + "-results")
msg, _prio = results.receive(60)
(ty, ver, status, attempt, rid, pid, taken, flags, _res,
 olen) = struct.unpack_from("<cBBBQiQBBH", msg)
assert (ty, ver) == (b"R", 1), msg
assert rid == task_id, (rid, task_id)
assert len(msg) == 28 + olen
print(status, attempt, pid, taken > 0, msg[28:].decode())
"#;

#[test]
fn python_posix_ipc_submits_and_reads_a_result() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let out = testkit::run(sb.command("python3").args(["-c", PRODUCER, &q]), b"");
    let err = stderr(&out);
    assert!(
        !err.contains("No module named 'posix_ipc'"),
        "this test needs the PyPI package posix_ipc: pip install posix_ipc"
    );
    assert!(out.status.success(), "{err}");
    let text = stdout(&out);
    let fields: Vec<&str> = text.trim().splitn(5, ' ').collect();
    // status 0 (ok), attempt 1, a worker pid, stamped by the supervisor, sha256 in hex.
    assert_eq!(fields[0], "0", "{text}");
    assert_eq!(fields[1], "1", "{text}");
    assert!(fields[2].parse::<i32>().unwrap() > 0, "{text}");
    assert_eq!(fields[3], "True", "{text}");
    let want = testkit::run(
        sb.command("python3").args([
            "-c",
            "import hashlib; print(hashlib.sha256(b'hello from python').hexdigest())",
        ]),
        b"",
    );
    assert_eq!(fields[4].trim(), stdout(&want).trim());
    sup.stop();
}

/// And the other way: our `submit` sends, Python reads the task queue as a worker would see
/// the raw bytes (no supervisor takes it: --workers 0).
#[test]
fn python_reads_a_task_as_documented() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    let out = run(&sb, &q, &["submit", "--priority", "7", "fib 10"], b"");
    let id = stdout(&out).trim().to_owned();
    let reader = r#"
import struct, sys, posix_ipc
msg, prio = posix_ipc.MessageQueue(sys.argv[1]).receive(60)
ty, ver, kind, attempt, tid, rlen, alen = struct.unpack_from("<cBBBQHH", msg)
assert len(msg) == 16 + rlen + alen
print(ty.decode(), ver, kind, attempt, f"{tid >> 32}-{tid & 0xffffffff}", prio,
      msg[16 + rlen:].decode())
"#;
    let out = testkit::run(sb.command("python3").args(["-c", reader, &q]), b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("T 1 3 1 {id} 7 10"));
    sup.stop();
}
