//! Stopping a process at one system call of the test's choosing, so that an unlucky instant is
//! certain rather than hoped for: "the supervisor has just taken a task off its queue", "the
//! worker has just sent its result", "the supervisor is about to give up on its workers".
//!
//! ptrace(2): `PTRACE_SEIZE` takes hold of the process, `PTRACE_INTERRUPT` stops it where it
//! is, and `PTRACE_SYSCALL` lets it run until the entry or the exit of its next system call,
//! where `PTRACE_GET_SYSCALL_INFO` says which call it is, with what arguments, and (at the
//! exit) what it returned. The test may then act (kill it, let another process run) while the
//! process is frozen at exactly that point, and let it go on with [`Tracer::detach`].
//!
//! A signal sent to the process meanwhile (the test's SIGTERM, a SIGCHLD) stops it first, for
//! the tracer: it is passed on unchanged. A process traced here can never hang a test: a
//! watchdog kills it if it has not reached the wanted call within [`WAIT`].

use std::sync::mpsc::{self, RecvTimeoutError, Sender};

use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::WAIT;

/// One system call, as the tracee stopped at it.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    /// Its number (`libc::SYS_*`).
    pub nr: i64,
    /// Its six argument registers.
    pub args: [u64; 6],
    /// At its exit, what it returned (a negative errno on failure); None at its entry.
    pub ret: Option<i64>,
}

/// A process held with ptrace; detached (and so let go on) when dropped.
pub struct Tracer {
    pid: Pid,
    /// The call whose entry the tracee last stopped at: its exit stop comes next.
    entered: Option<Call>,
    attached: bool,
    /// Dropping it stops the watchdog.
    _watchdog: Sender<()>,
}

impl Tracer {
    /// Take hold of `pid` and stop it where it is. None, with a SKIPPED note on stderr, if this
    /// machine refuses ptrace (a seccomp filter, YAMA's stricter modes): the caller's test
    /// cannot make its instant certain there, and says so rather than pass or fail.
    pub fn seize(pid: Pid) -> Option<Tracer> {
        if let Err(e) = ptrace::seize(pid, Options::PTRACE_O_TRACESYSGOOD) {
            if matches!(e, nix::errno::Errno::EPERM | nix::errno::Errno::ENOSYS) {
                eprintln!("SKIPPED: ptrace(PTRACE_SEIZE, {pid}) refused here: {e}");
                return None;
            }
            panic!("ptrace(PTRACE_SEIZE, {pid}): {e}");
        }
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if stopped.recv_timeout(WAIT) == Err(RecvTimeoutError::Timeout) {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        });
        let mut tracer = Tracer {
            pid,
            entered: None,
            attached: true,
            _watchdog: stop,
        };
        ptrace::interrupt(pid).unwrap_or_else(|e| panic!("ptrace(PTRACE_INTERRUPT, {pid}): {e}"));
        tracer.wait_stop("its first stop");
        Some(tracer)
    }

    /// Wait for the next stop; panics if the tracee ended instead of reaching `what`.
    fn wait_stop(&mut self, what: &str) -> WaitStatus {
        match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
            Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                self.attached = false;
                panic!("traced pid {} ended before {what}: {s:?}", self.pid)
            }
            Ok(s) => s,
            Err(e) => panic!("waitpid({}): {e}", self.pid),
        }
    }

    /// Let the tracee run, stopping at each system call, until `want` is true for one (at its
    /// entry or at its exit; `want` may read the tracee's memory); it stays stopped there.
    /// `what` names the call for the panic message if the tracee ends first.
    pub fn run_until(&mut self, what: &str, want: impl Fn(&Call, &Memory) -> bool) -> Call {
        let memory = Memory { pid: self.pid };
        let mut signal = None;
        loop {
            ptrace::syscall(self.pid, signal.take())
                .unwrap_or_else(|e| panic!("ptrace(PTRACE_SYSCALL, {}): {e}", self.pid));
            let call = match self.wait_stop(what) {
                WaitStatus::PtraceSyscall(_) => self.call(),
                // A signal on its way to the tracee: pass it on.
                WaitStatus::Stopped(_, sig) => {
                    signal = Some(sig);
                    continue;
                }
                _ => continue,
            };
            if let Some(call) = call.filter(|c| want(c, &memory)) {
                return call;
            }
        }
    }

    /// The call at this syscall stop; None for an exit whose entry we did not see (the call
    /// the tracee was in when it was seized).
    fn call(&mut self) -> Option<Call> {
        let info = ptrace::syscall_info(self.pid)
            .unwrap_or_else(|e| panic!("PTRACE_GET_SYSCALL_INFO {}: {e}", self.pid));
        match info.op {
            nix::libc::PTRACE_SYSCALL_INFO_ENTRY => {
                // SAFETY: `op` says the kernel filled in the `entry` member of the union.
                let entry = unsafe { info.u.entry };
                let call = Call {
                    nr: i64::try_from(entry.nr).unwrap_or(-1),
                    args: entry.args,
                    ret: None,
                };
                self.entered = Some(call);
                Some(call)
            }
            nix::libc::PTRACE_SYSCALL_INFO_EXIT => {
                // SAFETY: `op` says the kernel filled in the `exit` member of the union.
                let ret = unsafe { info.u.exit.sval };
                self.entered.take().map(|c| Call {
                    ret: Some(ret),
                    ..c
                })
            }
            _ => None,
        }
    }

    /// Let the tracee go on, untraced.
    pub fn detach(mut self) {
        self.let_go();
    }

    fn let_go(&mut self) {
        if std::mem::take(&mut self.attached) {
            let _ = ptrace::detach(self.pid, None);
        }
    }
}

/// The memory of a stopped tracee.
pub struct Memory {
    pid: Pid,
}

impl Memory {
    /// `len` bytes at `addr`.
    pub fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        let word = std::mem::size_of::<nix::libc::c_long>();
        let mut out = Vec::with_capacity(len + word);
        let mut at = addr;
        while out.len() < len {
            let w = ptrace::read(self.pid, at as ptrace::AddressType)
                .unwrap_or_else(|e| panic!("ptrace(PTRACE_PEEKDATA, {}): {e}", self.pid));
            out.extend_from_slice(&w.to_ne_bytes());
            at += word as u64;
        }
        out.truncate(len);
        out
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.let_go();
    }
}
