//! Support for integration tests that run the real binaries (feature `test-support`).
//!
//! Every test gets a [`Sandbox`]: a private temporary directory that is also the runtime
//! directory of the binaries it starts (through `XDG_RUNTIME_DIR`), so tests running in
//! parallel never share a FIFO or a socket, and nothing outlives the test. Every child is
//! started with a deadline and killed with its whole process group on drop (see
//! [`crate::child`]), so no test can hang or leave a process behind.
//!
//! Tests that need several machines get them from [`netns`]: hosts that are network
//! namespaces on a private switch, with faults (loss, a rate limit, a cut cable, a host that
//! vanishes) on their links.
//!
//! These helpers panic instead of returning errors: in a test, a failure to spawn or a missed
//! deadline *is* the test failing, and the panic message says why.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::child::{self, Options, Supervised};

pub mod netns;

/// The deadline every child gets unless the test says otherwise: generous, because CI machines
/// are small and busy, and a test only waits it out when it is already failing.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A private temporary directory for one test, removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// Create the sandbox (mode 0700, under the system temp dir).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ipc-demo-test-")
            .tempdir()
            .expect("create a temporary directory for the test");
        Sandbox { dir }
    }

    /// The sandbox directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the sandbox.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The runtime directory the binaries started by [`Sandbox::command`] will use.
    pub fn runtime_dir(&self) -> PathBuf {
        self.join(crate::names::PREFIX)
    }

    /// What is left in the runtime directory (after a run that should leave it empty).
    pub fn leftovers(&self) -> Vec<String> {
        files_in(&self.runtime_dir())
    }

    /// A command for `program`, running in the sandbox with the sandbox as its
    /// `XDG_RUNTIME_DIR`, with tracing off and no service manager's `NOTIFY_SOCKET`, whatever
    /// the test's own environment says (a test that plays the manager sets its own).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.confine(&mut cmd);
        cmd
    }

    /// A command for `program` on `host`, set up as [`Sandbox::command`] sets its commands up
    /// (the sandbox is a directory, which every host sees).
    pub fn command_on(&self, host: &netns::Host, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = host.command(program);
        self.confine(&mut cmd);
        cmd
    }

    fn confine(&self, cmd: &mut Command) {
        cmd.current_dir(self.path())
            .env("XDG_RUNTIME_DIR", self.path())
            .env_remove(crate::narrate::ENV)
            .env_remove(crate::lifecycle::NOTIFY_SOCKET);
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// The names of the files in `dir`, sorted; none if it does not exist.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Start `cmd` in its own process group with stdout and stderr piped, killed at `deadline`.
pub fn spawn_with_deadline(cmd: &mut Command, deadline: Duration) -> Supervised {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let label = format!("{:?}", cmd.get_program());
    Supervised::spawn(
        &label,
        cmd,
        Options {
            deadline: Some(deadline),
            own_group: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Start `cmd` with the default [`DEADLINE`].
pub fn spawn(cmd: &mut Command) -> Supervised {
    spawn_with_deadline(cmd, DEADLINE)
}

/// Run `cmd` to completion with `input` on stdin, within [`DEADLINE`].
pub fn run(cmd: &mut Command, input: &[u8]) -> Output {
    run_with_deadline(cmd, input, DEADLINE)
}

/// Run `cmd` to completion with `input` on stdin, within `deadline`.
pub fn run_with_deadline(cmd: &mut Command, input: &[u8], deadline: Duration) -> Output {
    let label = format!("{:?}", cmd.get_program());
    child::run(&label, cmd, input, deadline).unwrap_or_else(|e| panic!("{e}"))
}

/// The `main` of a test file without libtest's harness (`harness = false`), one that runs its
/// own binary again as a child process: run each test, catching its panic, print
/// `test NAME ... ok` or `... FAILED` and a count, and fail if any failed.
pub fn run_tests(tests: &[(&str, fn())]) -> std::process::ExitCode {
    let mut failed = 0;
    for &(name, test) in tests {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    println!("{} passed, {failed} failed", tests.len() - failed);
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// Stdout of a finished command as text (lossy).
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a finished command as text (lossy).
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A process stopped with SIGSTOP, so a test can make an unlucky instant certain (a worker
/// frozen while it holds a task, a reader that never reads, a daemon that receives a burst of
/// signals while it cannot run). It is continued with SIGCONT when dropped.
pub struct Frozen {
    pid: Pid,
}

impl Frozen {
    /// The frozen process.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}

/// Stop `pid` and return once it *is* stopped, not merely signalled.
///
/// `kill(SIGSTOP)` returns before the target stops. For our own child,
/// `waitid(WSTOPPED | WNOWAIT)` blocks until it has, without consuming the status that its
/// supervisor will reap later (`WEXITED` too, so a child that dies instead ends the wait). For
/// any other process (a daemon's worker), its state in `/proc/PID/stat` is read until it shows
/// `T`.
pub fn freeze(pid: Pid) -> Frozen {
    kill(pid, Signal::SIGSTOP).unwrap_or_else(|e| panic!("kill({pid}, SIGSTOP): {e}"));
    stopped(pid)
}

/// [`freeze`], for a process that may end on its own at any moment (a role of a short run,
/// not our child): `None` if it is gone (or a zombie) before it stops, and then nothing more
/// is sent to its pid, which may be anyone's by now. A test that needs the unlucky instant
/// runs its scenario again when it gets `None` (the run was quicker than the test).
pub fn try_freeze(pid: Pid) -> Option<Frozen> {
    match kill(pid, Signal::SIGSTOP) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return None,
        Err(e) => panic!("kill({pid}, SIGSTOP): {e}"),
    }
    let give_up = Instant::now() + DEADLINE;
    loop {
        match proc_state(pid) {
            Some('T') => return Some(Frozen { pid }),
            None | Some('Z' | 'X') => return None,
            state => assert!(
                Instant::now() < give_up,
                "pid {pid} did not stop: state {state:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Return once `pid` is stopped, without stopping it: for a child that stops itself
/// (`raise(SIGSTOP)`) at the very instant a test wants it frozen, which a SIGSTOP from outside
/// could only hit by luck. Continued with SIGCONT when dropped, like [`freeze`]'s.
pub fn stopped(pid: Pid) -> Frozen {
    let frozen = Frozen { pid };
    let flags = WaitPidFlag::WSTOPPED | WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(pid), flags) {
        Ok(WaitStatus::Stopped(..)) => return frozen,
        Ok(other) => panic!("pid {pid} did not stop: {other:?}"),
        Err(Errno::ECHILD) => {}
        Err(e) => panic!("waitid({pid}, WSTOPPED): {e}"),
    }
    let give_up = Instant::now() + DEADLINE;
    loop {
        let state = proc_state(pid);
        if state == Some('T') {
            return frozen;
        }
        assert!(
            Instant::now() < give_up,
            "pid {pid} did not stop: state {state:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// True once `pid` no longer runs: gone, or a zombie nobody has reaped yet. For processes
/// that are not our children (a demo's daemon, once the demo has died), which `waitpid` cannot
/// wait for.
pub fn not_running(pid: Pid) -> bool {
    matches!(proc_state(pid), None | Some('Z' | 'X'))
}

/// A pipe of one page, the smallest the kernel gives, so that [`fill_pipe`] takes no time:
/// (read end, write end), both close-on-exec. The write end is for a child's stdout, to test
/// what the child does when nobody reads it.
pub fn small_pipe() -> (OwnedFd, OwnedFd) {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe2");
    fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(4096)).expect("fcntl(F_SETPIPE_SZ)");
    (read_end, write_end)
}

/// Fill the pipe whose write end is `fd` with `byte`s until not one more fits: a reader that
/// reads nothing, made certain. It writes through a second open of the pipe
/// (`/proc/self/fd/N` with O_NONBLOCK), a new open file description, so that `fd` itself, and
/// the child that shares it, keeps blocking writes.
pub fn fill_pipe(fd: &impl AsRawFd, byte: u8) {
    let mut filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .expect("open the pipe's write end again");
    // Byte by byte: a pipe takes a write of at most PIPE_BUF bytes whole or not at all, so
    // larger writes would stop short of full.
    loop {
        match std::io::Write::write(&mut filler, &[byte]) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return,
            Err(e) => panic!("fill the pipe: {e}"),
        }
    }
}

/// The system call `pid` sleeps in, with its arguments, from `/proc/PID/syscall` (`None`
/// while it runs in user space, or if it is gone).
pub fn syscall(pid: Pid) -> Option<(i64, Vec<u64>)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut words = text.split_whitespace();
    let number = words.next()?.parse().ok()?;
    let args = words
        .take(6)
        .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap_or(0))
        .collect();
    Some((number, args))
}

/// The system calls a process sleeps in while it waits in `poll(2)`.
#[cfg(target_arch = "x86_64")]
pub const POLL_CALLS: [i64; 2] = [libc::SYS_poll, libc::SYS_ppoll];
/// The system calls a process sleeps in while it waits in `poll(2)`.
#[cfg(not(target_arch = "x86_64"))]
pub const POLL_CALLS: [i64; 1] = [libc::SYS_ppoll];

/// `Some(with_timeout)` if `pid` sleeps in `poll(2)` now, `None` if not: for a test that must
/// act exactly while a process waits (a daemon in its main loop, a write waiting for room).
/// For `poll` the timeout is the third argument (an int, -1 for none); for `ppoll` a pointer
/// (NULL for none).
pub fn in_poll(pid: Pid) -> Option<bool> {
    let (number, args) = syscall(pid)?;
    if !POLL_CALLS.contains(&number) {
        return None;
    }
    let timeout = args.get(2).copied().unwrap_or(0);
    #[cfg(target_arch = "x86_64")]
    if number == libc::SYS_poll {
        return Some(timeout as u32 != u32::MAX);
    }
    Some(timeout != 0)
}

/// The state letter of `pid` in `/proc/PID/stat` (`R`, `S`, `T`, `Z`...), or None if it is gone.
fn proc_state(pid: Pid) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may contain any
    // character, so it is found after the *last* ')'.
    text.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGCONT);
    }
}

/// The service manager's side of `NOTIFY_SOCKET` (systemd `Type=notify`, see
/// [`crate::lifecycle`]), for tests of a daemon's lifecycle: a datagram socket in the sandbox
/// whose path the test hands to the daemon, and what the daemon sends to it.
pub struct ServiceManager {
    socket: std::os::unix::net::UnixDatagram,
    path: PathBuf,
}

impl ServiceManager {
    /// Bind `notify.sock` in the sandbox. Pass [`ServiceManager::path`] to the daemon as
    /// `NOTIFY_SOCKET`.
    pub fn bind(sb: &Sandbox) -> Self {
        let path = sb.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path)
            .unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        socket
            .set_read_timeout(Some(DEADLINE))
            .expect("a read timeout");
        ServiceManager { socket, path }
    }

    /// The socket's path, for the daemon's `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next notification (`READY=1\nMAINPID=…`), as text, within [`DEADLINE`].
    pub fn receive(&self) -> String {
        let mut buf = [0; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification before the deadline");
        String::from_utf8(buf[..n].to_vec()).expect("notifications are text")
    }

    /// The next notification, checked to be the readiness every daemon sends
    /// ([`crate::lifecycle::ready`]): `READY=1`, `MAINPID=pid` and `STATUS=what`, where
    /// `what` is also what its `ready:` line names ([`expect_ready_line`]).
    pub fn expect_ready(&self, pid: Pid, what: &str) {
        let ready = self.receive();
        assert_eq!(
            ready.lines().collect::<Vec<_>>(),
            [
                "READY=1".to_owned(),
                format!("MAINPID={pid}"),
                format!("STATUS={what}")
            ],
            "the READY notification"
        );
    }

    /// The next notification, checked to be the one a daemon sends when a stop begins.
    pub fn expect_stopping(&self) {
        assert_eq!(self.receive(), "STOPPING=1\n");
    }

    /// Check that no notification is waiting. Call it once the daemon has exited: every
    /// datagram it sent is queued on our socket by then (a send on a Unix datagram socket
    /// returns only once the datagram is in the receiver's queue), so an empty queue now
    /// means it sent nothing more, not that something is late.
    pub fn expect_no_more(&self) {
        let mut buf = [0; 4096];
        match nix::sys::socket::recv(
            std::os::fd::AsRawFd::as_raw_fd(&self.socket),
            &mut buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Err(Errno::EAGAIN) => {}
            Ok(n) => panic!(
                "one notification too many: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) => panic!("recv {}: {e}", self.path.display()),
        }
    }
}

/// Check how a daemon failed to start when `NOTIFY_SOCKET` names a socket nobody listens on
/// (a service manager would wait for a READY=1 that never comes): exit 1, and
/// `PROGRAM: NOTIFY_SOCKET=PATH: sd_notify: No such file or directory` on stderr.
pub fn expect_unreachable_notify_socket(out: &Output, program: &str, socket: &Path) {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(out);
    let want = format!(
        "{program}: NOTIFY_SOCKET={}: sd_notify: No such file or directory",
        socket.display()
    );
    assert!(err.contains(&want), "no {want:?} in:\n{err}");
}

/// Wait on a daemon's stdout for its readiness line and check it: `ready: pid N what`
/// ([`crate::lifecycle::ready_line`]), the same `what` as its `STATUS=`.
pub fn expect_ready_line(stdout: &mut child::Lines, pid: Pid, what: &str) {
    let line = stdout
        .wait_for(|l| l.starts_with("ready: "), DEADLINE)
        .expect("a ready: line before the deadline");
    assert_eq!(line, format!("ready: pid {pid} {what}"));
}

/// A daemon a test has started and seen ready: the one way every crate's tests start theirs
/// (each crate's `tests/support` wraps it with what its own daemon needs: paths, a config).
///
/// ```no_run
/// use common::testkit::{Daemon, Sandbox};
///
/// let sb = Sandbox::new();
/// let mut cmd = sb.command("fifo-demo"); // env!("CARGO_BIN_EXE_fifo-demo") in its tests
/// cmd.args(["daemon", "--log", "app.log"]);
/// let daemon = Daemon::start(&mut cmd);
/// let fifo = std::path::PathBuf::from(daemon.serves("fifo")); // `ready: pid N fifo PATH`
/// // ... the test ...
/// let stopped = daemon.stop(); // SIGTERM; asserts exit 0, as a daemon asked to stop exits
/// assert!(stopped.stderr.iter().any(|l| l.contains("removed")) && !fifo.exists());
/// ```
pub struct Daemon {
    /// The daemon process, in a process group of its own, killed at [`DEADLINE`] or on drop.
    pub child: Supervised,
    /// Its stdout from the line after `ready:`.
    pub stdout: child::Lines,
    /// Its stderr, from the start.
    pub stderr: child::Lines,
    /// Its readiness line, `ready: pid N KIND WHAT` ([`crate::lifecycle`]).
    pub ready: String,
}

/// What a stopped [`Daemon`] left: its status and the rest of its output.
pub struct Stopped {
    /// How it exited.
    pub status: std::process::ExitStatus,
    /// Its stdout lines after those the test had read.
    pub stdout: Vec<String>,
    /// Its stderr lines after those the test had read.
    pub stderr: Vec<String>,
}

impl Daemon {
    /// Start `cmd` as [`spawn`] does (stdout and stderr piped, killed at [`DEADLINE`]) and wait
    /// up to [`DEADLINE`] for its `ready:` line, which must name its pid. Panics, with what the
    /// daemon said on stderr, if the line does not come.
    pub fn start(cmd: &mut Command) -> Daemon {
        let child = spawn(cmd);
        let mut stdout = child.stdout_lines().expect("stdout is piped");
        let mut stderr = child.stderr_lines().expect("stderr is piped");
        let ready = match stdout.wait_for(|l| l.starts_with("ready: "), DEADLINE) {
            Ok(line) => line,
            Err(e) => {
                let status = child.wait_timeout(Duration::from_secs(5));
                let said = stderr.rest(Duration::from_secs(5)).unwrap_or_default();
                panic!("the daemon did not start ({status:?}): {e}\nits stderr: {said:#?}")
            }
        };
        let pid = format!("ready: pid {} ", child.pid());
        assert!(ready.starts_with(&pid), "not `{pid}…`: {ready:?}");
        Daemon {
            child,
            stdout,
            stderr,
            ready,
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Pid {
        self.child.pid()
    }

    /// What its ready line names after `ready: pid N KIND `, checked to be of `kind`: the
    /// FIFO's path of `ready: pid N fifo PATH` for `serves("fifo")`.
    pub fn serves(&self, kind: &str) -> &str {
        let prefix = format!("ready: pid {} {kind} ", self.pid());
        self.ready
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("not `{prefix}…`: {:?}", self.ready))
    }

    /// Wait up to [`DEADLINE`] for a line on its stdout that satisfies `want`; panics with
    /// what it saw and with its stderr if none comes.
    pub fn wait_stdout(&mut self, want: impl Fn(&str) -> bool) -> String {
        match self.stdout.wait_for(want, DEADLINE) {
            Ok(line) => line,
            Err(e) => {
                let said = self.stderr.rest(Duration::from_secs(1)).unwrap_or_default();
                panic!("daemon stdout: {e}\nits stderr: {said:#?}")
            }
        }
    }

    /// Wait up to [`DEADLINE`] for a line on its stderr that satisfies `want`; panics with what
    /// it saw if none comes.
    pub fn wait_stderr(&mut self, want: impl Fn(&str) -> bool) -> String {
        self.stderr
            .wait_for(want, DEADLINE)
            .unwrap_or_else(|e| panic!("daemon stderr: {e}"))
    }

    /// Send it `sig` (to its process group).
    pub fn signal(&self, sig: Signal) {
        self.child
            .signal(sig)
            .unwrap_or_else(|e| panic!("{sig} to the daemon: {e}"));
    }

    /// Wait up to [`DEADLINE`] for it to exit, and collect the rest of its output.
    pub fn wait(mut self) -> Stopped {
        let status = self
            .child
            .wait_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("the daemon did not exit: {e}"));
        Stopped {
            status,
            stdout: self.stdout.rest(DEADLINE).unwrap_or_default(),
            stderr: self.stderr.rest(DEADLINE).unwrap_or_default(),
        }
    }

    /// Ask it to stop with SIGTERM, and check that it exits 0, as every daemon asked to stop
    /// does (see [`crate::error`], "Exit status").
    pub fn stop(self) -> Stopped {
        self.stop_with(Signal::SIGTERM)
    }

    /// Ask it to stop with `sig` (SIGTERM, SIGINT, or SIGHUP for a daemon it stops), and check
    /// that it exits 0.
    pub fn stop_with(self, sig: Signal) -> Stopped {
        self.signal(sig);
        let stopped = self.wait();
        assert_eq!(
            stopped.status.code(),
            Some(0),
            "a daemon asked to stop with {sig} exits 0: {:?}; its stderr: {:#?}",
            stopped.status,
            stopped.stderr
        );
        stopped
    }
}
