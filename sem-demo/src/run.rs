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
//!    (`clone(CLONE_VM|CLONE_VFORK)` + `execvp`, as `posix_spawn` does; our original mask
//!    restored in the child), with `PR_SET_PDEATHSIG`
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

use std::ffi::{CString, OsString, c_void};
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::ptr::NonNull;

use common::{Error, Result, trace};
use nix::errno::Errno;
use nix::sched::{CloneFlags, clone};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, mprotect, munmap};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, SysconfVar, getpid, sysconf};

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

    // 2. Take a permit (SEM_UNDO: the kernel returns it if we die holding it). The guard
    //    gives it back if anything below fails before the command has run.
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
    let blocked = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught), Some(&mut old))
        .map_err(|e| Error::sys("sigprocmask", "SIG_BLOCK", e));
    let outcome = blocked.and_then(|()| supervise(&args.command, &caught, old, ignore_chld));
    // 5. Give the permit back, whatever happened to the command. If that fails (someone
    //    removed the semaphore meanwhile), say so, but the status is still the command's:
    //    a script must not take a finished build for a failed one.
    if let Err(e) = permit.release() {
        eprintln!("sem-demo: warning: {e}");
    }
    Ok(ExitCode::from(outcome?))
}

/// Steps 3 and 4: start the command and wait for it, passing signals on. Returns the exit
/// status to pass on: the command's, 128+N if signal N killed it, or 127/126 (as a shell
/// says) if it could not be run.
///
/// The child is started the way glibc's `posix_spawn` starts one: `clone(CLONE_VM |
/// CLONE_VFORK)` on a stack of its own. The kernel copies none of our page tables, and
/// neither of us takes a copy-on-write fault afterwards; we sleep until the child has
/// exec'd. A `fork` costs this VM about 30 page faults more per invocation, a fifth of what
/// `flock FILE true` costs in all, and a script calling `run` in a loop pays that every time.
/// `posix_spawn` itself cannot set `PR_SET_PDEATHSIG`, and std's `Command` waits on a pipe
/// for the exec: one more sleep and wake-up. As in a shell, the child reports its own failed
/// exec and exits 127 or 126.
///
/// Pitfall: the child runs in *our* memory, on the stack we give it, and `execvp` takes from
/// that stack what it needs: for a file without `#!` glibc retries with `/bin/sh` and builds
/// the new argument list there, one pointer per argument. A fixed 256 KiB stack, taken from
/// our heap, let fifty thousand arguments overflow into the heap (`double free or
/// corruption`, and the command never ran). So the stack is sized from the argument count,
/// as glibc sizes its own child's, and a guard page below it turns an overflow nobody
/// foresaw into the child's SIGSEGV ([`ChildStack`]).
fn supervise(
    argv: &[OsString],
    caught: &SigSet,
    old_mask: SigSet,
    ignore_chld: bool,
) -> Result<u8> {
    // Everything the child needs is prepared here: it shares our memory until it execs, so
    // it makes only async-signal-safe calls and allocates nothing.
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
    let mut stack = ChildStack::for_execvp(args.len())?;
    // SAFETY: the child runs `exec_child` on `stack`, which is deep enough for it (see
    // `ChildStack`) and outlives it: CLONE_VFORK suspends us until the child has exec'd or
    // exited, and only then can `stack` be dropped. `child_args` and everything it points to
    // live in this frame until then, and the child only reads them. `exec_child` makes only
    // async-signal-safe calls that neither allocate nor take a lock (execvp included: see
    // there), so it cannot find the heap or a lock in a state our thread left mid-way; and
    // `run` has no other thread that could change what the child reads. The child's signal
    // handlers are ours, in our memory: `exec_child` takes every one down (std's SIGSEGV and
    // SIGBUS handlers; `run` installs none) before it unblocks anything.
    let child = unsafe {
        clone(
            Box::new(|| exec_child(&child_args)),
            stack.usable(),
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(|e| Error::sys("clone", "CLONE_VM|CLONE_VFORK", e))?;
    drop(stack);
    trace!(
        "clone(CLONE_VM|CLONE_VFORK) -> pid {child}; the child: PR_SET_PDEATHSIG=SIGKILL, \
         execvp({})",
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

/// What [`exec_child`] needs, prepared by the parent before `clone`.
struct ChildArgs<'a> {
    prog: *const libc::c_char,
    argv: *const *const libc::c_char,
    mask: SigSet,
    /// SIGCHLD was ignored when we started: ignore it again for the command.
    ignore_chld: bool,
    parent: Pid,
    cannot: &'a [u8],
}

/// The child's side of [`supervise`], from `clone` to `execvp`, on its own stack and in our
/// memory: async-signal-safe calls only, no allocation; it never returns.
fn exec_child(a: &ChildArgs<'_>) -> ! {
    // First, every signal with a handler gets the default action back, as posix_spawn's
    // child does: a handler would run here on our memory, believing it was our thread. Today
    // that is std's SIGSEGV and SIGBUS (they report a stack overflow); asking about every
    // signal keeps it true whatever `run` comes to install. Then
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: the command gets
    // the default back, as std's Command gives it; SIGCHLD is ignored again if our caller
    // ignored it (we needed it back for ourselves). Then the mask we started with (ours
    // blocks SIGINT, SIGTERM...), or it would never see them. If `run` dies, the command dies
    // with it (it must not go on without its permit); and if `run` died before the prctl, we
    // were re-parented already and the death signal will never come: die now rather than run
    // unguarded.
    // SAFETY: sigaction, signal, sigprocmask, prctl, getppid, kill and getpid take plain
    // values or pointers to our own locals or to the mask prepared before clone, and are
    // async-signal-safe; a zeroed sigaction is a valid out-parameter; SIG_DFL and SIG_IGN
    // install no handler.
    unsafe {
        for sig in 1..=libc::SIGRTMAX() {
            let mut old: libc::sigaction = std::mem::zeroed();
            // glibc refuses its own internal signals (EINVAL): they have no handler of ours.
            if libc::sigaction(sig, std::ptr::null(), &raw mut old) == 0
                && old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
            {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
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
    // libc, not nix: nix's execvp builds its pointer array in a Vec, i.e. allocates, and an
    // allocation here would use our heap, whose lock our suspended thread may hold. glibc's
    // execvp (2.24 and later) allocates nothing: it builds each PATH candidate, and for a
    // script without `#!` the `/bin/sh` argument list, on the stack (see `ChildStack`).
    // SAFETY: `prog` is a NUL-terminated string and `argv` a null-terminated array of
    // pointers to NUL-terminated strings, all in the parent's frame, which stays as it is
    // until execvp replaces our memory with the command's.
    unsafe { libc::execvp(a.prog, a.argv) };
    let e = Errno::last();
    for part in [a.cannot, e.desc().as_bytes(), b"\n"] {
        // SAFETY: write(2) reads `part.len()` bytes from a live slice; async-signal-safe.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
    // SAFETY: _exit ends the child at once, running none of our atexit handlers and flushing
    // none of our buffers (they are the parent's).
    unsafe { libc::_exit(if e == Errno::ENOENT { 127 } else { 126 }) }
}

/// The stack [`exec_child`] runs on: an anonymous mapping with a guard page below it, sized
/// the way glibc's `posix_spawn` sizes its own child's stack, for the same `execvp`.
///
/// glibc's `execvp` (2.24 and later; musl's is smaller) puts two things on the stack: one
/// PATH candidate, at most `PATH_MAX + NAME_MAX + 2` bytes (it refuses longer names and
/// truncates PATH's length to `PATH_MAX` for the buffer), and, when the file has no `#!`,
/// the `/bin/sh` argument list: `argc + 2` pointers. Everything else is a few frames, for
/// which glibc leaves 32 KiB; we leave 64. Only the pages the child touches are ever
/// faulted in, usually two or three. The guard page turns a small overflow we did not
/// foresee into the child's SIGSEGV (run reports 139) instead of a write into whatever lies
/// below; it cannot catch one frame larger than a page that jumps over it, such as the
/// argument list, which is why the size is computed from `argc` and not guessed. This
/// relies on what glibc's `execvp` puts on the stack, as glibc's own `posix_spawn` does.
struct ChildStack {
    map: NonNull<c_void>,
    len: usize,
    guard: usize,
}

impl ChildStack {
    /// Frames of `exec_child`, `execvp`, `execve` and the libc calls before them.
    const SLACK: usize = 64 * 1024;

    fn for_execvp(argc: usize) -> Result<Self> {
        let page = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(4096);
        let need = (argc + 3) * size_of::<*const libc::c_char>()
            + libc::PATH_MAX as usize
            + 255 // NAME_MAX
            + 2
            + Self::SLACK;
        let len = need.next_multiple_of(page) + page;
        let nonzero = NonZeroUsize::new(len).expect("a stack of at least one page");
        // SAFETY: a fresh private anonymous mapping at an address the kernel picks aliases
        // nothing of ours.
        let map = unsafe {
            mmap_anonymous(
                None,
                nonzero,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK | MapFlags::MAP_NORESERVE,
            )
        }
        .map_err(|e| Error::sys("mmap", format!("{len}-byte stack for the command"), e))?;
        let stack = Self {
            map,
            len,
            guard: page,
        };
        // SAFETY: the first page of the mapping we just made; nothing refers to it.
        unsafe { mprotect(map, page, ProtFlags::PROT_NONE) }
            .map_err(|e| Error::sys("mprotect", "the command's stack guard page", e))?;
        Ok(stack)
    }

    /// The writable part, above the guard page; the stack grows down from its end.
    fn usable(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes long, readable and writable past its first
        // `guard` bytes, and ours alone until `drop` unmaps it; `&mut self` makes the slice
        // the only reference to it.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_ptr().cast::<u8>().add(self.guard),
                self.len - self.guard,
            )
        }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: `map` and `len` describe our mapping, which nothing uses any more: no slice
        // from `usable` outlives its borrow of `self`, and the child has exec'd or exited.
        let _ = unsafe { munmap(self.map, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stack holds what glibc's execvp puts there for any argument count (see
    /// `ChildStack`), with the slack on top, and the page below it is a guard.
    #[test]
    fn the_child_stack_fits_execvp_and_has_a_guard_page_below() {
        let maps = |lo: usize| {
            std::fs::read_to_string("/proc/self/maps")
                .expect("/proc/self/maps")
                .lines()
                .find_map(|l| {
                    let (range, rest) = l.split_once(' ')?;
                    let (a, b) = range.split_once('-')?;
                    let (a, b) = (
                        usize::from_str_radix(a, 16).ok()?,
                        usize::from_str_radix(b, 16).ok()?,
                    );
                    (a <= lo && lo < b).then(|| rest[..4].to_owned())
                })
        };
        for argc in [1, 1000, 50_000, 500_000] {
            let mut stack = ChildStack::for_execvp(argc).expect("mmap");
            let execvp_needs =
                (argc + 2) * size_of::<*const libc::c_char>() + libc::PATH_MAX as usize + 255 + 2;
            let usable = stack.usable();
            assert!(
                usable.len() >= execvp_needs + ChildStack::SLACK,
                "argc {argc}"
            );
            let base = usable.as_ptr() as usize;
            assert_eq!(maps(base).as_deref(), Some("rw-p"), "argc {argc}");
            assert_eq!(
                maps(base - 1).as_deref(),
                Some("---p"),
                "argc {argc}: no guard page"
            );
        }
    }
}
