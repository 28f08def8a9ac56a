//! Helpers shared by the sem-demo integration tests: the binary in a sandbox, unique names,
//! and the SysV key a name maps to.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};
use std::time::Duration;

use common::testkit::{self, Sandbox};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sem-demo");
/// How long any one expected event may take: the workspace's one test deadline.
pub const WAIT: Duration = testkit::DEADLINE;

/// A semaphore name no other test uses (and that `make clean-ipc` knows for ours).
pub fn unique(tag: &str) -> String {
    common::names::unique(&format!("t-{tag}"))
}

/// `sem-demo ARGS...` in the sandbox.
pub fn cmd(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.command(BIN);
    c.args(args);
    c
}

/// Run `sem-demo ARGS...` to completion.
pub fn run(sb: &Sandbox, args: &[&str]) -> Output {
    testkit::run(&mut cmd(sb, args), b"")
}

/// Run it and return its exit code, panicking if a signal ended it.
pub fn code(sb: &Sandbox, args: &[&str]) -> i32 {
    let out = run(sb, args);
    out.status
        .code()
        .unwrap_or_else(|| panic!("sem-demo {args:?}: {:?}", out.status))
}

/// `sem-demo value NAME [FLAVOR]` as a number.
pub fn value(sb: &Sandbox, name: &str, flavor: &str) -> i32 {
    let out = run(sb, &["value", name, flavor]);
    assert!(out.status.success(), "value: {}", testkit::stderr(&out));
    testkit::stdout(&out)
        .trim()
        .parse()
        .expect("value prints a number")
}

/// The SysV key of NAME, as `sem-demo -v` narrates it (`semget(0x1dc0abcd, ...`).
pub fn key_of(sb: &Sandbox, name: &str) -> String {
    let out = run(sb, &["-v", "value", "--sysv", name]);
    let err = testkit::stderr(&out);
    let at = err.find("semget(0x").expect("the trace names the key") + "semget(".len();
    err[at..at + 10].to_owned()
}

/// Removes a semaphore at the end of a test, whatever happens.
pub struct Cleanup<'a> {
    pub sb: &'a Sandbox,
    pub name: String,
    pub flavor: &'static str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = testkit::run(&mut cmd(self.sb, &["unlink", &self.name, self.flavor]), b"");
    }
}

/// Replay a log of `s` (started) and `e` (ended) lines: the most commands that ran at once.
pub fn max_overlap(log: &str) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for l in log.lines() {
        match l {
            "s" => now += 1,
            "e" => now = now.checked_sub(1).expect("an end without a start"),
            other => panic!("unexpected log line {other:?}"),
        }
        max = max.max(now);
    }
    assert_eq!(now, 0, "every command ended");
    max
}

/// What `ipcs -s` lists now.
pub fn ipcs() -> String {
    testkit::stdout(&testkit::run(
        std::process::Command::new("ipcs").arg("-s"),
        b"",
    ))
}

/// $PATH with the directory of the binary under test first, for shell recipes.
pub fn path_with_bin() -> String {
    let dir = std::path::Path::new(BIN)
        .parent()
        .expect("the binary is in a directory");
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", dir.display())
}

/// The pid at the head of a `-v` line, `[pid 4242 role] ...`.
pub fn traced_pid(line: &str) -> nix::unistd::Pid {
    let pid = line
        .strip_prefix("[pid ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no [pid N role] in {line:?}"));
    nix::unistd::Pid::from_raw(pid)
}

/// Wait until none of `pids` runs any more (they are not our children: their state is read
/// from /proc). If one still runs after [`WAIT`], all are killed (not left to burn the CPU
/// after the test) and the test fails naming `what`.
pub fn wait_not_running(pids: &[nix::unistd::Pid], what: &str) {
    let give_up = std::time::Instant::now() + WAIT;
    for &pid in pids {
        while !testkit::not_running(pid) {
            if std::time::Instant::now() > give_up {
                for &p in pids {
                    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
                }
                panic!("pid {pid} ({what}) is still running");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
