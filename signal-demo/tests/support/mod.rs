//! Shared helpers for the signal-demo integration tests: start a daemon in a sandbox with a
//! config, wait for its lines, signal it.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output};

use common::child::{Lines, Supervised};
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_signal-demo");
/// How long any one expected line may take: generous, the machine is small and busy.
pub const WAIT: std::time::Duration = testkit::DEADLINE;

/// A daemon running in its own sandbox, with `cfg.toml` and `d.pid` there.
pub struct Daemon {
    pub sb: Sandbox,
    pub child: Supervised,
    pub out: Lines,
    pub cfg: PathBuf,
    pub pid_file: PathBuf,
}

impl Daemon {
    /// Write `cfg.toml`, start `signal-demo daemon --config cfg.toml --pid-file d.pid` and wait
    /// for its `ready:` line (`testkit::Daemon::start`; after it, its signals are blocked and
    /// read from the signalfd) and the config line after it.
    pub fn start(config: &str) -> Daemon {
        let sb = Sandbox::new();
        let cfg = sb.join("cfg.toml");
        std::fs::write(&cfg, config).unwrap();
        let pid_file = sb.join("d.pid");
        let mut cmd = sb.command(BIN);
        cmd.args(["daemon", "--config", "cfg.toml", "--pid-file", "d.pid"]);
        let mut daemon = testkit::Daemon::start(&mut cmd);
        assert_eq!(
            daemon.serves("pid-file"),
            "d.pid",
            "the lifecycle's readiness line"
        );
        let second = daemon.wait_stdout(|l| !l.is_empty());
        assert!(second.starts_with("generation 1: "), "{second}");
        Daemon {
            sb,
            child: daemon.child,
            out: daemon.stdout,
            cfg,
            pid_file,
        }
    }

    /// Wait for a line satisfying `want`, panicking with what was seen if it does not come.
    pub fn wait(&mut self, want: impl Fn(&str) -> bool) -> String {
        self.out
            .wait_for(want, WAIT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Wait for a line that starts with `prefix`.
    pub fn wait_prefix(&mut self, prefix: &str) -> String {
        self.wait(|l| l.starts_with(prefix))
    }

    /// kill(2) from the test process (the daemon leads its own process group).
    pub fn kill(&self, sig: Signal) {
        self.child.signal(sig).unwrap();
    }

    /// Replace the config atomically (write + rename), as an editor or deploy tool should.
    pub fn rewrite_config(&self, text: &str) {
        let tmp = self.sb.join("cfg.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.cfg).unwrap();
    }

    /// Run `signal-demo ARGS...` in the daemon's sandbox to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.sb.command(BIN);
        cmd.args(args);
        testkit::run(&mut cmd, b"")
    }

    /// Ask for a status line with SIGUSR1 and return it.
    pub fn status(&mut self) -> String {
        self.kill(Signal::SIGUSR1);
        self.wait_prefix("status: ")
    }

    /// Wait for the daemon to exit; its exit code.
    pub fn exit_code(&self) -> Option<i32> {
        self.child.wait_timeout(WAIT).unwrap().code()
    }
}

/// `... USR2=37 ...` -> 37.
pub fn count_in(status: &str, key: &str) -> u64 {
    status
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {status:?}"))
}

/// Run `signal-demo ARGS...` in a fresh sandbox.
pub fn run_in(sb: &Sandbox, args: &[&str]) -> Output {
    let mut cmd: Command = sb.command(BIN);
    cmd.args(args);
    testkit::run(&mut cmd, b"")
}

/// The set of signals pending for the whole process `pid` (`ShdPnd` in /proc/PID/status):
/// bit n-1 for signal n.
pub fn pending(pid: Pid) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("ShdPnd:"))
        .unwrap_or_else(|| panic!("no ShdPnd for {pid}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

/// True if signal number `signo` is in the `pending` set.
pub fn is_pending(pending: u64, signo: i32) -> bool {
    pending & (1 << (signo - 1)) != 0
}
