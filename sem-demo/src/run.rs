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
//! 3. block SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGCHLD, then start the command
//!    (`fork` + `execvp`; our original mask restored in the child), with `PR_SET_PDEATHSIG`
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

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::{Error, Result, trace};
use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getpid};

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
    let blocked = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught), Some(&mut old))
        .map_err(|e| Error::sys("sigprocmask", "SIG_BLOCK", e));
    let outcome = blocked.and_then(|()| supervise(&args.command, &caught, old, ignore_chld));
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
/// The child is started with a plain `fork` and `execvp`, and reports its own failed exec
/// (exit 127 or 126, as a shell does), so the parent does not wait on an exec-error pipe as
/// std's `Command` does: one sleep and wake-up less per invocation. `posix_spawn` would copy
/// no page tables, but it cannot set `PR_SET_PDEATHSIG`.
///
/// Pitfall: `clone(CLONE_VM | CLONE_VFORK)` on a stack of our own (what `posix_spawn` does
/// inside glibc) looks like a free speed-up and is not sound here. The child runs in *our*
/// memory on a stack with no guard page, and `execvp` uses as much of it as it likes: when a
/// file has no `#!` (ENOEXEC) glibc retries with `/bin/sh` and builds the new argument list
/// on the stack, one pointer per argument. Fifty thousand arguments overflowed a 256 KiB
/// stack into our heap (`double free or corruption`, and the command never ran). glibc can
/// size its own child's stack because it knows its own `execvp`; we cannot. After `fork` the
/// child has a copy of our whole address space, its stack included, and nothing it does can
/// reach us.
fn supervise(
    argv: &[OsString],
    caught: &SigSet,
    old_mask: SigSet,
    ignore_chld: bool,
) -> Result<u8> {
    // Everything the child needs is prepared here: after fork it makes only async-signal-safe
    // calls and allocates nothing.
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Usage("run: an argument contains a NUL byte".into()))?;
    let prog = args
        .first()
        .ok_or_else(|| Error::Usage("run: no command given".into()))?;
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let cannot = format!("sem-demo: cannot run '{}': ", prog.to_string_lossy());
    let child_args = ChildArgs {
        prog: prog.as_ptr(),
        argv: ptrs.as_ptr(),
        mask: old_mask,
        ignore_chld,
        parent: getpid(),
        cannot: cannot.as_bytes(),
    };
    // SAFETY: `run` is single-threaded (it starts no thread, and nothing it links starts one
    // behind its back), so no lock can be held by a thread that does not exist in the child;
    // and the child branch calls only async-signal-safe functions on data prepared above
    // (and execvp, not on POSIX's list but in glibc lock- and allocation-free: see
    // `exec_child`), then execs or _exits: it never returns into our code, runs no destructor and flushes
    // no buffer of ours.
    let child = match unsafe { fork() }.map_err(|e| Error::sys("fork", "", e))? {
        ForkResult::Child => exec_child(&child_args),
        ForkResult::Parent { child } => child,
    };
    trace!(
        "fork() -> pid {child}; the child: PR_SET_PDEATHSIG=SIGKILL, execvp({})",
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

/// What [`exec_child`] needs, prepared by the parent before `fork`.
struct ChildArgs<'a> {
    prog: *const libc::c_char,
    argv: *const *const libc::c_char,
    mask: SigSet,
    /// SIGCHLD was ignored when we started: ignore it again for the command.
    ignore_chld: bool,
    parent: Pid,
    cannot: &'a [u8],
}

/// The child's side of [`supervise`], from `fork` to `execvp`: async-signal-safe calls only,
/// no allocation; it never returns.
fn exec_child(a: &ChildArgs<'_>) -> ! {
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: the command gets
    // the default back, as std's Command gives it; SIGCHLD is ignored again if our caller
    // ignored it (we needed it back for ourselves). Then the mask we started with (ours blocks
    // SIGINT, SIGTERM...), or it would never see them. If `run` dies, the command dies with
    // it (it must not go on without its permit); and if `run` died before the prctl, we were
    // re-parented already and the death signal will never come: die now rather than run
    // unguarded.
    // SAFETY: signal, sigprocmask, prctl, getppid, kill and getpid take plain values (the
    // mask is ours, prepared before fork) and are async-signal-safe; SIG_DFL and SIG_IGN
    // install no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if a.ignore_chld {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        }
        libc::sigprocmask(libc::SIG_SETMASK, a.mask.as_ref(), std::ptr::null_mut());
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != a.parent.as_raw() {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    // libc, not nix: nix's execvp builds its pointer array in a Vec, i.e. allocates after
    // fork. glibc's execvp (2.24 and later) allocates nothing either: it builds each PATH
    // candidate, and for a script without `#!` the `/bin/sh` argument list, on the stack,
    // which after fork is our own full-size copy of the main thread's stack.
    // SAFETY: `prog` is a NUL-terminated string and `argv` a null-terminated array of
    // pointers to NUL-terminated strings, all in the parent's frame, which our copy of the
    // address space keeps until execvp replaces it.
    unsafe { libc::execvp(a.prog, a.argv) };
    let e = Errno::last();
    for part in [a.cannot, e.desc().as_bytes(), b"\n"] {
        // SAFETY: write(2) reads `part.len()` bytes from a live slice; async-signal-safe.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: _exit ends the child at once, running none of our atexit handlers or buffers.
    unsafe { libc::_exit(if e == Errno::ENOENT { 127 } else { 126 }) }
}
