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
//! 3. start the command ([`crate::spawn`]): SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGCHLD
//!    blocked first, then `clone(CLONE_VM|CLONE_VFORK|CLONE_SYSVSEM)` + `execvp`, the child
//!    tied to us by `PR_SET_PDEATHSIG` = SIGKILL: if `run` dies, the command dies with it;
//! 4. `sigwait` until the command has ended, passing the other signals on to it;
//! 5. give the permit back (`semop(+1, SEM_UNDO)`, which also cancels the kernel's undo
//!    entry) and exit with the command's status, 128+N if signal N killed it.
//!
//! # Pitfalls
//!
//! - A permit given back when `run` dies, while its command still runs: the command shares
//!   `run`'s undo list (below).
//! - A `--limit` that differs from an existing name's K, silently kept: refused (step 1).
//! - A POSIX permit lost with its holder: nothing can give it back (the last section).
//! - Starting the command without `fork`, and passing signals on: [`crate::spawn`], its
//!   invariants.
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
//!
//! # Exit status
//!
//! The command's: `run` passes it on, 128+N for a command killed by signal N (what a shell
//! would say), 126 or 127 for one that could not be run. A stop signal that reaches `run`
//! while the command runs is the command's to act on (step 4). Before the command has
//! started, `run` holds nothing worth a handler, and a stop signal has its default action:
//! `run` dies of it, which a shell also reports as 128+N.

use std::process::ExitCode;

use common::{Error, Result};

use crate::cli::RunArgs;
use crate::creation::Creation;
use crate::sem::{Flavor, Sem, timed_out};
use crate::spawn;

/// `sem-demo run [--name NAME] [--limit K] [--timeout S] [--posix] -- CMD ARGS...`
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let flavor = if args.posix {
        Flavor::Posix
    } else {
        Flavor::Sysv
    };
    let argv = spawn::argv(&args.command)?;
    // 1. Open the semaphore, or create it with K permits.
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

    // 3. Start the command. It shares our undo list from here on: the kernel gives the
    //    permit back only once both of us have ended, unless we give it back first (step 5).
    let command = spawn::start(&argv)?;
    // 4. Wait for it.
    match command.wait() {
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
