//! Child processes that cannot outlive their supervisor or hang it.
//!
//! Every demo plays its scenario with real processes (a daemon, writers, clients), and every
//! integration test runs the real binaries. Both need the same guarantees, which
//! [`Supervised`] gives:
//!
//! - **a deadline**: a watchdog thread kills the child (and, with
//!   [`Options::own_group`], everything it started) when its time is up, even if the
//!   supervisor is blocked reading the child's output;
//! - **killed on drop**: a child still running when its handle is dropped gets SIGTERM, a
//!   moment to remove its named objects, then SIGKILL, and is reaped, so no zombie and no
//!   orphan is left behind by an early return or a failed assertion;
//! - **no sleeps as synchronisation**: [`Lines::wait_for`] waits for a line of output, with a
//!   timeout, and reports what it saw instead if it does not come;
//! - **no pipe that nobody drains**: a stream the caller piped is read from the moment the
//!   child starts, by a thread of its own, whether or not anyone ever asks for it. A child
//!   that writes more than a pipe holds (64 KiB) to a stream its supervisor never looks at
//!   would otherwise block in `write`, deaf to the SIGTERM its handle sends on drop.
//!
//! When tracing is on, children inherit it (see [`crate::narrate`]). They do not inherit a
//! service manager's `NOTIFY_SOCKET` (see [`crate::lifecycle`]).
//!
//! A demo starts its roles with [`RoleCommand`] (this binary, a role, the right defaults),
//! waits for them with [`Supervised::wait_or_stop`] and [`Lines::wait_for_or_stop`] (which
//! end at once on Ctrl-C with [`crate::Error::Interrupted`]), and says how one ended with
//! [`Ended`]. The threads that read a child's output never take the process's signals
//! ([`crate::cleanup::spawn_helper`]).
//!
//! # Why a mutex around the child
//!
//! Killing by pid is only safe while the child is unreaped: once reaped, its pid may belong to
//! another process. Reaping (`try_wait`) and the watchdog's kill both happen under one lock, so
//! the watchdog never signals a pid that has been recycled.
//!
//! # Waiting with a timeout
//!
//! `waitpid` has no timeout. [`Supervised::wait_timeout`] instead `poll`s a pidfd
//! (`pidfd_open(2)`, Linux 5.3), which becomes readable when the child exits, then reaps it.
//! Where the kernel refuses pidfds (too old, or a seccomp filter), it checks every 2 ms.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::cleanup::Shutdown;
use crate::error::{Context, Error, Result};

/// How long a child gets between SIGTERM and SIGKILL when its handle is dropped.
const GRACE: Duration = Duration::from_secs(2);
/// How often `wait_timeout` checks whether the child has exited when there is no pidfd.
const POLL: Duration = Duration::from_millis(2);
/// How often [`Lines::wait_for_or_stop`] looks at the shutdown while no line comes.
pub const STOP_CHECK: Duration = Duration::from_millis(100);

/// How to start a [`Supervised`] child.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Kill the child if it is still running this long after it started.
    pub deadline: Option<Duration>,
    /// Start the child in a process group of its own and signal the whole group, so that
    /// grandchildren die with it.
    ///
    /// Use it for every child that handles SIGINT/SIGTERM itself. A child left in the
    /// supervisor's group also receives the terminal's Ctrl-C, and the SIGTERM its handle
    /// sends on drop then arrives as a *second* signal, which means "exit now, skip cleanup"
    /// (see [`crate::cleanup::Shutdown`]). In a group of its own the child hears only its
    /// supervisor: Ctrl-C stops the supervisor, which unwinds and stops its children in order.
    pub own_group: bool,
}

struct Inner {
    child: Child,
    status: Option<ExitStatus>,
    killed_at_deadline: bool,
    /// The child's stdout and stderr if piped, drained since the spawn.
    stdout: Option<Drained>,
    stderr: Option<Drained>,
}

impl Inner {
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }
}

/// A running child process with a deadline, killed and reaped on drop.
pub struct Supervised {
    label: String,
    pid: Pid,
    own_group: bool,
    /// Readable once the child has exited (None where the kernel gives no pidfds).
    pidfd: Option<OwnedFd>,
    inner: Arc<Mutex<Inner>>,
    /// Dropping this sender stops the watchdog.
    _watchdog: Option<Sender<()>>,
}

impl Supervised {
    /// Start `cmd` as a child named `label` (used in messages and in the trace).
    pub fn spawn(label: &str, cmd: &mut Command, opts: Options) -> Result<Self> {
        if crate::narrate::enabled() {
            cmd.env(crate::narrate::ENV, "1");
        }
        // A role is not the service: its READY=1 would speak for the wrong process. A command
        // that sets NOTIFY_SOCKET itself (a test playing the manager) keeps it.
        let notify = std::ffi::OsStr::new(crate::lifecycle::NOTIFY_SOCKET);
        if !cmd.get_envs().any(|(k, v)| k == notify && v.is_some()) {
            cmd.env_remove(notify);
        }
        if opts.own_group {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().ctx("spawn", label)?;
        let stdout = child.stdout.take().map(Drained::start);
        let stderr = child.stderr.take().map(Drained::start);
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in pid_t"));
        crate::trace!("fork() + execve({label}) -> pid {pid}");
        // Opened before anything can reap the child, so it cannot name a recycled pid. None
        // where the kernel gives no pidfds (too old, or a seccomp filter): see `wait_inner`.
        let pidfd = crate::pidfd::open(pid).ok();
        let inner = Arc::new(Mutex::new(Inner {
            child,
            status: None,
            killed_at_deadline: false,
            stdout,
            stderr,
        }));
        let watchdog = opts.deadline.map(|limit| {
            let (stop, stopped) = mpsc::channel::<()>();
            let inner = Arc::clone(&inner);
            let own_group = opts.own_group;
            crate::cleanup::spawn_helper(move || {
                if stopped.recv_timeout(limit) == Err(RecvTimeoutError::Timeout) {
                    let mut inner = lock(&inner);
                    if matches!(inner.try_wait(), Ok(None)) {
                        inner.killed_at_deadline = true;
                        let _ = signal(pid, own_group, Signal::SIGKILL);
                    }
                }
            });
            stop
        });
        Ok(Supervised {
            label: label.to_owned(),
            pid,
            own_group: opts.own_group,
            pidfd,
            inner,
            _watchdog: watchdog,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The label given at spawn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Send `sig` to the child (to its group, if it has its own). Fails with ESRCH once the
    /// child has been reaped.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let mut inner = lock(&self.inner);
        if inner.try_wait().ctx("waitpid", &self.label)?.is_some() {
            return Err(Error::sys(
                "kill",
                format!("{} (pid {})", self.label, self.pid),
                nix::errno::Errno::ESRCH,
            ));
        }
        crate::trace!("kill({}, {sig})", self.pid);
        signal(self.pid, self.own_group, sig)
            .ctx("kill", format!("{} (pid {})", self.label, self.pid))
    }

    /// Take the child's stdout (if it was piped) as a stream of lines, from its first line:
    /// the stream has been drained since the spawn.
    pub fn stdout_lines(&self) -> Option<Lines> {
        lock(&self.inner).stdout.take().map(Lines::new)
    }

    /// Take the child's stderr (if it was piped) as a stream of lines, from its first line.
    pub fn stderr_lines(&self) -> Option<Lines> {
        lock(&self.inner).stderr.take().map(Lines::new)
    }

    /// Take the child's stdin (if it was piped).
    pub fn take_stdin(&self) -> Option<std::process::ChildStdin> {
        lock(&self.inner).child.stdin.take()
    }

    /// The exit status, if the child has exited (reaping it).
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        lock(&self.inner).try_wait().ctx("waitpid", &self.label)
    }

    /// Wait up to `timeout` for the child to exit. On timeout the child keeps running (drop
    /// the handle to kill it).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<ExitStatus> {
        self.wait_inner(timeout, None)
            .map(|status| status.expect("only a wake descriptor ends the wait early"))
    }

    /// [`Supervised::wait_timeout`], but stop waiting as soon as `wake` becomes readable: a
    /// supervisor passes its [`crate::cleanup::Shutdown::wake_fd`], so that Ctrl-C is acted on
    /// at once, not when a slow (or stopped) child happens to exit. `Ok(None)` then; the child
    /// keeps running (drop the handle to stop it).
    pub fn wait_unless(
        &self,
        timeout: Duration,
        wake: std::os::fd::BorrowedFd<'_>,
    ) -> Result<Option<ExitStatus>> {
        self.wait_inner(timeout, Some(wake))
    }

    /// [`Supervised::wait_unless`] on `shutdown`'s self-pipe, as a role's wait usually is: the
    /// child's status, or [`Error::Interrupted`] as soon as a stop signal comes (the child
    /// keeps running; drop the handle to stop it). `child.wait_or_stop(DEADLINE, &shutdown)?`
    pub fn wait_or_stop(&self, timeout: Duration, shutdown: &Shutdown) -> Result<ExitStatus> {
        loop {
            if let Some(status) = self.wait_unless(timeout, shutdown.wake_fd())? {
                return Ok(status);
            }
            // The self-pipe is written after the signal is recorded, so this returns.
            shutdown.err_if_requested()?;
        }
    }

    fn wait_inner(
        &self,
        timeout: Duration,
        wake: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<Option<ExitStatus>> {
        // Before a wait that may block: a pending count of repeated trace lines goes out now.
        crate::narrate::flush();
        let end = Instant::now() + timeout;
        loop {
            {
                let mut inner = lock(&self.inner);
                if let Some(status) = inner.try_wait().ctx("waitpid", &self.label)? {
                    if inner.killed_at_deadline {
                        return Err(Error::msg(format!(
                            "{} (pid {}) was killed at its deadline",
                            self.label, self.pid
                        )));
                    }
                    return Ok(Some(status));
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::msg(format!(
                    "{} (pid {}) did not exit within {timeout:?}",
                    self.label, self.pid
                )));
            }
            // The pidfd (readable once the child has exited) and the wake descriptor, in one
            // poll; without a pidfd, look again every POLL.
            let mut fds: Vec<PollFd<'_>> = wake
                .iter()
                .map(|w| PollFd::new(*w, PollFlags::POLLIN))
                .collect();
            let limit = match &self.pidfd {
                Some(fd) => {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    left
                }
                None => POLL.min(left),
            };
            if fds.is_empty() {
                thread::sleep(limit);
                continue;
            }
            // POLLIN or EINTR: look again either way, the wake descriptor first.
            let _ = poll(&mut fds, crate::deadline::poll_timeout(limit));
            if wake.is_some() && fds[0].revents().is_some_and(|r| !r.is_empty()) {
                return Ok(None);
            }
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if matches!(self.try_wait(), Ok(None)) {
            // SIGTERM first, so a daemon gets to remove its named objects; then SIGKILL.
            let _ = self.signal(Signal::SIGTERM);
            if self.wait_timeout(GRACE).is_err() {
                let mut inner = lock(&self.inner);
                if matches!(inner.try_wait(), Ok(None)) {
                    let _ = signal(self.pid, self.own_group, Signal::SIGKILL);
                    let _ = inner.child.wait();
                }
            }
        }
        // With a group of its own, whatever the child started dies with the group even if the
        // child itself has exited. The group id outlives the leader's pid while any member is
        // alive, so this reaches only our own descendants (or nobody: ESRCH).
        if self.own_group {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
    }
}

/// Make the child that `cmd` starts receive `sig` when its supervisor dies, however it dies:
/// a second Ctrl-C that exits at once, SIGKILL, a panic that aborts. Without it the children of
/// a supervisor that could not unwind live on, holding their named objects (a daemon in a
/// process group of its own does not even hear the terminal's Ctrl-C).
///
/// Linux's `PR_SET_PDEATHSIG`, set in the child between `fork` and `execve`. Two cautions:
///
/// - The signal comes when the **thread** that forked the child ends, not the process. Spawn
///   from a thread that lives as long as the supervisor (the main thread), never from a
///   short-lived helper thread, or the child is killed when that thread finishes.
/// - The supervisor may die before the child has set it: the child then checks that its
///   parent is still the process that spawned it, and fails instead of running on orphaned.
///
/// Choose SIGTERM for a child that cleans up on it (a daemon removes its FIFO), SIGKILL for
/// one that must simply stop.
///
/// The kernel sends the signal each time the child passes to a new parent, and a dying
/// supervisor with several threads passes it from thread to thread before init takes it, so
/// the child may get it several times from one death. The child is told its supervisor's pid
/// ([`crate::cleanup::SUPERVISOR_ENV`]), and its [`crate::cleanup::Shutdown`] counts stop
/// signals from that pid as one request, never as the second signal that means "exit now".
pub fn die_with_supervisor(cmd: &mut Command, sig: Signal) {
    let supervisor = nix::unistd::getpid();
    // The child's Shutdown learns from this that it is tied, so that the signal, which a dying
    // supervisor with several threads sends more than once, counts as one request.
    cmd.env(crate::cleanup::SUPERVISOR_ENV, supervisor.to_string());
    // SAFETY: the closure runs in the forked child before execve and only makes two system
    // calls (prctl, getppid), both async-signal-safe; it allocates nothing and touches no
    // lock that another thread of the parent might have held at the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(sig)?;
            if nix::unistd::getppid() != supervisor {
                // Already orphaned: the signal would never come. Fail the exec instead.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// This very binary, started again as one of its roles: how every demo starts the processes
/// it plays its scenario with (`fifo-demo demo` starts `fifo-demo daemon` and N `fifo-demo
/// log`), in the one way that leaves nothing running and nothing hanging.
///
/// [`RoleCommand::new`] makes the command with the defaults a demo's role needs, each of
/// which a method changes:
///
/// | what | default | why | change with |
/// |------|---------|-----|-------------|
/// | program | `/proc/self/exe` | the same build as the demo, whatever `$PATH` holds | (none) |
/// | stdin | `/dev/null` | a role never reads the user's terminal | [`stdin`](RoleCommand::stdin) |
/// | stdout | piped | the demo waits for the role's lines (`ready:`) | [`stdout`](RoleCommand::stdout) |
/// | stderr | inherited | its errors and its `-v` trace reach the user | [`stderr`](RoleCommand::stderr) |
/// | process group | its own | Ctrl-C reaches only the demo, which stops its roles in order | [`same_group`](RoleCommand::same_group) |
/// | supervisor's death | SIGTERM | a demo killed without unwinding still stops its roles | [`on_supervisor_death`](RoleCommand::on_supervisor_death) |
/// | deadline | the one given | a role that hangs is killed | [`without_deadline`](RoleCommand::without_deadline) |
///
/// ```no_run
/// use std::process::Stdio;
/// use std::time::Duration;
/// use common::child::RoleCommand;
///
/// let daemon = RoleCommand::new("daemon", Duration::from_secs(300))?
///     .args(["daemon", "--fifo", "/run/user/1000/ipc-demo/x.fifo"])
///     .stderr(Stdio::piped())
///     .spawn()?;
/// let mut stdout = daemon.stdout_lines().expect("piped by default");
/// stdout.wait_for(|l| l.starts_with("ready: "), Duration::from_secs(300))?;
/// # Ok::<(), common::Error>(())
/// ```
///
/// # Pitfalls
///
/// - **Spawn from the main thread.** The tie to the supervisor (`PR_SET_PDEATHSIG`, see
///   [`die_with_supervisor`]) fires when the *thread* that forked the child ends: a role
///   spawned from a short-lived helper thread would be killed when that thread finishes.
/// - **A role that shares the demo's group** gets the terminal's Ctrl-C too, and then the
///   SIGTERM its handle sends on drop is its *second* stop signal, which exits at once,
///   skipping its cleanup. Keep the default unless the role is meant to hear Ctrl-C itself.
/// - **SIGTERM on the supervisor's death suits a role that cleans up on it**; a role that must
///   simply stop (a writer frozen inside a critical section, which SIGTERM would leave
///   frozen) gets SIGKILL; a role that watches its parent's pidfd itself gets `None`.
pub struct RoleCommand {
    label: String,
    cmd: Command,
    opts: Options,
    on_death: Option<Signal>,
}

impl RoleCommand {
    /// `<this binary>` as the role child `label` (its name in messages and in the trace),
    /// killed if it still runs `deadline` after it started; arguments follow with
    /// [`arg`](RoleCommand::arg) and [`args`](RoleCommand::args).
    pub fn new(label: &str, deadline: Duration) -> Result<Self> {
        let exe = std::env::current_exe().ctx("readlink", "/proc/self/exe")?;
        let mut cmd = Command::new(exe);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Ok(RoleCommand {
            label: label.to_owned(),
            cmd,
            opts: Options {
                deadline: Some(deadline),
                own_group: true,
            },
            on_death: Some(Signal::SIGTERM),
        })
    }

    /// Add an argument.
    pub fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Add arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// The role's stdin ([`Stdio::null`] by default).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.cmd.stdin(cfg);
        self
    }

    /// The role's stdout ([`Stdio::piped`] by default: read it with
    /// [`Supervised::stdout_lines`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.cmd.stdout(cfg);
        self
    }

    /// The role's stderr ([`Stdio::inherit`] by default).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.cmd.stderr(cfg);
        self
    }

    /// Set an environment variable for the role.
    pub fn env(
        &mut self,
        key: impl AsRef<std::ffi::OsStr>,
        value: impl AsRef<std::ffi::OsStr>,
    ) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// Leave the role in the demo's process group (see the pitfalls).
    pub fn same_group(&mut self) -> &mut Self {
        self.opts.own_group = false;
        self
    }

    /// The signal the role gets if the demo dies without unwinding (SIGTERM by default);
    /// `None` for a role that is not tied that way (see the pitfalls).
    pub fn on_supervisor_death(&mut self, sig: Option<Signal>) -> &mut Self {
        self.on_death = sig;
        self
    }

    /// No deadline: for a role meant to run as long as its supervisor (a supervisor's
    /// workers), which stops it itself.
    pub fn without_deadline(&mut self) -> &mut Self {
        self.opts.deadline = None;
        self
    }

    /// Start it. Call from the main thread (see the pitfalls).
    pub fn spawn(&mut self) -> Result<Supervised> {
        if let Some(sig) = self.on_death {
            die_with_supervisor(&mut self.cmd, sig);
        }
        Supervised::spawn(&self.label, &mut self.cmd, self.opts)
    }
}

fn signal(pid: Pid, group: bool, sig: Signal) -> nix::Result<()> {
    if group {
        killpg(pid, sig)
    } else {
        kill(pid, sig)
    }
}

/// A poisoned lock only means another thread panicked mid-`try_wait`; the child handle itself
/// is still sound, so carry on with it.
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Lines read from a child's output by a background thread.
///
/// Invalid UTF-8 is replaced rather than refused: a test may well feed a program garbage.
pub struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Read lines from `source` on a thread of their own.
    pub fn new(source: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        crate::cleanup::spawn_helper(move || {
            let mut reader = BufReader::new(source);
            let mut buf = Vec::new();
            while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                    break;
                }
                buf.clear();
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line, `None` at end of output, or an error after `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        crate::narrate::flush();
        match self.rx.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Ok(Some(line))
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(self.no_line_within(timeout)),
        }
    }

    /// Wait up to `timeout` for a line that satisfies `want`, and return it. Lines before it
    /// are kept in [`Lines::seen`].
    pub fn wait_for(&mut self, want: impl Fn(&str) -> bool, timeout: Duration) -> Result<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(Some(line)) if want(&line) => return Ok(line),
                Ok(Some(_)) => {}
                Ok(None) => return Err(self.ended_without()),
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Lines::wait_for`], but [`Error::Interrupted`] as soon as `shutdown` has seen a stop
    /// signal: a demo waiting for its daemon's next line acts on Ctrl-C at once. (The lines
    /// come through a channel, not a descriptor `poll` could watch beside the self-pipe, so
    /// the wait looks at the shutdown every [`STOP_CHECK`]; a timeout, never a sleep.)
    pub fn wait_for_or_stop(
        &mut self,
        want: impl Fn(&str) -> bool,
        timeout: Duration,
        shutdown: &Shutdown,
    ) -> Result<String> {
        crate::narrate::flush();
        let end = Instant::now() + timeout;
        loop {
            shutdown.err_if_requested()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.no_line_within(timeout));
            }
            match self.rx.recv_timeout(left.min(STOP_CHECK)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended_without()),
            }
        }
    }

    fn no_line_within(&self, timeout: Duration) -> Error {
        Error::msg(format!(
            "no output line within {timeout:?}; saw so far:\n{}",
            self.seen.join("\n")
        ))
    }

    fn ended_without(&self) -> Error {
        Error::msg(format!(
            "output ended without the expected line; saw:\n{}",
            self.seen.join("\n")
        ))
    }

    /// Every remaining line, up to end of output; an error if it does not end within `timeout`.
    pub fn rest(&mut self, timeout: Duration) -> Result<Vec<String>> {
        let end = Instant::now() + timeout;
        let mut out = Vec::new();
        while let Some(line) = self.next_line(end.saturating_duration_since(Instant::now()))? {
            out.push(line);
        }
        Ok(out)
    }

    /// Every line received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

/// Run `cmd` to completion with `input` on its stdin, collecting stdout and stderr, all within
/// `deadline`. The child is killed (with its process group) if it takes longer.
///
/// Input is written from a thread of its own: a child that fills its stdout pipe before it has
/// read all of its input would otherwise deadlock against us.
pub fn run(label: &str, cmd: &mut Command, input: &[u8], deadline: Duration) -> Result<Output> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = Supervised::spawn(
        label,
        cmd,
        Options {
            deadline: Some(deadline),
            own_group: true,
        },
    )?;
    let stdin = child.take_stdin();
    let input = input.to_vec();
    let feeder = crate::cleanup::spawn_helper(move || {
        if let Some(mut stdin) = stdin {
            // EPIPE just means the child stopped reading (`head -1`); that is its business.
            let _ = stdin.write_all(&input);
        }
    });
    let (out, err) = {
        let mut inner = lock(&child.inner);
        (
            read_to_end(inner.stdout.take()),
            read_to_end(inner.stderr.take()),
        )
    };
    let status = child.wait_timeout(deadline)?;
    let _ = feeder.join();
    // The readers end when the last writer of each pipe is gone: the child, and anything it
    // started, which the own-group kill on drop takes care of.
    drop(child);
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// A child's output stream, read from the moment the child starts by a thread of its own, and
/// handed over as a reader of everything read so far and from then on.
///
/// The thread reads until end of file (every holder of the pipe's write end is gone) and keeps
/// reading when nobody wants the data any more, so the child can never block on this pipe.
/// What nobody has taken yet waits in memory; the child's deadline bounds how much that is.
struct Drained {
    chunks: Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Drained {
    fn start(mut source: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        crate::cleanup::spawn_helper(move || {
            let mut buf = vec![0; 64 * 1024];
            loop {
                match source.read(&mut buf) {
                    Ok(0) => break,
                    // A send fails once the reader is dropped: read on, and discard.
                    Ok(n) => drop(tx.send(buf[..n].to_vec())),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
        Drained {
            chunks: rx,
            current: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for Drained {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                // The draining thread has seen end of file.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Read a child's output to its end on a thread of its own, so that stdout and stderr are
/// collected together.
fn read_to_end<R: Read + Send + 'static>(source: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    crate::cleanup::spawn_helper(move || {
        let mut buf = Vec::new();
        if let Some(mut source) = source {
            let _ = source.read_to_end(&mut buf);
        }
        buf
    })
}

/// How a process ended, from its exit status, for messages: `exit 0`, `signal 9 (SIGKILL)`
/// as it is [`Display`](std::fmt::Display)ed, `exited with status 0`, `was killed by SIGKILL`
/// as a [`clause`](Ended::clause) of a sentence about it.
///
/// ```
/// use std::os::unix::process::ExitStatusExt;
/// use std::process::ExitStatus;
/// use common::child::Ended;
///
/// let killed = Ended::from(ExitStatus::from_raw(9)); // the wait status of a SIGKILL
/// assert_eq!(format!("writer 3 {killed}"), "writer 3 signal 9 (SIGKILL)");
/// assert_eq!(format!("worker pid 42 {}", killed.clause()), "worker pid 42 was killed by SIGKILL");
/// let exited = Ended::from(ExitStatus::from_raw(3 << 8));
/// assert_eq!((exited.to_string(), exited.clause()), ("exit 3".into(), "exited with status 3".into()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It called `exit(code)` (or returned from `main`).
    Exited(i32),
    /// A signal killed it (its number).
    Killed(i32),
    /// Neither (a status `waitpid` reports for a stopped or continued child).
    Other,
}

impl From<ExitStatus> for Ended {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ended::Exited(code),
            (None, Some(sig)) => Ended::Killed(sig),
            (None, None) => Ended::Other,
        }
    }
}

impl Ended {
    /// What the process did, as the predicate of a sentence about it: `exited with status 3`,
    /// `was killed by SIGKILL`.
    pub fn clause(self) -> String {
        match self {
            Ended::Exited(code) => format!("exited with status {code}"),
            Ended::Killed(sig) => match Signal::try_from(sig) {
                Ok(s) => format!("was killed by {s}"),
                Err(_) => format!("was killed by signal {sig}"),
            },
            Ended::Other => "ended".to_owned(),
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Ended::Exited(code) => write!(f, "exit {code}"),
            Ended::Killed(sig) => match Signal::try_from(sig) {
                Ok(s) => write!(f, "signal {sig} ({s})"),
                Err(_) => write!(f, "signal {sig}"),
            },
            Ended::Other => f.write_str("unknown status"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn deadline_kills_a_hung_child_and_its_children() {
        // The shell starts a grandchild that holds stdout open; only a group kill ends it.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 300 & echo started; wait"])
            .stdout(Stdio::piped());
        let opts = Options {
            deadline: Some(Duration::from_millis(300)),
            own_group: true,
        };
        let child = Supervised::spawn("sh", &mut cmd, opts).unwrap();
        let mut out = child.stdout_lines().unwrap();
        out.wait_for(|l| l == "started", LONG).unwrap();
        let err = child.wait_timeout(LONG).unwrap_err().to_string();
        assert!(err.ends_with("was killed at its deadline"), "{err}");
        // EOF on stdout proves the grandchild died too.
        assert_eq!(out.rest(LONG).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn run_feeds_stdin_and_collects_both_streams() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "tr a-z A-Z; echo oops >&2; exit 3"]);
        let out = run("sh", &mut cmd, b"hello\n", LONG).unwrap();
        assert_eq!(out.stdout, b"HELLO\n");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(Ended::from(out.status).to_string(), "exit 3");
    }

    #[test]
    fn drop_terminates_a_running_child() {
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        let child = Supervised::spawn("sleep", &mut cmd, Options::default()).unwrap();
        let pid = child.pid();
        drop(child);
        // Reaped: the pid no longer names our child (kill fails with ESRCH).
        assert_eq!(kill(pid, None), Err(nix::errno::Errno::ESRCH));
    }

    #[test]
    fn wait_timeout_gives_up_on_a_running_child_and_returns_once_it_exits() {
        // The child exits when its stdin closes, so the test decides when.
        let mut cmd = Command::new("cat");
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let child = Supervised::spawn("cat", &mut cmd, Options::default()).unwrap();
        let stdin = child.take_stdin().unwrap();
        let err = child
            .wait_timeout(Duration::from_millis(50))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("did not exit within 50ms"), "{err}");
        assert!(child.try_wait().unwrap().is_none(), "still running");
        drop(stdin);
        assert!(child.wait_timeout(LONG).unwrap().success());
    }

    #[test]
    fn piped_streams_are_drained_whether_read_or_not() {
        // Far more than a pipe holds, on both streams. Undrained, the child would block in
        // `write` and never exit; the wait below comes before anyone asks for the output.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "seq 1 200000; seq 1 200000 >&2; echo done"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let opts = Options {
            deadline: Some(LONG),
            own_group: true,
        };
        let child = Supervised::spawn("sh", &mut cmd, opts).unwrap();
        assert!(child.wait_timeout(LONG).unwrap().success());
        // Taken late, the lines still start at the first one.
        let out = child.stdout_lines().unwrap().rest(LONG).unwrap();
        assert_eq!(out.len(), 200_001);
        assert_eq!((out[0].as_str(), out[200_000].as_str()), ("1", "done"));
        // stderr is never taken: dropping the handle must not wait on it either.
    }

    #[test]
    fn a_child_tied_to_its_supervisor_runs_normally() {
        // Its death with the supervisor is tested in tests/cleanup.rs, where the test binary
        // plays a supervisor process that can be killed.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        die_with_supervisor(&mut cmd, Signal::SIGKILL);
        let child = Supervised::spawn("sh", &mut cmd, Options::default()).unwrap();
        assert_eq!(
            Ended::from(child.wait_timeout(LONG).unwrap()),
            Ended::Exited(3)
        );
    }

    /// The defaults a demo's role gets: this very binary (here the test binary, asked for its
    /// list of tests), stdout piped, a process group of its own.
    #[test]
    fn a_role_command_is_this_binary_in_a_group_of_its_own_with_stdout_piped() {
        let child = RoleCommand::new("self", LONG)
            .unwrap()
            .args(["--list", "--format", "terse"])
            .spawn()
            .unwrap();
        // Unreaped until we wait: even if it has exited, its pid still names it.
        let group = nix::unistd::getpgid(Some(child.pid())).unwrap();
        assert_eq!(group, child.pid(), "a process group of its own");
        let mut out = child.stdout_lines().expect("stdout is piped by default");
        out.wait_for(
            |l| l.starts_with("child::tests::a_role_command_is_this_binary"),
            LONG,
        )
        .unwrap();
        assert!(child.wait_timeout(LONG).unwrap().success());
    }

    #[test]
    fn wait_for_reports_what_it_saw() {
        let mut lines = Lines::new(&b"one\ntwo\n"[..]);
        let err = lines
            .wait_for(|l| l == "three", LONG)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "output ended without the expected line; saw:\none\ntwo"
        );
    }
}
