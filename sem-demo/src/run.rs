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
//! 4. `sigwaitinfo` for those signals: SIGCHLD means the command may have ended (reap it);
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

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ExitCode, ExitStatus};

use common::{Error, Result, trace};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::unistd::{Pid, getpid};

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
    // 5. Give the permit back, whatever happened to the command.
    sem.post(true)?;
    Ok(ExitCode::from(outcome?))
}

/// Steps 3 and 4: start the command and wait for it, passing signals on. Returns the exit
/// status to pass on: the command's, or 127/126 (as a shell says) if it could not be run.
fn supervise(argv: &[OsString], caught: &SigSet, old_mask: SigSet) -> Result<u8> {
    let (prog, rest) = argv
        .split_first()
        .ok_or_else(|| Error::Usage("run: no command given".into()))?;
    let parent = getpid();
    let mut cmd = std::process::Command::new(prog);
    cmd.args(rest);
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe calls (sigprocmask, prctl, getppid, kill) on values copied before
    // the fork.
    unsafe {
        cmd.pre_exec(move || {
            // The mask survives exec, and std's Command does not reset it: give the command
            // the mask we started with, or it would never see SIGINT or SIGTERM.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // If `run` died before the prctl, the child was already re-parented and the
            // death signal will never come: die now instead of running unguarded.
            if nix::unistd::getppid() != parent {
                let _ = kill(nix::unistd::getpid(), Signal::SIGKILL);
            }
            Ok(())
        })
    };
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "sem-demo: cannot run '{}': {}",
                prog.to_string_lossy(),
                common::error::io_cause(&e)
            );
            let not_found = e.raw_os_error() == Some(Errno::ENOENT as i32);
            return Ok(if not_found { 127 } else { 126 });
        }
    };
    trace!(
        "fork() + execvp({}) -> pid {} (PR_SET_PDEATHSIG=SIGKILL)",
        prog.to_string_lossy(),
        child.id()
    );
    loop {
        let sig = caught.wait().map_err(|e| Error::sys("sigwait", "", e))?;
        if sig == Signal::SIGCHLD {
            if let Some(status) = reap(&mut child)? {
                trace!(
                    "waitpid({}) -> {}",
                    child.id(),
                    common::child::describe(status)
                );
                return Ok(exit_code(status));
            }
            continue;
        }
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        trace!("sigwait -> {sig}: passed on to pid {pid}");
        // ESRCH: it has just exited; its SIGCHLD is on its way.
        let _ = kill(pid, sig);
    }
}

fn reap(child: &mut Child) -> Result<Option<ExitStatus>> {
    child
        .try_wait()
        .map_err(|e| Error::msg(format!("waitpid: {}", common::error::io_cause(&e))))
}

/// The status a shell would report: the exit code, or 128+N for death by signal N.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}
