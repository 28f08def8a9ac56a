//! Helpers shared by the integration tests: a server started and waited for, client runs,
//! direct access to the object in /dev/shm for tampering.
#![allow(dead_code)] // Each test file uses its own subset.

use std::path::PathBuf;
use std::process::{Command, Output};

use common::child::{Lines, Supervised};
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;

pub const BIN: &str = env!("CARGO_BIN_EXE_shm-demo");
/// How long a test waits for anything; only reached when it is failing already.
pub const WAIT: std::time::Duration = testkit::DEADLINE;

/// A test's database: a unique POSIX name, removed on drop if a test left it behind.
pub struct Name {
    pub name: String,
    pub sysv: bool,
}

impl Name {
    pub fn new(sysv: bool) -> Name {
        Name {
            name: common::names::posix_name(&common::names::unique("t")),
            sysv,
        }
    }

    /// `--name NAME [--sysv]`.
    pub fn args(&self) -> Vec<String> {
        let mut v = vec!["--name".to_owned(), self.name.clone()];
        if self.sysv {
            v.push("--sysv".to_owned());
        }
        v
    }

    /// The object's file in /dev/shm (POSIX only).
    pub fn shm_path(&self) -> PathBuf {
        PathBuf::from(format!("/dev/shm{}", self.name))
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        if !self.sysv {
            let _ = nix::sys::mman::shm_unlink(self.name.as_str());
        }
    }
}

/// `shm-demo ARGS... --name NAME [--sysv]` in the sandbox.
pub fn cmd(sb: &Sandbox, name: &Name, args: &[&str]) -> Command {
    let mut c = sb.command(BIN);
    c.args(args).args(name.args());
    c
}

/// Run a client to completion with `input` on stdin.
pub fn run(sb: &Sandbox, name: &Name, args: &[&str], input: &[u8]) -> Output {
    testkit::run(&mut cmd(sb, name, args), input)
}

/// Run a client that must succeed; its stdout.
pub fn ok(sb: &Sandbox, name: &Name, args: &[&str]) -> String {
    let out = run(sb, name, args, b"");
    assert!(
        out.status.success(),
        "shm-demo {args:?}: {:?}\n{}",
        out.status,
        testkit::stderr(&out)
    );
    testkit::stdout(&out)
}

/// Run a client that must fail with exit 1; its stderr.
pub fn fails(sb: &Sandbox, name: &Name, args: &[&str]) -> String {
    let out = run(sb, name, args, b"");
    assert_eq!(
        out.status.code(),
        Some(1),
        "shm-demo {args:?} should fail: {}{}",
        testkit::stdout(&out),
        testkit::stderr(&out)
    );
    testkit::stderr(&out)
}

/// A running server: common's test daemon, with the details line it writes on stderr.
pub struct Server {
    pub child: Supervised,
    pub stdout: Lines,
    pub stderr: Lines,
    /// Its readiness line on stdout: `ready: pid N shm /NAME` (`sysv-shm` with --sysv).
    pub ready: String,
    /// Its details on stderr, written just before the readiness line:
    /// `shm-demo server: pid N serves ... (created; ...)`.
    pub started: String,
}

impl Server {
    /// Start `shm-demo server` with `args` and wait for its readiness line, which must name
    /// the database.
    pub fn start(sb: &Sandbox, name: &Name, args: &[&str]) -> Server {
        let mut c = cmd(sb, name, &["server"]);
        c.args(args);
        let mut d = testkit::Daemon::start(&mut c);
        let kind = if name.sysv { "sysv-shm" } else { "shm" };
        assert_eq!(d.serves(kind), name.name);
        // Written before the readiness line, so already there.
        let started = d.wait_stderr(|l| l.starts_with("shm-demo server: pid "));
        let testkit::Daemon {
            child,
            stdout,
            stderr,
            ready,
        } = d;
        Server {
            child,
            stdout,
            stderr,
            ready,
            started,
        }
    }

    fn daemon(self) -> testkit::Daemon {
        let Server {
            child,
            stdout,
            stderr,
            ready,
            ..
        } = self;
        testkit::Daemon {
            child,
            stdout,
            stderr,
            ready,
        }
    }

    /// SIGTERM; check it exits 0 and return the rest of its stderr (its status lines).
    pub fn stop(self) -> Vec<String> {
        self.daemon().stop().stderr
    }

    /// Stop it with `sig`; check it exits 0, as a daemon asked to stop does, and return the
    /// rest of its stderr.
    pub fn stop_with(self, sig: Signal) -> Vec<String> {
        self.daemon().stop_with(sig).stderr
    }

    /// SIGKILL: leave the object behind, as a crash would.
    pub fn kill(self) {
        self.child.signal(Signal::SIGKILL).unwrap();
        self.child.wait_timeout(WAIT).unwrap();
    }
}

/// The database's object in /dev/shm (POSIX only), opened by hand to read or damage it as
/// another process of the user could.
pub struct Tamper {
    file: std::fs::File,
}

impl Tamper {
    pub fn open(name: &Name) -> Tamper {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.shm_path())
            .unwrap();
        Tamper { file }
    }

    pub fn u32_at(&self, off: u64) -> u32 {
        let mut b = [0; 4];
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut b, off).unwrap();
        u32::from_le_bytes(b)
    }

    pub fn write_at(&self, bytes: &[u8], off: u64) {
        std::os::unix::fs::FileExt::write_all_at(&self.file, bytes, off).unwrap();
    }

    /// The slot and the offset of the first live record. The layout of src/layout.rs: header
    /// size at 12, slots at 24, record size at 36; a record's state at 12 of it (1: live).
    pub fn live_record(&self) -> (u64, u64) {
        let (header, record) = (u64::from(self.u32_at(12)), u64::from(self.u32_at(36)));
        (0..u64::from(self.u32_at(24)))
            .map(|slot| (slot, header + slot * record))
            .find(|&(_, rec)| self.u32_at(rec + 12) == 1)
            .expect("a live record")
    }
}

/// Return once `pid` sleeps in the system call `call` (`libc::SYS_*`, as
/// `/proc/PID/syscall` shows it); panic after [`WAIT`] with `what` it should have done.
pub fn wait_until_in(pid: nix::unistd::Pid, call: i64, what: &str) {
    let give_up = std::time::Instant::now() + WAIT;
    while testkit::syscall(pid).map(|(n, _)| n) != Some(call) {
        assert!(
            std::time::Instant::now() < give_up,
            "pid {pid} never {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// True if the database's object still exists.
pub fn exists(sb: &Sandbox, name: &Name) -> bool {
    if name.sysv {
        let out = run(sb, name, &["stats"], b"");
        !testkit::stderr(&out).contains("no such database")
    } else {
        name.shm_path().exists()
    }
}

/// Start `put KEY VALUE` with the test hook set and return once it is stopped inside the
/// critical section (its line printed, then its stopped state seen), holding the mutex.
pub fn stop_a_writer_inside(
    sb: &Sandbox,
    name: &Name,
    key: &str,
    value: &str,
) -> common::child::Supervised {
    stop_inside(sb, name, &["put", key, value])
}

/// `shm-demo ARGS --name NAME [--sysv]` with the test hook set in its environment: a `put`
/// or `del` stops (SIGSTOP) inside its critical section, holding the mutex.
pub fn hooked(sb: &Sandbox, name: &Name, args: &[&str]) -> Command {
    let mut c = cmd(sb, name, args);
    c.env(shm_demo::db::STOP_HOOK, "1");
    c
}

/// Start a writer role (`put` or `del`) with the test hook set and return once it is
/// stopped there, holding the mutex.
pub fn stop_inside(sb: &Sandbox, name: &Name, args: &[&str]) -> common::child::Supervised {
    let child = testkit::spawn(&mut hooked(sb, name, args));
    let mut err = child.stderr_lines().unwrap();
    err.wait_for(|l| l.contains("stopping inside the critical section"), WAIT)
        .unwrap();
    // The line comes just before raise(SIGSTOP); freeze waits until it has really stopped.
    // Its guard would SIGCONT the pid on drop, after the test has killed and reaped it (and
    // the pid may belong to someone else by then): forgotten on purpose.
    std::mem::forget(testkit::freeze(child.pid()));
    child
}
