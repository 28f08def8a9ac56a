//! `sem-demo run`: run a command while holding one of K permits, like `flock(1)` or GNU
//! parallel's `sem`.
//!
//! The sequence:
//!
//! 1. open the semaphore NAME, creating it with K permits if it is new (SysV: `IPC_EXCL` and
//!    `sem_otime`, so fifty `run`s starting at the same instant still agree on K; see
//!    [`crate::sysv`]). A different `--limit` for an existing SysV name is refused: silently
//!    keeping the old K would run more (or fewer) commands at once than the caller asked for;
//! 2. take a permit: `semop(-1, SEM_UNDO)` (or `semtimedop` with `--timeout`). Signals have
//!    their default effect while we wait: Ctrl-C ends `run`, which holds nothing yet;
//! 3. block SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGCHLD, then fork and exec the command
//!    (with our original mask restored in the child), with `PR_SET_PDEATHSIG`
//!    set to SIGKILL: if `run` dies, the command dies with it, so a command never runs
//!    without the permit it was started under;
//! 4. `sigwait` for those signals: SIGCHLD means the command may have ended (reap it);
//!    the others are passed on to the command, and `run` keeps waiting for it;
//! 5. give the permit back (`semop(+1, SEM_UNDO)`, which also cancels the kernel's undo
//!    entry) and exit with the command's status, 128+N if signal N killed it.
//!
//! # Why System V
//!
//! A holder may be killed with SIGKILL at any instant, and then no code of ours runs. With
//! `SEM_UNDO` the kernel itself gives the permit back when the process ends, so the next
//! waiter proceeds at once. A POSIX named semaphore cannot promise that: it is a counter in
//! shared memory with no owner, and nothing records that the dead process had taken one, so
//! its permit is lost until someone posts it back by hand (`--posix` shows this). With
//! `--posix`, a signal that arrives between taking the permit and blocking signals (step 3)
//! also loses it: a few instructions' window that SysV does not have.

use std::ffi::{CStr, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::{Error, Result, trace};
use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, execvp, fork, getpid, getppid};

use crate::cli::RunArgs;
use crate::sem::{Flavor, Open, Sem, timed_out};

/// Signals `run` catches while the command runs (all but SIGCHLD are forwarded to it).
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// `sem-demo run [--name NAME] [--limit K] [--timeout S] [--posix] -- CMD ARGS...`
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let flavor = if args.posix {
        Flavor::Posix
    } else {
        Flavor::Sysv
    };
    let k = args.limit.unwrap_or(1);
    let (sem, created) = Sem::open(flavor, &args.name, Open::OrCreate { value: k, limit: k })?;
    if let (Some(want), Some(has)) = (args.limit, sem.limit())
        && !created
        && want != has
    {
        return Err(Error::Usage(format!(
            "{} exists with {has} permit{}, not {want}; `sem-demo unlink --sysv {}` first to \
             change it",
            sem.describe(),
            if has == 1 { "" } else { "s" },
            args.name
        )));
    }

    // 2. Take a permit (SEM_UNDO: the kernel returns it if we die holding it).
    if !sem.wait(true, args.timeout.as_ref().map(|t| t.duration))? {
        let t = args.timeout.as_ref().map_or("?", |t| t.text.as_str());
        return Err(timed_out(t, &args.name));
    }

    // 3. From here on, signals are read, not obeyed, so the permit is always given back.
    let mut caught = SigSet::empty();
    for sig in FORWARDED {
        caught.add(sig);
    }
    caught.add(Signal::SIGCHLD);
    let mut old = SigSet::empty();
    let blocked = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught), Some(&mut old))
        .map_err(|e| Error::sys("sigprocmask", "SIG_BLOCK", e));
    let outcome = blocked.and_then(|()| supervise(&args.command, &caught, old));
    // 5. Give the permit back, whatever happened to the command. If that fails (someone
    //    removed the semaphore meanwhile), say so, but the status is still the command's:
    //    a script must not take a finished build for a failed one.
    if let Err(e) = sem.post(true) {
        eprintln!("sem-demo: warning: {e}");
    }
    Ok(ExitCode::from(outcome?))
}

/// Steps 3 and 4: start the command and wait for it, passing signals on. Returns the exit
/// status to pass on: the command's, 128+N if signal N killed it, or 127/126 (as a shell
/// says) if it could not be run.
///
/// A plain fork + execvp rather than std's `Command`: `Command` waits on a pipe until the
/// child has exec'd (to report a failed exec to the parent), one more sleep and wake-up per
/// invocation, which is what a script that runs `sem-demo run` in a loop pays for. Here,
/// as in a shell, the child reports its own failed exec and exits 127 or 126.
fn supervise(argv: &[OsString], caught: &SigSet, old_mask: SigSet) -> Result<u8> {
    // Everything the child needs is prepared before the fork: after it, the child makes
    // only async-signal-safe calls.
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Usage("run: an argument contains a NUL byte".into()))?;
    let prog = args
        .first()
        .ok_or_else(|| Error::Usage("run: no command given".into()))?;
    let cannot = format!("sem-demo: cannot run '{}': ", prog.to_string_lossy());
    let parent = getpid();
    // SAFETY: `run` has no other thread, and the child runs only async-signal-safe calls
    // (sigaction, sigprocmask, prctl, getppid, kill, execvp, write, _exit) on data prepared
    // above, before it execs or exits.
    let child = match unsafe { fork() }.map_err(|e| Error::sys("fork", "", e))? {
        ForkResult::Child => exec_child(prog, &args, &old_mask, parent, cannot.as_bytes()),
        ForkResult::Parent { child } => child,
    };
    trace!(
        "fork() -> pid {child}; execvp({}) (PR_SET_PDEATHSIG=SIGKILL)",
        prog.to_string_lossy()
    );
    loop {
        let sig = caught.wait().map_err(|e| Error::sys("sigwait", "", e))?;
        if sig != Signal::SIGCHLD {
            trace!("sigwait -> {sig}: passed on to pid {child}");
            // ESRCH: it has just exited; its SIGCHLD is on its way.
            let _ = kill(child, sig);
            continue;
        }
        let code = match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => u8::try_from(code & 0xff).unwrap_or(1),
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as u8,
            // Stopped, continued, or not yet: keep waiting.
            Ok(_) => continue,
            Err(e) => return Err(Error::sys("waitpid", child, e)),
        };
        trace!("waitpid({child}) -> exit status {code}");
        return Ok(code);
    }
}

/// The child's side of [`supervise`]: never returns.
fn exec_child(prog: &CStr, args: &[CString], old_mask: &SigSet, parent: Pid, cannot: &[u8]) -> ! {
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: restore the
    // default, as std's Command does. Then the mask we started with (ours blocks SIGINT,
    // SIGTERM...), or the command would never see them.
    // SAFETY: setting a default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old_mask), None);
    // If `run` dies, the command dies with it: it must not go on without its permit.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // If `run` died before the prctl, we were re-parented already and the death signal will
    // never come: die now rather than run unguarded.
    if getppid() != parent {
        let _ = kill(getpid(), Signal::SIGKILL);
    }
    let Err(e) = execvp(prog, args);
    let stderr = std::io::stderr();
    for part in [cannot, e.desc().as_bytes(), b"\n"] {
        let _ = nix::unistd::write(&stderr, part);
    }
    let code = if e == Errno::ENOENT { 127 } else { 126 };
    // SAFETY: _exit ends this forked child at once, without running the parent's atexit
    // handlers or flushing buffers that belong to the parent.
    unsafe { libc::_exit(code) }
}
