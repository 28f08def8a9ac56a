//! Starting a program by hand: `fork`, wire its stdin/stdout with `dup2`, close every pipe end it
//! must not keep, `execv` — and learn in the parent whether the exec worked.
//!
//! This is what a shell does for each stage of `ls -l | grep txt`, and what
//! `std::process::Command` hides. The sequence, for one child:
//!
//! ```text
//! parent: pipe2(O_CLOEXEC)            the error pipe (see below)
//! parent: fork()
//! child:  dup2(in, 0); dup2(out, 1)   the pipe ends become stdin/stdout
//! child:  close(...)                  every original pipe end, or readers never see EOF
//! child:  execv(/usr/bin/ls, argv)    on failure: write errno to the error pipe, _exit(127)
//! parent: close(error pipe write end); read(error pipe) -> 0 bytes: the exec worked
//! ...
//! parent: waitpid(pid)
//! ```
//!
//! # How the parent learns that exec failed
//!
//! After `fork` the child is a copy of the parent; if `execv` fails, only the child knows. The
//! classic trick (used by std, glibc's `posix_spawn` and many shells) is a pipe of its own per
//! child with `O_CLOEXEC` set: a successful `execv` closes the child's write end, so the
//! parent's `read` returns 0 bytes (EOF); a failed one leaves the child alive to write its
//! `errno` into it before `_exit(127)`. The parent waits on that `read` right after `fork`, so
//! it knows before starting the next stage, and reports `stage 2: cannot run 'nosuch': No such
//! file or directory` itself.
//!
//! # Between fork and exec
//!
//! In the child, until `execv`, only async-signal-safe calls are allowed: another thread of the
//! parent may have held the allocator's lock at the moment of `fork`, and the child would
//! deadlock on it. So every string, the `argv` pointer array and the resolved path
//! ([`crate::program`]), even the trace lines ([`crate::child_trace`]) are prepared *before*
//! `fork`, and the child calls only `signal`, `sigaction`, `dup2`, `close`, `close_range`,
//! `write`, `execv` and `_exit` — no allocation, no locks, no `println!`. Its code,
//! `child_after_fork`, reads top to bottom in the order of those calls.
//!
//! # Pitfalls
//!
//! - **A write end left open anywhere** (in the parent, or in a child that did not close its
//!   copy) means the reader never sees EOF: the child closes every original after its `dup2`,
//!   the parent its own copy at once (see the callers).
//! - **`dup2(fd, fd)` does nothing**, and leaves `FD_CLOEXEC` set: with 0, 1 or 2 closed at
//!   start, a pipe end could land on them. [`ensure_std_fds`] rules that out.
//! - **SIGPIPE is ignored in every Rust program** and an ignored signal stays ignored across
//!   `execv`: the child resets it, or `yes | head -1` would never end `yes` with SIGPIPE.
//! - **`std::process::exit` in the child** would run the parent's atexit handlers and flush
//!   its copied stdio buffers: a failed child leaves with `_exit`.

use std::ffi::CStr;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};

use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigAction, SigHandler, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::child_trace::ChildTrace;
use crate::program::Program;

/// Exit status of a child whose command was not found (as in every shell).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit status of a child whose command was found but could not be run (as in every shell).
pub const EXIT_CANNOT_RUN: i32 = 126;

/// How a child's stdin and stdout are wired, and what it must close.
pub struct Wiring<'a> {
    /// Becomes the child's stdin (`dup2(fd, 0)`); `None` keeps the parent's stdin.
    pub stdin: Option<BorrowedFd<'a>>,
    /// Becomes the child's stdout (`dup2(fd, 1)`); `None` keeps the parent's stdout.
    pub stdout: Option<BorrowedFd<'a>>,
    /// Every pipe end the child holds a copy of: closed after the `dup2` calls. A write end
    /// left open here would keep the downstream reader from ever seeing EOF.
    pub close: Vec<BorrowedFd<'a>>,
    /// Signal dispositions the child puts back before it execs: the ones the parent had
    /// before it ignored them for itself (the pager ignores SIGINT/SIGQUIT while it waits, as
    /// system(3) does; an ignored signal stays ignored across execv, so without this the
    /// pager and the command could not be interrupted either).
    pub restore: &'a [(Signal, SigAction)],
}

/// Which step of the child's setup failed (sent through the error pipe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `dup2` onto stdin or stdout.
    Dup2,
    /// `execv` itself (or the PATH search found nothing).
    Exec,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Dup2 => "dup2",
            Step::Exec => "execv",
        })
    }
}

/// A child that failed before or at `execv`.
#[derive(Clone, Copy, Debug)]
pub struct ExecError {
    /// What failed.
    pub step: Step,
    /// Why.
    pub errno: Errno,
}

/// A started child: its pid, and whether its `execv` failed.
pub struct Started {
    /// The child's pid, to `waitpid` for.
    pub pid: Pid,
    /// `Some` if the child could not run its program (it has exited 126 or 127).
    pub exec_error: Option<ExecError>,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(Signal),
}

impl Status {
    /// The status as a shell reports it in `$?`: the exit code, or 128 + the signal number.
    pub fn code(self) -> u8 {
        match self {
            // An exit code is already 0..=255 when it comes from waitpid.
            Status::Exited(c) => u8::try_from(c & 0xff).unwrap_or(1),
            Status::Signaled(s) => 128u8.wrapping_add(s as u8),
        }
    }

    /// True for `exit 0`.
    pub fn success(self) -> bool {
        self == Status::Exited(0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Exited(c) => write!(f, "exit {c}"),
            Status::Signaled(s) => write!(f, "killed by {s}"),
        }
    }
}

/// Make sure fds 0, 1 and 2 are open (on /dev/null if they were closed).
///
/// Pitfall: a program started with stdout closed gets fd 1 back from its first `pipe2`. A
/// child would then `dup2(4, 1)` over a pipe end it still needs, or `dup2(1, 1)`, which does
/// nothing — and leaves `FD_CLOEXEC` set, so `execv` closes the child's new stdout. With 0, 1
/// and 2 taken, every pipe end is 3 or above and the `dup2` calls can never collide.
pub fn ensure_std_fds() -> Result<()> {
    for fd in 0..3 {
        // libc, not nix: nix's fcntl takes an AsFd, and a BorrowedFd may not name a closed fd.
        // SAFETY: F_GETFD only reads the flags of `fd`; any int is a valid argument.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 || Errno::last() != Errno::EBADF {
            continue;
        }
        // No O_CLOEXEC: this fd is meant to be inherited as a child's stdin/stdout/stderr. It
        // lands on `fd` because open returns the lowest free descriptor.
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, nix::sys::stat::Mode::empty())
            .ctx("open", "/dev/null")?;
        trace!(
            "fd {fd} was closed: open(/dev/null) -> {}",
            null.as_raw_fd()
        );
        let _keep = null.into_raw_fd();
    }
    Ok(())
}

/// Fork a child that runs `prog` with `wiring`; `role` names it in the trace (`stage 2`).
///
/// Returns once the child has either exec'd or failed to: see the module docs.
pub fn spawn(role: &str, prog: &Program, wiring: &Wiring<'_>) -> Result<Started> {
    // Everything the child needs, prepared now: after fork it must not allocate.
    let mut argv: Vec<*const libc::c_char> = prog.argv().iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let path: Option<&CStr> = prog.path();
    let child_trace = ChildTrace::prepare(role, prog);

    let (err_read, err_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "error pipe")?;
    trace!(
        "pipe2(O_CLOEXEC) -> read={} write={} (error pipe for {role})",
        err_read.as_raw_fd(),
        err_write.as_raw_fd()
    );

    // SAFETY: the child branch below calls only async-signal-safe functions (dup2, close,
    // close_range, signal, write, execv, _exit) on data prepared before this call, and never
    // returns: it execs or _exits. So it cannot deadlock on a lock another thread held at fork
    // time, and it never runs the parent's destructors or flushes the parent's buffers.
    match unsafe { nix::unistd::fork() }.ctx("fork", role)? {
        ForkResult::Child => child_after_fork(path, &argv, wiring, err_write.as_fd(), &child_trace),
        ForkResult::Parent { child } => {
            trace!("fork() -> pid {child} ({role}: {prog})");
            // Our copy of the write end must go, or the read below waits forever: EOF comes
            // only when every write end is closed, and the child's closes at its exec.
            trace!(
                "close({}) (our copy of the error pipe's write end)",
                err_write.as_raw_fd()
            );
            drop(err_write);
            let exec_error = read_exec_error(&err_read).ctx("read", "error pipe")?;
            match exec_error {
                None => trace!(
                    "read({}) -> EOF: {role} exec'd {}",
                    err_read.as_raw_fd(),
                    prog.name()
                ),
                Some(e) => trace!(
                    "read({}) -> 8 bytes: {} failed with {}: {role} could not run {}",
                    err_read.as_raw_fd(),
                    e.step,
                    e.errno,
                    prog.name()
                ),
            }
            Ok(Started {
                pid: child,
                exec_error,
            })
        }
    }
}

/// The child's side, from `fork` to `execv`, in the order the calls are made.
/// Async-signal-safe calls only (see [`spawn`]).
fn child_after_fork(
    path: Option<&CStr>,
    argv: &[*const libc::c_char],
    wiring: &Wiring<'_>,
    err_write: BorrowedFd<'_>,
    trace: &ChildTrace,
) -> ! {
    // Rust ignores SIGPIPE in every program it starts, and an ignored signal stays ignored
    // across execv. Without this reset `yes | head -1` would not end `yes` with SIGPIPE, as a
    // shell does; `yes` would get EPIPE and complain "Broken pipe" instead.
    // SAFETY: setting a default disposition installs no handler; signal(2) is
    // async-signal-safe.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    for (sig, action) in wiring.restore {
        // SAFETY: the action was the parent's before it ignored the signal: SIG_DFL or SIG_IGN
        // in practice, and a handler would be reset to SIG_DFL by execv anyway; sigaction(2) is
        // async-signal-safe.
        let _ = unsafe { nix::sys::signal::sigaction(*sig, action) };
    }
    if let Some(fd) = wiring.stdin {
        trace.dup2(fd.as_raw_fd(), 0);
        if let Err(e) = nix::unistd::dup2_stdin(fd) {
            fail(err_write, Step::Dup2, e);
        }
    }
    if let Some(fd) = wiring.stdout {
        trace.dup2(fd.as_raw_fd(), 1);
        if let Err(e) = nix::unistd::dup2_stdout(fd) {
            fail(err_write, Step::Dup2, e);
        }
    }
    // The originals are no longer needed: stdin/stdout are copies. Above all, a pipe's write
    // end left open here would keep its reader (the next stage, or this very process if it
    // reads from that pipe) from ever seeing EOF.
    for fd in &wiring.close {
        trace.close(fd.as_raw_fd());
        let _ = nix::unistd::close(fd.as_raw_fd());
    }
    // Belt and braces for descriptors we did not open: anything inherited from our own parent
    // without O_CLOEXEC (a make jobserver pipe, a careless caller) is marked close-on-exec, so
    // the program we run sees only 0, 1 and 2. The error pipe stays open until the exec.
    // libc, not nix: nix 0.32 does not wrap close_range(2) (Linux 5.11+; on an older kernel
    // it fails with ENOSYS and nothing changes, which costs only the belt).
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on open descriptors.
    let _ = unsafe { libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) };
    trace.execv();
    let Some(path) = path else {
        fail(err_write, Step::Exec, Errno::ENOENT);
    };
    // libc, not nix: nix's execv builds its argv pointer array in a Vec, i.e. allocates after
    // fork. Ours was built before fork.
    // SAFETY: `path` is a NUL-terminated string and `argv` a null-terminated array of pointers
    // to NUL-terminated strings, all owned by the parent's frame, which the child's copy of the
    // address space keeps alive until execv replaces it.
    unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
    fail(err_write, Step::Exec, Errno::last())
}

/// In the child: report `step` and `errno` through the error pipe and exit like a shell does
/// (127 "not found", 126 "cannot run").
fn fail(err_write: BorrowedFd<'_>, step: Step, errno: Errno) -> ! {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&(step as i32).to_ne_bytes());
    msg[4..].copy_from_slice(&(errno as i32).to_ne_bytes());
    // 8 bytes into an empty pipe: one write, never partial (PIPE_BUF is at least 512).
    let _ = nix::unistd::write(err_write, &msg);
    let code = if step == Step::Exec && errno == Errno::ENOENT {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_RUN
    };
    // libc, not nix: nix 0.32 has no _exit. Not std::process::exit either: that runs atexit
    // handlers and flushes stdio buffers copied from the parent, which are not ours to flush.
    // SAFETY: _exit(2) is async-signal-safe and takes any status.
    unsafe { libc::_exit(code) }
}

/// In the parent: `None` on EOF (the exec closed the pipe), else the child's report.
fn read_exec_error(fd: &OwnedFd) -> nix::Result<Option<ExecError>> {
    let mut msg = [0u8; 8];
    let mut got = 0;
    while got < msg.len() {
        match nix::unistd::read(fd, &mut msg[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    if got < msg.len() {
        return Ok(None);
    }
    let word = |i: usize| i32::from_ne_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
    let step = if word(0) == Step::Dup2 as i32 {
        Step::Dup2
    } else {
        Step::Exec
    };
    Ok(Some(ExecError {
        step,
        errno: Errno::from_raw(word(4)),
    }))
}

/// The one-line message for a child that could not run: `cannot run 'nosuch': No such file
/// or directory`.
pub fn describe_exec_error(prog: &Program, e: ExecError) -> String {
    match e.step {
        Step::Exec => format!("cannot run '{}': {}", prog.name(), e.errno.desc()),
        Step::Dup2 => format!("dup2 before running '{}': {}", prog.name(), e.errno.desc()),
    }
}

/// `waitpid` for one child, retrying on EINTR.
pub fn wait(pid: Pid, role: &str) -> Result<Status> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => {
                let s = Status::Exited(code);
                trace!("waitpid({pid}) -> {s} ({role})");
                return Ok(s);
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                let s = Status::Signaled(sig);
                trace!("waitpid({pid}) -> {s} ({role})");
                return Ok(s);
            }
            // Stopped/continued are reported only with WUNTRACED/WCONTINUED, which we do not
            // ask for; keep waiting for the end.
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("waitpid", format!("{pid} ({role})"), e)),
        }
    }
}
