//! Named objects outlive the process that made them, so somebody has to remove them.
//!
//! A FIFO, a socket file, a `/dev/shm` segment, a message queue or a named semaphore stays in
//! the system after its creator exits, until someone unlinks it. This module makes that
//! someone the creator, whatever way it leaves:
//!
//! - [`Unlink`] is a guard: create the object, then at once wrap its name in a guard, and the
//!   object is removed when the guard is dropped, on the normal return from `main` and on an
//!   early `?` return alike.
//! - [`Shutdown`] catches SIGINT and SIGTERM (and any others a program names, such as SIGHUP)
//!   so that they *end the main loop* instead of the process: the loop sees
//!   [`Shutdown::requested`] (or wakes on [`Shutdown::wake_fd`] in its `poll`), returns, and the
//!   guards run. A second SIGINT/SIGTERM while shutting down exits at once (status 130 or 143),
//!   because a user who presses Ctrl-C twice means it; repeats of a tied child's parent-death
//!   signal and a hangup the kernel sends do not count (see `register_request`). The signals
//!   are blocked while the handlers go in, so one that arrives during start-up is held and
//!   acted on, never lost.
//! - [`Shutdown::err_if_requested`] is how a role asks "was this run interrupted?": it returns
//!   [`Error::Interrupted`], which unwinds the role through its guards and becomes exit
//!   status 128 + N (see [`crate::error`], "Exit status").
//! - [`spawn_helper`] starts a thread that never takes those signals, so that they all reach
//!   the main thread, which decides.
//!
//! # Limitations
//!
//! Nothing runs on `kill -9`, on `std::process::exit`, or after a second signal. Each demo
//! therefore recognises its own leftovers on the next start (a FIFO whose pid-file lock is
//! free, a socket nobody accepts on), and `make clean-ipc` sweeps them all.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use crate::error::{Context, Error, Result};

/// A named IPC object that can be removed by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// A filesystem path: a FIFO, a socket file, a pid file.
    Path(PathBuf),
    /// A POSIX shared memory object (`shm_unlink`).
    Shm(String),
    /// A POSIX message queue (`mq_unlink`).
    Mqueue(String),
    /// A POSIX named semaphore (`sem_unlink`).
    Semaphore(String),
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Path(p) => write!(f, "{}", p.display()),
            Object::Shm(n) | Object::Mqueue(n) | Object::Semaphore(n) => f.write_str(n),
        }
    }
}

impl Object {
    /// The call that removes this kind of object.
    pub fn unlink_call(&self) -> &'static str {
        match self {
            Object::Path(_) => "unlink",
            Object::Shm(_) => "shm_unlink",
            Object::Mqueue(_) => "mq_unlink",
            Object::Semaphore(_) => "sem_unlink",
        }
    }

    /// Remove the object now. One that is already gone counts as removed.
    pub fn unlink(&self) -> Result<()> {
        let res = match self {
            Object::Path(p) => nix::unistd::unlink(p),
            Object::Shm(n) => nix::sys::mman::shm_unlink(n.as_str()),
            Object::Mqueue(n) => nix::mqueue::mq_unlink(n.as_str()),
            Object::Semaphore(n) => sem_unlink(n),
        };
        match res {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::sys(self.unlink_call(), self, e)),
        }
    }
}

/// `sem_unlink(3)`: nix 0.32 does not wrap POSIX named semaphores, so this calls libc.
fn sem_unlink(name: &str) -> nix::Result<()> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; sem_unlink only
    // reads it.
    let rc = unsafe { libc::sem_unlink(c.as_ptr()) };
    Errno::result(rc).map(drop)
}

/// Removes its object when dropped. Create the object first, then the guard, so the guard
/// never removes something that another process made.
#[must_use = "the object is removed as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Unlink(Option<Object>);

impl Unlink {
    /// Guard any named object.
    pub fn new(object: Object) -> Self {
        Unlink(Some(object))
    }

    /// Guard a filesystem path (FIFO, socket file, pid file).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self::new(Object::Path(path.into()))
    }

    /// The guarded object.
    pub fn object(&self) -> &Object {
        self.0
            .as_ref()
            .expect("an Unlink guard holds its object until dropped or kept")
    }

    /// Disarm the guard: the object stays, and the caller takes over its removal.
    pub fn keep(mut self) -> Object {
        self.0
            .take()
            .expect("an Unlink guard holds its object until dropped or kept")
    }
}

impl Drop for Unlink {
    fn drop(&mut self) {
        let Some(object) = self.0.take() else { return };
        match object.unlink() {
            Ok(()) => crate::trace!("{}({object})", object.unlink_call()),
            // Drop cannot return an error; say it, so the leftover is not a mystery.
            Err(e) => eprintln!("warning: {e}"),
        }
    }
}

/// SIGINT and SIGTERM, turned from "die now" into "finish up and return".
///
/// Install it once, early in `main` and before any thread starts (signal dispositions are
/// process-wide), and keep it for the life of the process. Handlers only set flags and write
/// one byte to a self-pipe, both async-signal-safe; all real work happens in the main loop.
///
/// SA_RESTART is set on these handlers, so a blocking `read` is *not* interrupted by the signal:
/// a loop that blocks must `poll` [`Shutdown::wake_fd`] together with its own descriptors.
pub struct Shutdown {
    requested: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    wake_read: OwnedFd,
}

impl Shutdown {
    /// Register the handlers for SIGINT and SIGTERM.
    pub fn install() -> Result<Self> {
        Self::install_with(&[])
    }

    /// Register the handlers for SIGINT, SIGTERM and `extra`, which then request a shutdown
    /// exactly as SIGINT and SIGTERM do (a second one exits with 128 + its number). A server
    /// passes `&[Signal::SIGHUP]` so that closing its terminal stops it cleanly.
    ///
    /// The signals are blocked while their handlers go in, and unblocked (to the caller's
    /// previous mask) once every piece is in place: each signal gets two actions registered
    /// one after the other, and one arriving in between would be recorded but wake no one
    /// (no self-pipe yet), so a loop asleep in `poll` would never see it. Blocked, it stays
    /// pending and is delivered to the complete handler the moment the mask is restored.
    pub fn install_with(extra: &[Signal]) -> Result<Self> {
        Self::install_inner(extra, &mut |_, _| {})
    }

    /// [`Shutdown::install_with`], calling `between(signal, step)` after each action is
    /// registered, with the signals still blocked. Only for tests, which raise a signal from
    /// `between` to put it in the window between two steps for certain.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn install_observed(
        extra: &[Signal],
        between: &mut dyn FnMut(Signal, &str),
    ) -> Result<Self> {
        Self::install_inner(extra, between)
    }

    fn install_inner(extra: &[Signal], between: &mut dyn FnMut(Signal, &str)) -> Result<Self> {
        let mut signals = vec![Signal::SIGINT, Signal::SIGTERM];
        for &sig in extra {
            if !signals.contains(&sig) {
                signals.push(sig);
            }
        }
        let requested = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        // Non-blocking on both ends: the handler must never block on a full pipe, and a
        // reader draining it must not block either. O_CLOEXEC: children must not inherit it.
        let (wake_read, wake_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).ctx("pipe2", "shutdown")?;
        let parent = nix::unistd::getppid().as_raw();
        // Tied to a supervisor that is our parent (see `die_with_supervisor`): stop signals
        // from it never count as a second one. -1: no sender has that pid.
        let supervisor = std::env::var(SUPERVISOR_ENV)
            .ok()
            .and_then(|v| v.parse::<libc::pid_t>().ok())
            .filter(|&p| p == parent)
            .unwrap_or(-1);
        let _blocked = BlockedWhileInstalling::block(&signals)?;
        for &sig in &signals {
            let raw = sig as libc::c_int;
            let mut register = || -> std::io::Result<()> {
                // First the action that records the request (and exits on a second one),
                // then the self-pipe that wakes the main loop, which then finds it recorded.
                register_request(raw, supervisor, Arc::clone(&requested), Arc::clone(&signal))?;
                between(sig, "request");
                signal_hook::low_level::pipe::register_raw(raw, wake_write.try_clone()?)?;
                between(sig, "self-pipe");
                Ok(())
            };
            register().ctx("sigaction", sig.as_str())?;
        }
        let names: Vec<&str> = signals.iter().map(|s| s.as_str()).collect();
        crate::trace!("sigaction({}) -> flag + self-pipe", names.join(", "));
        // The process's first Shutdown is the one `say!` watches while it waits for room on a
        // stalled stdout (see `crate::out`). A descriptor of its own: the pipe stays readable
        // through it whatever becomes of this Shutdown.
        if INSTALLED.get().is_none() {
            let wake = wake_read.try_clone().ctx("dup", "shutdown pipe")?;
            let _ = INSTALLED.set(Installed {
                wake,
                signal: Arc::clone(&signal),
            });
        }
        Ok(Shutdown {
            requested,
            signal,
            wake_read,
        })
    }

    /// True once SIGINT, SIGTERM or one of the extra signals has arrived.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The signal that asked for the shutdown, if one did.
    pub fn signal(&self) -> Option<Signal> {
        recorded(&self.signal)
    }

    /// `Err(Error::Interrupted(signal))` once a stop signal has arrived, else `Ok(())`: the
    /// one way a role asks "was this run interrupted?" between its steps and after every wait
    /// that [`Shutdown::wake_fd`] ended. The error unwinds the role through its guards, and
    /// [`crate::error::finish`] (or [`crate::out::verdict`]) turns it into exit status
    /// 128 + the signal's number (see [`crate::error`], "Exit status").
    ///
    /// ```no_run
    /// # fn step() -> common::Result<()> { Ok(()) }
    /// let shutdown = common::cleanup::Shutdown::install()?;
    /// for _ in 0..3 {
    ///     step()?;
    ///     shutdown.err_if_requested()?;
    /// }
    /// # Ok::<(), common::Error>(())
    /// ```
    pub fn err_if_requested(&self) -> Result<()> {
        match self.signal() {
            Some(sig) => Err(Error::Interrupted(sig)),
            None => Ok(()),
        }
    }

    /// A descriptor that becomes readable when a shutdown signal arrives, and stays readable:
    /// put it in your `poll` set beside the descriptors you wait on.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_read.as_fd()
    }
}

/// Start a helper thread that never takes a signal sent to the process: every thread a
/// process with a [`Shutdown`] starts should be one.
///
/// The kernel hands a signal sent to a process (Ctrl-C, `kill`) to any one of its threads
/// that does not block it. [`Shutdown`]'s first signal only records a request, which the main
/// thread acts on; the second exits at once. With both pending together (a double Ctrl-C
/// while the process could not run), two threads can take one each, and the main thread can
/// begin the first one's cleanup before the other thread's handler exits: half a cleanup, a
/// different one each time. Blocked in every helper, the signals all go to the main thread,
/// which runs both handlers before it runs another line of its own.
///
/// The mask is inherited, so it is set around the spawn, in the caller (a thread that
/// blocked its signals as its first act would leave a window). Only the signals that come
/// from outside are blocked: a fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) is
/// the faulting thread's own.
pub fn spawn_helper<F, T>(f: F) -> std::thread::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut outside = SigSet::all();
    for fault in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGFPE,
        Signal::SIGILL,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        outside.remove(fault);
    }
    let mut old = SigSet::empty();
    // Cannot fail: SIG_BLOCK is a valid `how` and the sets are valid.
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&outside), Some(&mut old)).is_ok();
    let handle = std::thread::spawn(f);
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    handle
}

/// The signal number an action recorded (0: none yet), as a [`Signal`].
fn recorded(signal: &AtomicUsize) -> Option<Signal> {
    match signal.load(Ordering::SeqCst) {
        0 => None,
        raw => i32::try_from(raw)
            .ok()
            .and_then(|s| Signal::try_from(s).ok()),
    }
}

/// The first [`Shutdown`] installed in this process, as `say!` watches it.
struct Installed {
    wake: OwnedFd,
    signal: Arc<AtomicUsize>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// The self-pipe of this process's [`Shutdown`], if one is installed: readable once a stop
/// signal has arrived.
pub(crate) fn installed_wake_fd() -> Option<BorrowedFd<'static>> {
    INSTALLED.get().map(|i| i.wake.as_fd())
}

/// The stop signal this process's [`Shutdown`] has recorded, if any.
pub(crate) fn installed_signal() -> Option<Signal> {
    INSTALLED.get().and_then(|i| recorded(&i.signal))
}

/// The environment variable through which [`crate::child::die_with_supervisor`] tells a child
/// the pid of the supervisor it is tied to.
pub const SUPERVISOR_ENV: &str = "IPC_DEMO_SUPERVISOR";

/// The action that records a stop request, and makes a *second* one exit at once with 128 +
/// its number, leaving cleanup undone: the way out of a shutdown that hangs.
///
/// "First" and "second" are decided by one atomic swap of the flag. Two separate steps (test
/// the flag, then set it) would let two signals that arrive together, handled at the same
/// moment on two threads, both find the flag unset, and the second request would be lost.
///
/// Signals from the supervisor a child is tied to are the exception: the parent-death signal
/// (`PR_SET_PDEATHSIG`, see [`crate::child::die_with_supervisor`]) comes each time the child
/// is handed to a new parent, and a dying supervisor with several threads hands its children
/// to each of its threads in turn before they reach init (kernel/exit.c,
/// `forget_original_parent`), so one death can bring SIGTERM two, three or more times, each
/// from the supervisor's pid; its own SIGTERM before it died may come on top. All of that is
/// one request to stop. (The supervisor escalates with SIGKILL, never with a second SIGTERM.)
///
/// A hangup the kernel itself sends (SIGHUP with `si_code` `SI_KERNEL`) is never the second
/// signal either. The kernel sends it when the controlling terminal goes away (to the session
/// leader, and with SIGCONT to the foreground process group), and when a process group with a
/// stopped member is orphaned (POSIX: SIGHUP then SIGCONT to every member), which is what a
/// worker stopped with SIGSTOP in its supervisor's group gets when that supervisor dies, on
/// top of its parent-death SIGTERM. Both are news that the process's surroundings are gone,
/// which comes with other stop signals, not a person asking twice; counted as a second
/// signal, they made such a process exit without its cleanup. No other process can send a
/// signal as the kernel (`SI_KERNEL` is refused to `rt_sigqueueinfo`), and a SIGHUP from
/// `kill` still counts.
fn register_request(
    raw: libc::c_int,
    supervisor: libc::pid_t,
    requested: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let number = usize::try_from(raw).unwrap_or(0);
    let action = move |info: &libc::siginfo_t| {
        // The first signal names the request; later ones leave it alone.
        let _ = signal.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
        // SAFETY: si_pid reads the sender field of the siginfo the kernel filled in for this
        // delivery; for signals without a sender (a terminal's) it holds 0.
        let from_supervisor = unsafe { info.si_pid() } == supervisor;
        let kernel_hangup = raw == libc::SIGHUP && info.si_code == libc::SI_KERNEL;
        if requested.swap(true, Ordering::SeqCst) && !from_supervisor && !kernel_hangup {
            signal_hook::low_level::exit(128 + raw);
        }
    };
    // SAFETY: the action runs in a signal handler, so it may only do async-signal-safe work:
    // two atomic operations, reads of the siginfo and, for a real second signal, _exit(2)
    // (signal_hook's `exit`). It allocates nothing and takes no lock.
    unsafe { signal_hook_registry::register_sigaction(raw, action) }.map(|_| ())
}

/// Blocks signals in the calling thread until dropped, then restores the mask it found, on
/// every return path of [`Shutdown::install_with`] alike.
struct BlockedWhileInstalling(SigSet);

impl BlockedWhileInstalling {
    fn block(signals: &[Signal]) -> Result<Self> {
        let set: SigSet = signals.iter().copied().collect();
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .ctx("pthread_sigmask", "SIG_BLOCK")?;
        Ok(BlockedWhileInstalling(old))
    }
}

impl Drop for BlockedWhileInstalling {
    fn drop(&mut self) {
        // Restoring the caller's own mask cannot fail (EINVAL is only for a bad `how`); a
        // signal that came in meanwhile is delivered here, to the finished handler.
        if let Err(e) = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None) {
            eprintln!("warning: pthread_sigmask(SIG_SETMASK): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask() -> SigSet {
        let mut now = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).unwrap();
        now
    }

    #[test]
    fn a_helper_blocks_the_signals_from_outside_and_its_caller_keeps_its_mask() {
        let before = mask();
        let helper = spawn_helper(|| {
            let m = mask();
            (
                [
                    Signal::SIGINT,
                    Signal::SIGTERM,
                    Signal::SIGHUP,
                    Signal::SIGUSR1,
                ]
                .iter()
                .all(|&s| m.contains(s)),
                [Signal::SIGSEGV, Signal::SIGBUS, Signal::SIGFPE]
                    .iter()
                    .any(|&s| m.contains(s)),
            )
        });
        let (outside_blocked, faults_blocked) = helper.join().unwrap();
        assert!(outside_blocked, "a helper takes no stop signal");
        assert!(!faults_blocked, "a helper's own faults stay its own");
        let after = mask();
        assert!(
            [Signal::SIGINT, Signal::SIGTERM]
                .iter()
                .all(|&s| before.contains(s) == after.contains(s)),
            "the caller's mask is restored"
        );
    }
}
