//! Helpers shared by the integration tests: unique queue names, a supervisor that is started
//! and stopped with its checks, and the leftover check.
#![allow(dead_code)] // Each test file uses its own subset.

pub mod tracer;

use std::process::{Command, Output};
use std::time::Duration;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub const BIN: &str = env!("CARGO_BIN_EXE_mqueue-demo");
/// How long a test waits for anything; only reached when it is failing already.
pub const WAIT: Duration = common::testkit::DEADLINE;

/// A queue name no other test (or test run) uses: `/ipc-demo-t-<pid>-<n>-<clock>`.
pub fn queue() -> String {
    common::names::posix_name(&common::names::unique("t"))
}

/// `mqueue-demo ARGS --queue QUEUE`, in the sandbox.
pub fn mq(sb: &Sandbox, queue: &str, args: &[&str]) -> Command {
    let mut cmd = sb.command(BIN);
    cmd.args(args).arg("--queue").arg(queue);
    cmd
}

/// Run `mqueue-demo ARGS --queue QUEUE` to completion with `input` on stdin.
pub fn run(sb: &Sandbox, queue: &str, args: &[&str], input: &[u8]) -> Output {
    testkit::run(&mut mq(sb, queue, args), input)
}

/// A running supervisor: a `testkit::Daemon` (its child, stdout after the `ready:` line,
/// stderr, the ready line), and the queue it serves.
pub struct Supervisor {
    daemon: testkit::Daemon,
    pub queue: String,
}

impl std::ops::Deref for Supervisor {
    type Target = testkit::Daemon;
    fn deref(&self) -> &testkit::Daemon {
        &self.daemon
    }
}

impl std::ops::DerefMut for Supervisor {
    fn deref_mut(&mut self) -> &mut testkit::Daemon {
        &mut self.daemon
    }
}

impl Supervisor {
    /// `mqueue-demo [-v] run --queue QUEUE ARGS`, waiting for its "ready" line, which names
    /// the queue.
    pub fn start(sb: &Sandbox, queue: &str, args: &[&str]) -> Supervisor {
        let mut cmd = mq(sb, queue, &["run"]);
        cmd.args(args);
        // Small messages unless the test asks otherwise: RLIMIT_MSGQUEUE (800 KiB per user by
        // default) counts depth x msgsize for every queue, and tests run in parallel, each
        // with 4 queues, an inbox per worker and reply queues.
        if !args.contains(&"--msgsize") {
            cmd.args(["--msgsize", "256"]);
        }
        let daemon = testkit::Daemon::start(&mut cmd);
        let kind = if args.contains(&"--sysv") {
            "sysv-mqueue"
        } else {
            "mqueue"
        };
        assert_eq!(daemon.serves(kind), queue);
        Supervisor {
            daemon,
            queue: queue.to_owned(),
        }
    }

    /// Wait for a line on its stdout.
    pub fn wait_for(&mut self, want: impl Fn(&str) -> bool) -> String {
        self.daemon.wait_stdout(want)
    }

    /// Wait for a `-v` line on its stderr (its workers' too: they share it).
    pub fn wait_trace(&mut self, want: impl Fn(&str) -> bool) -> String {
        self.daemon.wait_stderr(want)
    }

    /// The pids of the workers it started, as it announced them, waiting for `n`.
    pub fn workers(&mut self, n: usize) -> Vec<Pid> {
        (0..n)
            .map(|_| {
                let l = self.wait_for(|l| l.starts_with("worker pid ") && l.ends_with(" started"));
                Pid::from_raw(l.split(' ').nth(2).unwrap().parse().unwrap())
            })
            .collect()
    }

    /// SIGTERM to the supervisor alone (as `kill "$(cat PID_FILE)"` does; its workers hear it
    /// from the supervisor); it must exit 0 and leave no queue. Returns its last line
    /// ("stopped ...").
    pub fn stop(self) -> String {
        nix::sys::signal::kill(self.daemon.pid(), Signal::SIGTERM).unwrap();
        self.finish()
    }

    /// Wait for a supervisor that was already told to stop; checks as [`Supervisor::stop`].
    pub fn finish(self) -> String {
        let queue = self.queue.clone();
        let stopped = self.finish_unchecked();
        assert_no_queues(&queue);
        stopped
    }

    /// [`Supervisor::finish`] without the leftover check, for a test whose other processes
    /// (a `submit --wait` and its reply queue) are still running.
    pub fn finish_unchecked(self) -> String {
        stopped_line(&self.daemon.wait())
    }

    /// `sig` to its process group, as a terminal's Ctrl-C (SIGINT) or hangup (SIGHUP) reaches
    /// the supervisor and its workers together; it must exit 0 and leave no queue.
    pub fn stop_with(self, sig: Signal) -> String {
        let queue = self.queue.clone();
        let stopped = stopped_line(&self.daemon.stop_with(sig));
        assert_no_queues(&queue);
        stopped
    }
}

/// A stopped supervisor's "stopped ..." line, after checking that it exited 0, as a daemon
/// asked to stop does.
fn stopped_line(stopped: &testkit::Stopped) -> String {
    let out = &stopped.stdout;
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "supervisor: {:?}; {out:?}; stderr {:?}",
        stopped.status,
        stopped.stderr
    );
    out.iter()
        .find(|l| l.starts_with("stopped "))
        .unwrap_or_else(|| panic!("no stopped line: {out:?}"))
        .clone()
}

/// No queue whose name starts with `queue` exists: checked in /dev/mqueue when it is mounted,
/// else by opening each name the supervisor creates; nor the supervisor's record in /dev/shm.
pub fn assert_no_queues(queue: &str) {
    let record = format!("/dev/shm{queue}-held");
    assert!(
        std::fs::symlink_metadata(&record).is_err(),
        "{record} was left behind"
    );
    if let Some(dir) = common::names::mqueue_listing() {
        let left: Vec<String> = dir
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with(&queue[1..]))
            .collect();
        assert!(left.is_empty(), "queues left behind: {left:?}");
        return;
    }
    // Only the names the supervisor creates can be tried; a worker's inbox (`-w<pid>`) cannot
    // be found without the listing. Said once per test binary.
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!(
                "SKIPPED the inbox half of assert_no_queues: {}\n",
                common::names::MQUEUE_NOT_MOUNTED
            )
            .as_bytes(),
        );
    });
    for suffix in ["", "-results", "-dead", "-done"] {
        let name = format!("{queue}{suffix}");
        assert!(!queue_exists(&name), "{name} was left behind");
    }
}

/// True if the POSIX queue `name` exists (opened for reading, which takes nothing from it,
/// and closed at once).
pub fn queue_exists(name: &str) -> bool {
    let res = nix::mqueue::mq_open(
        name,
        nix::mqueue::MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    );
    match res {
        Err(nix::errno::Errno::ENOENT) => false,
        Ok(mqd) => {
            let _ = nix::mqueue::mq_close(mqd);
            true
        }
        Err(e) => panic!("mq_open {name}: {e}"),
    }
}

pub fn stdout(out: &Output) -> String {
    testkit::stdout(out)
}

pub fn stderr(out: &Output) -> String {
    testkit::stderr(out)
}

/// The `mq_getattr` depth of `name`, through `status`.
pub fn depth(sb: &Sandbox, queue: &str, name: &str) -> usize {
    let out = run(sb, queue, &["status"], b"");
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in status: {text}"));
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Wait until `pid` (any process, not only a child of ours) has exited, through a pidfd.
/// False if it still runs after `WAIT`.
pub fn wait_gone(pid: Pid) -> bool {
    common::pidfd::wait_gone(pid, WAIT).unwrap()
}

/// Make a queue by hand, as another program or a killed process would leave it:
/// `O_CREAT|O_EXCL`, mode 0600, `depth` messages of `msgsize` bytes, open for reading and
/// writing. The caller closes it (and may fchown/fchmod it first).
pub fn make_queue(name: &str, depth: i64, msgsize: i64) -> nix::mqueue::MqdT {
    use nix::mqueue::{MQ_OFlag, MqAttr, mq_open};
    let attr = MqAttr::new(0, depth, msgsize, 0);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR;
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o600);
    mq_open(name, flags, mode, Some(&attr)).unwrap_or_else(|e| panic!("mq_open {name}: {e}"))
}

/// `mqueue-demo unlink` after a supervisor killed with -9; nothing of `queue` is left.
pub fn unlink_leftovers(sb: &Sandbox, queue: &str) {
    let out = run(sb, queue, &["unlink"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_queues(queue);
}

/// A task as `src/protocol.rs` lays it out: kind 1 (`echo ARG`), attempt 1, id `id`, its result
/// to go to `reply` (empty: `NAME-results`).
pub fn echo_task(id: u64, reply: &str, arg: &[u8]) -> Vec<u8> {
    task(1, id, reply, arg)
}

/// A task of kind `kind` (1 echo, 2 sleep, ...), as `src/protocol.rs` lays it out.
pub fn task(kind: u8, id: u64, reply: &str, arg: &[u8]) -> Vec<u8> {
    let mut task = vec![b'T', 1, kind, 1];
    task.extend_from_slice(&id.to_le_bytes());
    task.extend_from_slice(&u16::try_from(reply.len()).unwrap().to_le_bytes());
    task.extend_from_slice(&u16::try_from(arg.len()).unwrap().to_le_bytes());
    task.extend_from_slice(reply.as_bytes());
    task.extend_from_slice(arg);
    task
}

/// An ok result of task `id` (attempt 1) from worker `pid`, as `src/protocol.rs` lays it out.
pub fn ok_result(id: u64, pid: Pid, output: &[u8]) -> Vec<u8> {
    let mut r = vec![b'R', 1, 0, 1];
    r.extend_from_slice(&id.to_le_bytes());
    r.extend_from_slice(&pid.as_raw().to_le_bytes());
    r.extend_from_slice(&0u64.to_le_bytes());
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(&u16::try_from(output.len()).unwrap().to_le_bytes());
    r.extend_from_slice(output);
    r
}

/// Send `msg` (priority 0) to the POSIX queue `name`, as another program of ours could.
pub fn send_to(name: &str, msg: &[u8]) {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_open, mq_send};
    let mqd = mq_open(
        name,
        MQ_OFlag::O_WRONLY,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .unwrap_or_else(|e| panic!("mq_open {name}: {e}"));
    mq_send(&mqd, msg, 0).unwrap_or_else(|e| panic!("mq_send {name}: {e}"));
    mq_close(mqd).unwrap();
}

/// One message from the POSIX queue `mqd`, waiting for it at most [`WAIT`].
pub fn receive_within(mqd: &nix::mqueue::MqdT) -> Vec<u8> {
    let size = nix::mqueue::mq_getattr(mqd).unwrap().msgsize();
    let mut buf = vec![0; usize::try_from(size).unwrap()];
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).unwrap();
    let until = now + nix::sys::time::TimeSpec::from_duration(WAIT);
    let mut prio = 0;
    loop {
        match nix::mqueue::mq_timedreceive(mqd, &mut buf, &mut prio, &until) {
            Ok(n) => {
                buf.truncate(n);
                return buf;
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("mq_timedreceive: {e}"),
        }
    }
}

/// The output of `submit --wait`: an id per task sent (a line without a space) and a result
/// per task (`ID ok attempt=...`). Every one of the `n` ids has exactly one result, ok, and no
/// result is for an id not sent.
pub fn assert_each_id_once(lines: &[String], n: usize) {
    let ids: Vec<&str> = lines
        .iter()
        .filter(|l| !l.contains(' '))
        .map(String::as_str)
        .collect();
    assert_eq!(ids.len(), n, "ids printed");
    let mut results: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for l in lines.iter().filter(|l| l.contains(' ')) {
        let (id, rest) = l.split_once(' ').unwrap();
        results.entry(id).or_default().push(rest);
    }
    for id in &ids {
        match results.get(id).map(Vec::as_slice) {
            Some([r]) => assert!(r.starts_with("ok attempt="), "{id}: {r}"),
            other => panic!("task {id}: {other:?}"),
        }
    }
    assert_eq!(results.len(), n, "a result for an id not sent");
}

/// The children of `pid` right now (a supervisor's: its workers), from /proc.
pub fn children(pid: Pid) -> Vec<Pid> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(Pid::from_raw)
        .collect()
}
