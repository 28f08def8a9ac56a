//! Signal numbers and names, and the two calls that send a signal: `kill(2)` and `sigqueue(3)`.
//!
//! Shared by the roles that send (`send`, `demo`, and the benchmark in `examples/latency.rs`)
//! and the one that receives (`daemon`, which blocks the set built by [`daemon_set`]).
//!
//! # Why signals are plain `c_int`s here
//!
//! nix's [`Signal`] enum stops at SIGSYS: it has no realtime signals, because their numbers are
//! not constants. glibc reserves the first two or three kernel realtime signals for its own use
//! (thread cancellation, `setxid`), so `SIGRTMIN` is a *function call* (`__libc_current_sigrtmin`)
//! and may differ between C libraries. [`rtmin`] asks at run time; a hard-coded 32 or 34 would be
//! the classic mistake.

use std::fmt;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use common::Error;
use common::{Context, Result};

/// The first realtime signal usable by applications (see the module docs: not a constant).
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The last realtime signal.
pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// A signal number, valid on this system (1..=SIGRTMAX), with a readable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sig(i32);

impl Sig {
    /// A standard signal.
    pub fn std(s: Signal) -> Self {
        Sig(s as i32)
    }

    /// A signal number as the kernel reports it (`ssi_signo`), if it is a valid one.
    pub fn from_raw(n: i32) -> Option<Self> {
        (1..=rtmax()).contains(&n).then_some(Sig(n))
    }

    /// SIGRTMIN.
    pub fn rtmin() -> Self {
        Sig(rtmin())
    }

    /// The raw number.
    pub fn raw(self) -> i32 {
        self.0
    }

    /// The standard signal, if this is one nix knows.
    pub fn standard(self) -> Option<Signal> {
        Signal::try_from(self.0).ok()
    }

    /// True for the realtime range SIGRTMIN..=SIGRTMAX.
    pub fn is_realtime(self) -> bool {
        (rtmin()..=rtmax()).contains(&self.0)
    }

    /// Parse `HUP`, `SIGHUP`, `sighup`, `RTMIN`, `RTMIN+3`, `SIGRTMAX-1` or a number such as `10`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Usage(format!("bad signal '{text}': {why}"));
        let upper = text.trim().to_ascii_uppercase();
        if let Ok(n) = upper.parse::<i32>() {
            // Signal 0 is "check the pid exists" to kill(2); that is not a notification, and
            // negative numbers are nothing at all.
            return if (1..=rtmax()).contains(&n) {
                Ok(Sig(n))
            } else {
                Err(bad(&format!("numbers run from 1 to {}", rtmax())))
            };
        }
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let rt = |rest: &str, base: i32, sign: i32| -> Result<Self> {
            let off = if rest.is_empty() {
                0
            } else {
                rest[1..].parse::<i32>().map_err(|_| bad("bad offset"))?
            };
            let n = base + sign * off;
            if (rtmin()..=rtmax()).contains(&n) {
                Ok(Sig(n))
            } else {
                Err(bad(&format!(
                    "outside SIGRTMIN..SIGRTMAX ({}..{})",
                    rtmin(),
                    rtmax()
                )))
            }
        };
        if let Some(rest) = name.strip_prefix("RTMIN") {
            if rest.is_empty() || rest.starts_with('+') {
                return rt(rest, rtmin(), 1);
            }
        }
        if let Some(rest) = name.strip_prefix("RTMAX") {
            if rest.is_empty() || rest.starts_with('-') {
                return rt(rest, rtmax(), -1);
            }
        }
        format!("SIG{name}")
            .parse::<Signal>()
            .map(Sig::std)
            .map_err(|_| bad("try HUP, INT, TERM, USR1, USR2, RTMIN, RTMIN+N or a number"))
    }
}

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.standard() {
            f.write_str(s.as_str())
        } else if self.0 == rtmin() {
            f.write_str("SIGRTMIN")
        } else if self.is_realtime() {
            write!(f, "SIGRTMIN+{}", self.0 - rtmin())
        } else {
            write!(f, "signal {}", self.0)
        }
    }
}

/// The signals the daemon takes over: blocked, then read from a signalfd. That is the five
/// standard ones it acts on and the whole realtime range SIGRTMIN..=SIGRTMAX, every signal
/// `send` can name (`RTMIN+3`, `RTMAX-1`): a realtime signal left out would keep its default
/// action, which is to terminate, and the daemon would die without removing its pid file.
pub fn daemon_set() -> SigSet {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the sigset_t behind the pointer, which points to writable
    // storage of the right type; it cannot fail for a valid pointer.
    unsafe { libc::sigemptyset(raw.as_mut_ptr()) };
    // SAFETY: sigemptyset above initialised it.
    let mut raw = unsafe { raw.assume_init() };
    let std = [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];
    // nix's SigSet::add takes only the standard `Signal` enum, so the realtime signals go in
    // through libc's sigaddset, and every signal goes in the same way for uniformity.
    for sig in std.iter().map(|&s| s as i32).chain(rtmin()..=rtmax()) {
        // SAFETY: `raw` is an initialised sigset_t and `sig` a valid signal number
        // (1..=SIGRTMAX), so sigaddset only sets one bit in it.
        unsafe { libc::sigaddset(&mut raw, sig) };
    }
    // SAFETY: `raw` was initialised by sigemptyset and only modified by sigaddset.
    unsafe { SigSet::from_sigset_t_unchecked(raw) }
}

/// Check that `pid` names one process. kill(2) gives 0 and negative pids other meanings:
/// 0 is "my whole process group", -1 is "every process I may signal", -N is "process group N".
/// A demo that sends a burst of SIGTERM to pid 0 would take down its own terminal session.
pub fn check_pid(pid: i32) -> Result<Pid> {
    if pid > 0 {
        Ok(Pid::from_raw(pid))
    } else {
        Err(Error::Usage(format!(
            "bad pid {pid}: must be a positive process id \
             (kill treats 0 and negative pids as process groups)"
        )))
    }
}

/// `kill(pid, sig)`.
pub fn kill(pid: Pid, sig: Sig) -> Result<()> {
    common::trace!("kill({pid}, {sig})");
    match sig.standard() {
        Some(s) => nix::sys::signal::kill(pid, s).ctx("kill", pid),
        None => {
            // nix's kill takes only the standard `Signal` enum; realtime signals go through libc.
            // SAFETY: kill(2) takes two integers and touches no memory of ours.
            let rc = unsafe { libc::kill(pid.as_raw(), sig.raw()) };
            Errno::result(rc).map(drop).ctx("kill", pid)
        }
    }
}

/// `sigqueue(pid, sig, value)`: send a signal that carries an integer. For a realtime signal
/// each call queues one instance with its own value; for a standard one the value is delivered
/// only if no instance is pending already (standard signals do not queue).
///
/// nix 0.32 does not wrap sigqueue(3), so this calls libc.
pub fn sigqueue(pid: Pid, sig: Sig, value: i32) -> Result<()> {
    common::trace!("sigqueue({pid}, {sig}, {value})");
    // C's `union sigval { int sival_int; void *sival_ptr; }`: the libc crate declares only the
    // pointer member, so we declare the whole union and write the int member, which puts the
    // integer where the receiver reads it back (`si_value.sival_int`, `ssi_int`) on any
    // byte order. Zeroing through the pointer member first leaves no byte uninitialised.
    #[repr(C)]
    union Sigval {
        sival_int: libc::c_int,
        sival_ptr: *mut libc::c_void,
    }
    let mut u = Sigval {
        sival_ptr: std::ptr::null_mut(),
    };
    u.sival_int = value;
    // SAFETY: `Sigval` has the size and layout of C's union sigval, which is what
    // `libc::sigval` stands for; every byte of `u` is initialised (see above).
    let sv: libc::sigval = unsafe { std::mem::transmute::<Sigval, libc::sigval>(u) };
    // SAFETY: sigqueue takes a pid, a signal number and a sigval by value; the sigval holds an
    // integer, and nobody dereferences it as a pointer.
    let rc = unsafe { libc::sigqueue(pid.as_raw(), sig.raw(), sv) };
    Errno::result(rc).map(drop).ctx("sigqueue", pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(Sig::parse("HUP").unwrap(), Sig::std(Signal::SIGHUP));
        assert_eq!(Sig::parse("sigusr1").unwrap(), Sig::std(Signal::SIGUSR1));
        assert_eq!(Sig::parse("15").unwrap(), Sig::std(Signal::SIGTERM));
        assert_eq!(Sig::parse("RTMIN").unwrap().raw(), rtmin());
        assert_eq!(Sig::parse("SIGRTMIN+3").unwrap().raw(), rtmin() + 3);
        assert_eq!(Sig::parse("RTMAX-1").unwrap().raw(), rtmax() - 1);
        assert_eq!(Sig::parse("RTMIN+3").unwrap().to_string(), "SIGRTMIN+3");
        for bad in [
            "0",
            "-1",
            "999",
            "FOO",
            "RTMIN+999",
            "RTMIN-1",
            "RTMIN+x",
            "",
        ] {
            assert!(Sig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pids_must_be_positive() {
        assert!(check_pid(0).is_err());
        assert!(check_pid(-1).is_err());
        assert_eq!(check_pid(42).unwrap(), Pid::from_raw(42));
    }
}
