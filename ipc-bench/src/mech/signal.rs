//! Realtime signals: `sigqueue(3)` one way, `sigqueue` back. Unlike standard signals, realtime
//! signals queue (none is lost when several are pending) and carry a value and the sender's
//! pid, which is how pong learns whom to answer. Two ways to receive, both synchronous:
//! `sigwaitinfo(2)`, and a `signalfd(2)` that is read like a pipe (and fits in `poll`).
//!
//! The signal is blocked in the coordinator *before* the fork, so that ping and pong start
//! with it blocked: a signal that arrived before its receiver waited would otherwise run the
//! default action, which for SIGRTMIN is to terminate. A blocked signal stays pending until
//! `sigwaitinfo` or a `read` on the signalfd takes it.
//!
//! nix's `Signal` has no realtime signals, and nix wraps neither `sigqueue` nor
//! `sigwaitinfo`, so these calls go through libc.

use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};

use common::{Context, Error, Result};
use nix::errno::Errno;
use nix::unistd::{Pid, read};

use super::{Endpoint, Pair, retry};

/// How a process takes the signal.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// `sigwaitinfo(2)`.
    Sigwaitinfo,
    /// `read(2)` on a `signalfd(2)`.
    Signalfd,
}

/// One end: the peer's pid (ping is told it; pong learns it from the first signal).
pub struct SignalEnd {
    peer: Option<Pid>,
    set: libc::sigset_t,
    signalfd: Option<OwnedFd>,
}

/// Restores the coordinator's signal mask when dropped.
struct RestoreMask(libc::sigset_t);

impl Drop for RestoreMask {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a sigset_t that sigprocmask filled in; the old-set pointer may
        // be null.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Block SIGRTMIN (until the measurement ends) and make the ends.
pub fn pair(wait: Wait) -> Result<Pair<SignalEnd, SignalEnd>> {
    let set = rtmin_set();
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` is initialised; `old` is written by sigprocmask before it is read.
    Errno::result(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, old.as_mut_ptr()) })
        .ctx("sigprocmask(SIG_BLOCK)", "SIGRTMIN")?;
    // SAFETY: sigprocmask succeeded, so it filled in `old`.
    let restore = RestoreMask(unsafe { old.assume_init() });
    let end = || -> Result<SignalEnd> {
        let signalfd = match wait {
            Wait::Sigwaitinfo => None,
            Wait::Signalfd => {
                // SAFETY: fd -1 asks for a new signalfd; `set` is initialised.
                let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC) };
                let fd = Errno::result(fd).ctx("signalfd", "SIGRTMIN")?;
                // SAFETY: signalfd returned a new descriptor that nothing else owns.
                Some(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        };
        Ok(SignalEnd {
            peer: None,
            set,
            signalfd,
        })
    };
    let mut pair = Pair::new(end()?, end()?);
    pair.guards.push(Box::new(restore));
    Ok(pair)
}

fn rtmin_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset then adds a valid signal number.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGRTMIN());
        set.assume_init()
    }
}

impl Endpoint for SignalEnd {
    fn set_peer(&mut self, peer: Pid) {
        self.peer = Some(peer);
    }

    fn post(&mut self) -> Result<()> {
        let peer = self
            .peer
            .ok_or_else(|| Error::msg("sigqueue: no peer to signal yet"))?;
        let value = libc::sigval {
            sival_ptr: std::ptr::null_mut(),
        };
        // SAFETY: sigqueue takes a pid, a signal number and a sigval by value.
        Errno::result(unsafe { libc::sigqueue(peer.as_raw(), libc::SIGRTMIN(), value) })
            .ctx("sigqueue", format_args!("SIGRTMIN to pid {peer}"))
            .map(drop)
    }

    fn wait(&mut self) -> Result<()> {
        let pid = match &self.signalfd {
            None => {
                let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
                retry(|| {
                    // SAFETY: `set` is initialised; `info` has room for one siginfo_t.
                    Errno::result(unsafe { libc::sigwaitinfo(&self.set, info.as_mut_ptr()) })
                })
                .ctx("sigwaitinfo", "SIGRTMIN")?;
                // SAFETY: sigwaitinfo succeeded, so it filled in `info`; si_pid is valid for
                // a signal sent by sigqueue (si_code SI_QUEUE).
                unsafe { info.assume_init().si_pid() }
            }
            Some(fd) => {
                let mut info = [0u8; size_of::<libc::signalfd_siginfo>()];
                let n = retry(|| read(fd, &mut info)).ctx("read", "signalfd")?;
                if n != info.len() {
                    return Err(Error::msg(format!(
                        "read signalfd: {n} bytes, not one siginfo"
                    )));
                }
                // SAFETY: `info` holds exactly one signalfd_siginfo as the kernel wrote it, and
                // every bit pattern is valid for that struct of integers.
                let info: libc::signalfd_siginfo =
                    unsafe { std::ptr::read_unaligned(info.as_ptr().cast()) };
                libc::pid_t::try_from(info.ssi_pid).unwrap_or(0)
            }
        };
        self.peer = Some(Pid::from_raw(pid));
        Ok(())
    }
}
