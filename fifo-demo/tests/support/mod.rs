//! Helpers shared by the integration tests: start a daemon and wait for it, read its log.
#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::child::{Lines, Supervised};
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;

pub const BIN: &str = env!("CARGO_BIN_EXE_fifo-demo");
/// How long a test waits for anything; only reached when it is failing already.
pub const WAIT: Duration = Duration::from_secs(60);

/// A command for the binary, inside the sandbox.
pub fn fifo_demo(sb: &Sandbox) -> Command {
    sb.command(BIN)
}

/// `cmd` with this crate's binary first on its PATH, for shell recipes that say `fifo-demo`.
pub fn with_bin_on_path(cmd: &mut Command) -> &mut Command {
    let bin_dir = Path::new(BIN)
        .parent()
        .expect("a binary lives in a directory");
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH entries have no colon");
    cmd.env("PATH", path)
}

/// A running daemon and what the test needs to know about it.
pub struct Daemon {
    pub child: Supervised,
    pub stdout: Lines,
    pub stderr: Lines,
    pub fifo: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Start `fifo-demo daemon` with `args` (the default FIFO unless `--fifo` is among them)
    /// and wait for its "ready" line.
    pub fn start(sb: &Sandbox, args: &[&str]) -> Daemon {
        let mut cmd = fifo_demo(sb);
        cmd.arg("daemon").args(args);
        Self::started(testkit::spawn(&mut cmd), sb)
    }

    /// Wait for the readiness line of a daemon started by the caller, and learn its paths.
    pub fn started(child: Supervised, sb: &Sandbox) -> Daemon {
        let mut stdout = child.stdout_lines().expect("stdout is piped");
        let mut stderr = child.stderr_lines().expect("stderr is piped");
        // "ready: pid N fifo PATH" on stdout (common::lifecycle).
        let ready = stdout
            .wait_for(|l| l.starts_with("ready: "), WAIT)
            .unwrap_or_else(|e| panic!("daemon did not start: {e}"));
        let fifo = ready_object(&ready, child.pid().as_raw(), "fifo");
        // "fifo-demo daemon: reads FIFO, logs to LOG (pid file P)" on stderr, written first.
        let details = stderr
            .wait_for(|l| l.contains("daemon: reads "), WAIT)
            .unwrap_or_else(|e| panic!("no details line: {e}"));
        let log = details
            .split(", logs to ")
            .nth(1)
            .and_then(|r| r.split(" (pid file").next())
            .expect("the details line names the log");
        Daemon {
            child,
            stdout,
            stderr,
            fifo,
            log: sb.path().join(log),
        }
    }

    /// SIGTERM, and check that it exits 0 and removes the FIFO and its pid file.
    pub fn stop(self) {
        self.child.signal(Signal::SIGTERM).unwrap();
        let status = self.child.wait_timeout(WAIT).unwrap();
        assert!(status.success(), "daemon: {status:?}");
        assert!(!self.fifo.exists(), "FIFO left behind");
        assert!(!pid_file(&self.fifo).exists(), "pid file left behind");
    }
}

/// The object `kind` in a readiness line `ready: pid PID KIND PATH`, checked to name `pid`.
pub fn ready_object(line: &str, pid: i32, kind: &str) -> PathBuf {
    let rest = line
        .strip_prefix(&format!("ready: pid {pid} {kind} "))
        .unwrap_or_else(|| panic!("not `ready: pid {pid} {kind} PATH`: {line:?}"));
    PathBuf::from(rest)
}

pub fn pid_file(fifo: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pid", fifo.display()))
}

/// Run `fifo-demo log --fifo FIFO ARGS...` with `input` on stdin.
pub fn log(sb: &Sandbox, fifo: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = fifo_demo(sb);
    cmd.arg("log").arg("--fifo").arg(fifo).args(args);
    testkit::run(&mut cmd, input)
}

/// The lines of a log file (lossy; the daemon only writes UTF-8 anyway).
pub fn lines_of(path: &Path) -> Vec<String> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .expect("the log is valid UTF-8")
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// Wait until `cond` holds, checking every few milliseconds: for files another process
/// writes, which offer nothing to block on. Panics with `what` at the deadline.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait until the log at `path` has a line that satisfies `want`; returns all its lines.
pub fn wait_for_line(path: &Path, want: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    wait_until(&format!("a line in {}", path.display()), || {
        lines = lines_of(path);
        lines.iter().any(|l| want(l))
    });
    lines
}

/// The message part of a log line, after the timestamp: `pid=42 hello`.
pub fn after_stamp(line: &str) -> &str {
    line.split_once(' ').map_or("", |(_, rest)| rest)
}

/// False, after saying so, when the test needs root (to give a file to another user) and we
/// are not root. CI runs as root, so these tests run there; elsewhere the skip is written
/// straight to stderr, which the test harness does not capture, so that it shows.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let line = format!("SKIPPED {test}: needs root to chown a file to another user\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    false
}
