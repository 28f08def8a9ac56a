//! `sem-demo run`: run a command while holding one of K permits, like `flock(1)` or GNU
//! parallel's `sem`.
//!
//! The sequence:
//!
//! 1. open the semaphore NAME, creating it with K permits if it is new (SysV: `IPC_EXCL` and
//!    one conditional `semop`, so fifty `run`s starting at the same instant still agree on K;
//!    see [`crate::sysv`]). A different `--limit` for an existing SysV name is refused:
//!    silently keeping the old K would run more (or fewer) commands at once than the caller
//!    asked for;
//! 2. take a permit: `semop(-1, SEM_UNDO)` (or `semtimedop` with `--timeout`). Signals have
//!    their default effect while we wait: Ctrl-C ends `run`, which holds nothing yet (or, an
//!    instant after the `semop`, holds a permit that the kernel gives back as `run` dies);
//! 3. block SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGCHLD, then start the command
//!    ([`crate::spawn`]: `clone(CLONE_VM|CLONE_VFORK|CLONE_SYSVSEM)` + `execvp`, every signal
//!    blocked around the clone as `posix_spawn` does, the command's mask and dispositions
//!    those we were given, and `PR_SET_PDEATHSIG` set to SIGKILL: if `run` dies, the command
//!    dies with it);
//! 4. `sigwait` for those signals: SIGCHLD means the command may have ended (reap it);
//!    the others are passed on to the command, and `run` keeps waiting for it;
//! 5. give the permit back (`semop(+1, SEM_UNDO)`, which also cancels the kernel's undo
//!    entry) and exit with the command's status, 128+N if signal N killed it.
//!
//! # The permit lives as long as the command
//!
//! A holder may be killed with SIGKILL at any instant, and then no code of ours runs. With
//! `SEM_UNDO` the kernel records our `-1` in a list of adjustments that it applies when the
//! process exits, however it exits: the permit comes back without us. But "when `run`
//! exits" is not enough: the command is what the permit guards, and in the kernel's exit
//! path the undo list is applied *before* the parent-death signal that kills the command is
//! sent, so the next `run` could start while the old command still ran. `flock(1)` has no
//! such gap: the command inherits the locked descriptor, and the lock goes only when the
//! last process holding it has ended.
//!
//! So the command shares our undo list: it is started with `CLONE_SYSVSEM`, keeps the list
//! across `execve`, and the kernel applies a shared list only when the *last* process sharing
//! it exits. If `run` is killed, the permit stays taken until its command has died too (of its
//! death signal); if the command ends first, we give the permit back ourselves (step 5).
//! (Taking the permit in the child just before `execve` would tie it to the command as well,
//! but the wait would then happen in the child, while we sat suspended by `CLONE_VFORK`,
//! unable to pass a SIGTERM on, to time out, or to say what we wait for.)
//!
//! The limit: the list belongs to the command's own process, not to the processes it starts
//! (`fork` gives a child an empty list), so a command that leaves a background process behind
//! gives the permit back when it and `run` have ended, as `flock` would not (its descriptor
//! is inherited). A command that uses `SEM_UNDO` itself shares our list too, and its own
//! adjustments are applied when `run` exits, an instant after it.
//!
//! # POSIX (`--posix`): what it can and cannot promise
//!
//! A POSIX named semaphore is a counter in shared memory with no owner: nothing records that
//! a process took a permit, and nothing gives it back when that process dies. It can still
//! promise that **the command never runs without its permit**: only `run` gives it back, and
//! only after it has reaped the command; if `run` is killed, nothing gives it back at all, and
//! the command dies of its death signal. What it cannot promise is that **the permit comes
//! back**: a `run` killed with SIGKILL loses it until someone posts it by hand (`sem-demo post
//! NAME`), and so does one ended by a signal's default action between taking the permit and
//! blocking signals (step 3), a few instructions' window. `--posix` is there to show this.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::{Error, Result, trace};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::cli::RunArgs;
use crate::creation::Creation;
use crate::sem::{Flavor, Sem, timed_out};
use crate::spawn::{self, Setup};

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
    let argv = c_strings(&args.command)?;
    let k = args.limit.unwrap_or(1);
    let (sem, created) = Sem::open(
        flavor,
        &args.name,
        Creation::IfAbsent { value: k, limit: k },
    )?;
    if let (Some(want), Some(has)) = (args.limit, sem.limit())
        && !created
        && want != has
    {
        return Err(Error::Usage(format!(
            "{sem} exists with {has} permit{}, not {want}; `sem-demo unlink --sysv {}` first \
             to change it",
            if has == 1 { "" } else { "s" },
            args.name
        )));
    }

    // 2. Take a permit (SEM_UNDO: the kernel returns it if we die holding it). The guard
    //    gives it back if anything below fails before the command has started.
    let Some(permit) = sem.take_within(true, args.timeout.as_ref().map(|t| t.duration))? else {
        let t = args.timeout.as_ref().map_or("?", |t| t.text.as_str());
        return Err(timed_out(t, &args.name));
    };

    // 3. From here on, signals are read, not obeyed, so the permit is always given back.
    //    SIGCHLD first gets its default action back: a parent that ignores it (SIG_IGN is
    //    inherited across exec) would have the kernel reap the command silently, with no
    //    SIGCHLD for sigwait to see and no status for waitpid to return. The command gets
    //    back what we were given, as it would have without us in between.
    // SAFETY: setting a default disposition installs no handler.
    let chld = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }
        .map_err(|e| Error::sys("sigaction", "SIGCHLD", e))?;
    let ignore_chld = matches!(chld, SigHandler::SigIgn);
    let mut caught = SigSet::empty();
    for sig in FORWARDED {
        caught.add(sig);
    }
    caught.add(Signal::SIGCHLD);
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught), Some(&mut old))
        .map_err(|e| Error::sys("sigprocmask", "SIG_BLOCK", e))?;
    let child = spawn::spawn(&argv, &Setup::new(old, ignore_chld))?;
    trace!(
        "clone(CLONE_VM|CLONE_VFORK|CLONE_SYSVSEM) -> pid {child}; the child: \
         PR_SET_PDEATHSIG=SIGKILL, execvp({})",
        args.command[0].to_string_lossy()
    );
    // The command shares our undo list from here on: the kernel gives the permit back only
    // once both of us have ended, unless we give it back first (step 5).
    match supervise(child, &caught) {
        // 5. Give the permit back: the command has ended. If that fails (someone removed the
        //    semaphore meanwhile), say so, but the status is still the command's: a script
        //    must not take a finished build for a failed one.
        Ok(code) => {
            if let Err(e) = permit.release() {
                eprintln!("sem-demo: warning: {e}");
            }
            Ok(ExitCode::from(code))
        }
        // We no longer know whether the command runs, so we must not give its permit back:
        // SysV's shared undo list gives it back once both of us have ended (the command dies
        // of its death signal as we exit); a POSIX permit stays taken until posted by hand.
        Err(e) => {
            permit.keep();
            Err(e)
        }
    }
}

/// Step 4: wait for the command, passing signals on. Returns the exit status to pass on:
/// the command's, 128+N if signal N killed it, or 127/126 (as a shell says) if it could not
/// be run (its child reports that itself: see [`crate::spawn`]).
fn supervise(child: Pid, caught: &SigSet) -> Result<u8> {
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

/// The command line as execvp takes it. A NUL byte cannot come from a real argv, but it is
/// refused as a usage error before we wait for anything.
fn c_strings(argv: &[OsString]) -> Result<Vec<CString>> {
    argv.iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Usage("run: an argument contains a NUL byte".into()))
}
