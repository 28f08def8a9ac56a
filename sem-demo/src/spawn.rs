//! Starting `run`'s command and waiting for it: `clone(CLONE_VM | CLONE_VFORK |
//! CLONE_SYSVSEM)` + `execvp`, the way glibc's `posix_spawn` starts a child, plus the two
//! things `run` needs that `posix_spawn` cannot do; then `sigwait`, passing signals on.
//!
//! The calls, in order ([`start`], then [`Child::wait`]):
//!
//! 1. `sigaction(SIGCHLD, SIG_DFL)`: a parent that ignores SIGCHLD (`SIG_IGN` is inherited
//!    across exec) would have the kernel reap the command silently, with no SIGCHLD for
//!    `sigwait` to see and no status for `waitpid` to return;
//! 2. `sigprocmask(SIG_BLOCK, {INT, TERM, HUP, QUIT, CHLD})`: from here on these signals are
//!    read, not obeyed, so `run` always lives to give its permit back;
//! 3. `rt_sigprocmask(everything)` → `clone` → (the child: handlers to default,
//!    `prctl(PR_SET_PDEATHSIG, SIGKILL)`, the mask we were given, `execvp`) → our mask back;
//! 4. `sigwait` in a loop: SIGCHLD means the command may have ended (`waitpid(WNOHANG)`);
//!    the others are passed on to the command with `kill`, and we keep waiting for it.
//!
//! # Why not `posix_spawn` (or std's `Command`)
//!
//! - `CLONE_SYSVSEM`: the command must share `run`'s list of `SEM_UNDO` adjustments, so that
//!   the permit `run` took is given back only when the last of the two ends (see
//!   [`crate::run`]). `posix_spawn` has no attribute for it; `fork`, under std's `Command`
//!   too, gives the child an empty list of its own.
//! - `PR_SET_PDEATHSIG`: if `run` dies, its command must die too. `posix_spawn` has no
//!   attribute for that either; `Command::pre_exec` could set it, but only after a `fork`.
//!
//! A `fork` would also copy our page tables and take copy-on-write faults after, which a
//! script calling `run` in a loop pays every time (BENCHMARKS.md, sem-demo, "How the gap was
//! closed"); std's `Command` then waits on a pipe for the exec: one more sleep and wake-up.
//!
//! # Invariants
//!
//! 1. **Every signal is blocked from before the `clone` until the child has taken down every
//!    handler of ours**, glibc's two internal signals included (`sigfillset` and
//!    `sigprocmask` leave those out, so the mask is set with the raw system call), as
//!    `posix_spawn` does. The child runs on our memory, and a handler of ours that ran there
//!    would believe it was our thread. Test:
//!    `a_signal_that_reaches_the_child_first_never_runs_our_handler`.
//! 2. **Until it execs, the child calls only async-signal-safe functions, allocates nothing
//!    and only reads what the parent prepared**: our thread is suspended (`CLONE_VFORK`),
//!    possibly holding the heap's lock, and everything the child could change is ours. (No
//!    test can show an allocation that happened not to deadlock: this one is kept by reading
//!    [`exec_child`], which calls libc directly for that reason.)
//! 3. **Its stack is sized for `execvp`, above a guard page** ([`ChildStack`]). Tests:
//!    `the_child_stack_fits_execvp_and_has_a_guard_page_below`; `tests/run.rs`,
//!    `a_script_without_shebang_and_many_arguments_runs` (50 000 arguments, no `#!`).
//! 4. **The child shares our `SEM_UNDO` list (`CLONE_SYSVSEM`), and keeps it across
//!    `execve`**: the kernel applies the list's adjustments when the last process sharing it
//!    exits. Test: `tests/run.rs`, `a_sigkilled_run_keeps_the_permit_until_its_command_ends`.
//! 5. **If we die, the child dies** (`PR_SET_PDEATHSIG` = SIGKILL), and if we died before
//!    it could ask for that (its parent is no longer us), it kills itself rather than run.
//!    Tests: `tests/run.rs`, `a_sigkilled_sysv_holder_gives_its_permit_back_and_its_command_dies`;
//!    `a_child_whose_parent_died_before_its_prctl_never_runs`.
//! 6. **The command gets what our caller gave us**: the signal mask we were started with,
//!    SIGPIPE's default action (Rust ignores it, and an ignored signal stays ignored across
//!    exec), SIGCHLD ignored if it was (`run` needs it back for itself). Tests:
//!    `tests/run.rs`, `exit_status_is_passed_through` and
//!    `a_parent_that_ignores_sigchld_still_gets_the_status`.
//! 7. **A command that cannot be run** is reported by the child itself, as a shell does:
//!    `sem-demo: cannot run 'CMD': CAUSE`, exit 127 (not found) or 126. Test: `tests/run.rs`,
//!    `exit_status_is_passed_through`.
//! 8. **Every stop signal that reaches `run` while the command runs is passed on to it**, and
//!    `run` ends only when the command has: the status it returns is the command's (128+N if
//!    signal N killed it). Tests: `tests/run.rs`,
//!    `a_sigterm_to_run_reaches_the_command_and_the_permit_comes_back`,
//!    `exit_status_is_passed_through`.

use std::ffi::{CString, OsString, c_void};
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::ptr::NonNull;

use common::{Error, Result, trace};
use nix::errno::Errno;
use nix::sched::{CloneFlags, clone};
use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous, mprotect, munmap};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, SysconfVar, getpid, sysconf};

/// Signals `run` catches while the command runs, and passes on to it (invariant 8).
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The command line as `execvp` takes it. A NUL byte cannot come from a real argv, but it is
/// refused as a usage error, before anything is waited for.
pub fn argv(words: &[OsString]) -> Result<Vec<CString>> {
    words
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Usage("run: an argument contains a NUL byte".into()))
}

/// The command, running as our child, and the signals we read instead of obeying.
pub struct Child {
    pid: Pid,
    caught: SigSet,
}

/// Start `argv` (the program looked up in PATH, as `execvp` does): steps 1 to 3 of the
/// module docs. Signals stay blocked after it returns, for [`Child::wait`].
pub fn start(argv: &[CString]) -> Result<Child> {
    // SAFETY: setting a default disposition installs no handler.
    let chld = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }
        .map_err(|e| Error::sys("sigaction", "SIGCHLD", e))?;
    let mut caught = SigSet::empty();
    for sig in FORWARDED {
        caught.add(sig);
    }
    caught.add(Signal::SIGCHLD);
    let mut given = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&caught), Some(&mut given))
        .map_err(|e| Error::sys("sigprocmask", "SIG_BLOCK", e))?;
    // The command gets back what we were given, as it would have without us in between.
    let ignore_chld = matches!(chld, SigHandler::SigIgn);
    let pid = spawn(argv, &Setup::new(given, ignore_chld))?;
    trace!(
        "clone(CLONE_VM|CLONE_VFORK|CLONE_SYSVSEM) -> pid {pid}; the child: \
         PR_SET_PDEATHSIG=SIGKILL, execvp({})",
        argv[0].to_string_lossy()
    );
    Ok(Child { pid, caught })
}

impl Child {
    /// Step 4: wait for the command, passing signals on (invariant 8). Returns the exit
    /// status to pass on: the command's, 128+N if signal N killed it, or 127/126 (as a shell
    /// says) if it could not be run (its child reports that itself: invariant 7).
    pub fn wait(&self) -> Result<u8> {
        let child = self.pid;
        loop {
            let sig = self
                .caught
                .wait()
                .map_err(|e| Error::sys("sigwait", "", e))?;
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
}

/// What the command gets besides its arguments (invariant 6).
struct Setup {
    /// The signal mask to start it with: the one we were started with.
    mask: SigSet,
    /// SIGCHLD was ignored when we started: ignore it again for the command.
    ignore_chld: bool,
    /// A test's signal, sent to the child as the first thing it does (invariant 1).
    #[cfg(test)]
    raise_first: Option<libc::c_int>,
}

impl Setup {
    /// The command starts with `mask`, and with SIGCHLD ignored if `ignore_chld`.
    fn new(mask: SigSet, ignore_chld: bool) -> Self {
        Setup {
            mask,
            ignore_chld,
            #[cfg(test)]
            raise_first: None,
        }
    }
}

/// Step 3: start `argv` as our child, and return its pid once it has exec'd or failed to
/// (`CLONE_VFORK`: we sleep until then).
fn spawn(argv: &[CString], setup: &Setup) -> Result<Pid> {
    let prog = argv
        .first()
        .ok_or_else(|| Error::Usage("run: no command given".into()))?;
    // Everything the child reads is prepared here (invariant 2).
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let cannot = format!("sem-demo: cannot run '{}': ", prog.to_string_lossy());
    let child_args = ChildArgs {
        prog: prog.as_ptr(),
        argv: ptrs.as_ptr(),
        setup,
        parent: getpid(),
        cannot: cannot.as_bytes(),
    };
    let mut stack = ChildStack::for_execvp(argv.len())?;
    // Invariant 1: from here until the child has reset its handlers.
    let saved =
        set_kernel_mask(&ALL_SIGNALS).map_err(|e| Error::sys("rt_sigprocmask", "all", e))?;
    // SAFETY: the child runs `exec_child` on `stack`, which is deep enough for it (invariant
    // 3) and outlives it: CLONE_VFORK suspends us until the child has exec'd or exited, and
    // only then can `stack` be dropped. `child_args` and everything it points to live in
    // this frame until then, and the child only reads them. `exec_child` makes only
    // async-signal-safe calls that neither allocate nor take a lock (invariant 2), so it
    // cannot find the heap or a lock in a state our thread left mid-way. No handler of ours
    // can run in the child: every signal is blocked until `exec_child` has taken them all
    // down (invariant 1).
    let child = unsafe {
        clone(
            Box::new(|| exec_child(&child_args)),
            stack.usable(),
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK | CloneFlags::CLONE_SYSVSEM,
            Some(libc::SIGCHLD),
        )
    };
    // Our own mask back; the child has exec'd (or exited) by now. (This cannot fail: EFAULT
    // and EINVAL are its only errors, and the mask and its size are valid. Were it to fail
    // after all, we would go on with every signal blocked, which sigwait does not mind.)
    let _ = set_kernel_mask(&saved);
    drop(stack);
    child.map_err(|e| Error::sys("clone", "CLONE_VM|CLONE_VFORK|CLONE_SYSVSEM", e))
}

/// The kernel's signal mask: one bit per signal, signal N at bit N-1 (64 signals, `_NSIG`, on
/// every Linux architecture but MIPS).
type KernelMask = u64;

/// Every signal (the kernel ignores SIGKILL and SIGSTOP in a mask).
const ALL_SIGNALS: KernelMask = !0;

/// Set this thread's signal mask with the system call itself, and return the one before.
/// Not `sigprocmask`: glibc's wrapper, like its `sigfillset`, silently leaves out the two
/// real-time signals it keeps for itself (thread cancellation and set*id across threads), and
/// invariant 1 wants every signal blocked, as glibc's own `posix_spawn` blocks them.
/// Async-signal-safe (one system call), so the child uses it too.
fn set_kernel_mask(mask: &KernelMask) -> nix::Result<KernelMask> {
    let mut old: KernelMask = 0;
    // SAFETY: rt_sigprocmask reads `size_of::<KernelMask>()` bytes from `mask` and writes as
    // many to `old`, both live locals or references for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            std::ptr::from_ref(mask),
            &raw mut old,
            size_of::<KernelMask>(),
        )
    };
    Errno::result(rc).map(|_| old)
}

/// What [`exec_child`] needs, prepared by the parent before `clone`.
struct ChildArgs<'a> {
    prog: *const libc::c_char,
    argv: *const *const libc::c_char,
    setup: &'a Setup,
    parent: Pid,
    cannot: &'a [u8],
}

/// The child's side of [`spawn`], from `clone` to `execvp`, on its own stack and in our
/// memory: async-signal-safe calls only, no allocation; it never returns.
fn exec_child(a: &ChildArgs<'_>) -> ! {
    #[cfg(test)]
    if let Some(sig) = a.setup.raise_first {
        // SAFETY: kill and getpid take plain values and are async-signal-safe.
        unsafe { libc::kill(libc::getpid(), sig) };
    }
    // Invariant 1: every signal with a handler gets the default action back, as
    // posix_spawn's child does, while all are still blocked. Today that is std's SIGSEGV and
    // SIGBUS handlers (they report a stack overflow); asking about every signal keeps it
    // true whatever `run` comes to install. glibc refuses its own two internal signals
    // (EINVAL); their handlers, if glibc has installed them, act only on a signal the
    // process sent itself, which this child never sends, and execve resets them.
    // Invariant 6: then SIGPIPE's default, SIGCHLD ignored again if it was. Invariant 5: if
    // we die, the command dies with us; if we died before the prctl, the child was
    // re-parented already and the death signal will never come: it dies now rather than run
    // unguarded.
    // SAFETY: sigaction, signal, prctl, getppid, kill and getpid take plain values or
    // pointers to our own locals, and are async-signal-safe; a zeroed sigaction is a valid
    // out-parameter; SIG_DFL and SIG_IGN install no handler.
    unsafe {
        for sig in 1..=libc::SIGRTMAX() {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &raw mut old) == 0
                && old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
            {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if a.setup.ignore_chld {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != a.parent.as_raw() {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    // Invariant 6: the mask we were started with (ours blocks SIGINT, SIGTERM... for
    // sigwait), only now that no handler of ours is left. glibc's sigset_t starts with the
    // kernel's mask, signal N at bit N-1.
    // SAFETY: the SigSet is a live glibc sigset_t, larger than a KernelMask and aligned for
    // one (its first member is an array of unsigned long).
    let mask = unsafe { *std::ptr::from_ref(a.setup.mask.as_ref()).cast::<KernelMask>() };
    let _ = set_kernel_mask(&mask);
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
/// Pitfall: the child runs in *our* memory, on the stack we give it, and `execvp` takes from
/// that stack what it needs. A stack too small for it is overrun, silently, into whatever
/// lies below (BENCHMARKS.md, sem-demo, "The clone, second time", has the case).
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
    use std::sync::atomic::{AtomicI32, Ordering};

    use nix::sys::signal::{SigHandler, SigmaskHow, Signal, signal, sigprocmask};
    use nix::sys::wait::{WaitStatus, waitpid};

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

    /// The pid of the process in which [`record`] last ran.
    static HANDLED_IN: AtomicI32 = AtomicI32::new(0);

    extern "C" fn record(_: libc::c_int) {
        // SAFETY: getpid is async-signal-safe; the store is a plain atomic.
        HANDLED_IN.store(unsafe { libc::getpid() }, Ordering::SeqCst);
    }

    /// Invariant 1, with the unlucky instant made certain: a signal we handle reaches the
    /// child at the first instant it runs (the child sends it to itself). It stays blocked
    /// until the child has taken our handler down, so our handler never runs in the child,
    /// on our memory; the signal then has its default action there, and the child dies of
    /// it before it execs.
    #[test]
    fn a_signal_that_reaches_the_child_first_never_runs_our_handler() {
        // SAFETY: `record` is async-signal-safe (getpid, an atomic store). No other test of
        // this binary uses SIGUSR1.
        unsafe { signal(Signal::SIGUSR1, SigHandler::Handler(record)) }.expect("sigaction");
        let mut mask = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, None, Some(&mut mask)).expect("sigprocmask");
        assert!(
            !mask.contains(Signal::SIGUSR1),
            "the test thread lets SIGUSR1 in"
        );
        let mut setup = Setup::new(mask, false);
        setup.raise_first = Some(libc::SIGUSR1);
        let argv = [CString::new("true").expect("no NUL")];
        let child = spawn(&argv, &setup).expect("spawn");
        let status = waitpid(child, None).expect("waitpid");
        assert_eq!(HANDLED_IN.load(Ordering::SeqCst), 0, "our handler ran");
        assert_eq!(
            status,
            WaitStatus::Signaled(child, Signal::SIGUSR1, false),
            "the child took the signal's default action before it could exec"
        );
    }

    /// The pid of a stopped process whose parent is `parent`, from /proc/PID/stat
    /// (`pid (comm) state ppid ...`; comm may hold spaces and parentheses, hence the last `)`).
    fn stopped_child_of(parent: Pid) -> Option<Pid> {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let (state, ppid) = (rest.next()?, rest.next()?.parse::<i32>().ok()?);
            (state == "T" && ppid == parent.as_raw()).then(|| Pid::from_raw(pid))
        })
    }

    /// Invariant 5, its second half, with the unlucky instant made certain: `run` dies while
    /// its child is between the `clone` and the `prctl` that would tie it to `run`. The child
    /// stops itself at its first instant (SIGSTOP, which no mask holds back); the process
    /// that played `run` is killed; this test process, a subreaper, adopts the child and
    /// lets it go on. Finding that its parent is no longer the one that started it, the
    /// child kills itself instead of running the command with nobody to answer for it.
    #[test]
    fn a_child_whose_parent_died_before_its_prctl_never_runs() {
        use nix::unistd::{ForkResult, fork};
        // SAFETY: prctl with plain integers; it changes who adopts our orphaned descendants.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
        let argv = [CString::new("true").expect("no NUL")];
        let mut setup = Setup::new(SigSet::empty(), false);
        setup.raise_first = Some(libc::SIGSTOP);
        // SAFETY: the child only calls `spawn` and `_exit`. `spawn` allocates (the argument
        // array, the message), which glibc keeps usable in a forked child of a threaded
        // process (its fork resets the heap's locks); it takes no other lock.
        let run = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let _ = spawn(&argv, &setup);
                // SAFETY: ends the forked child without running the test harness's code.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let child = loop {
            if let Some(pid) = stopped_child_of(run) {
                break pid;
            }
            assert!(std::time::Instant::now() < give_up, "no stopped child");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        // `run` is asleep in the clone (CLONE_VFORK) until its child execs: killable.
        nix::sys::signal::kill(run, Signal::SIGKILL).expect("kill run");
        assert_eq!(
            waitpid(run, None).expect("waitpid run"),
            WaitStatus::Signaled(run, Signal::SIGKILL, false)
        );
        // Ours now: go on.
        nix::sys::signal::kill(child, Signal::SIGCONT).expect("SIGCONT");
        let status = waitpid(child, None).expect("waitpid child");
        // SAFETY: as above.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
        assert_eq!(
            status,
            WaitStatus::Signaled(child, Signal::SIGKILL, false),
            "the orphaned child ran the command"
        );
    }
}
