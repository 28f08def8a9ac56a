//! Helpers shared by the integration tests: start a daemon and wait for it, read its log.
#![allow(dead_code)] // Each test file uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::child::{Lines, Supervised};
use common::testkit::{self, Sandbox};

pub const BIN: &str = env!("CARGO_BIN_EXE_fifo-demo");
/// How long a test waits for anything; only reached when it is failing already.
pub const WAIT: Duration = testkit::DEADLINE;

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

/// A running daemon and what the test needs to know about it: `common::testkit::Daemon`'s
/// fields, and its FIFO and log.
pub struct Daemon {
    pub child: Supervised,
    pub stdout: Lines,
    pub stderr: Lines,
    pub ready: String,
    pub fifo: PathBuf,
    pub log: PathBuf,
}

impl Daemon {
    /// Start `fifo-demo daemon` with `args` (the default FIFO unless `--fifo` is among them)
    /// and wait for its "ready" line (`testkit::Daemon::start`).
    pub fn start(sb: &Sandbox, args: &[&str]) -> Daemon {
        let mut cmd = fifo_demo(sb);
        cmd.arg("daemon").args(args);
        let mut daemon = testkit::Daemon::start(&mut cmd);
        // "ready: pid N fifo PATH" on stdout (common::lifecycle).
        let fifo = PathBuf::from(daemon.serves("fifo"));
        // "fifo-demo daemon: reads FIFO, logs to LOG (pid file P)" on stderr, written first.
        let details = daemon.wait_stderr(|l| l.contains("daemon: reads "));
        let log = details
            .split(", logs to ")
            .nth(1)
            .and_then(|r| r.split(" (pid file").next())
            .expect("the details line names the log");
        let testkit::Daemon {
            child,
            stdout,
            stderr,
            ready,
        } = daemon;
        Daemon {
            child,
            stdout,
            stderr,
            ready,
            fifo,
            log: sb.path().join(log),
        }
    }

    /// SIGTERM, and check that it exits 0 (`testkit::Daemon::stop`) and removes the FIFO and
    /// its pid file.
    pub fn stop(self) {
        let Daemon {
            child,
            stdout,
            stderr,
            ready,
            fifo,
            ..
        } = self;
        testkit::Daemon {
            child,
            stdout,
            stderr,
            ready,
        }
        .stop();
        assert!(!fifo.exists(), "FIFO left behind");
        assert!(!pid_file(&fifo).exists(), "pid file left behind");
    }
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
