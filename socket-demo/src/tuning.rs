//! The server's tuning: what keeps it fast and within its limits, apart from the event loop
//! in [`crate::server`] that calls it.
//!
//! # Descriptors
//!
//! `--max-clients N` must fit the limit on open descriptors, or client N+1 would meet EMFILE
//! at `accept4` instead of an error reply: at start the soft RLIMIT_NOFILE is raised as far
//! as the hard limit allows and, if N still does not fit, N is lowered with a log line
//! ([`fit_descriptor_limit`]). Should something else use the descriptors up anyway, a
//! [`Spare`] one, held from the start, is given back so that a pending connection can be
//! accepted and refused instead of waking level-triggered epoll for ever.
//!
//! # Polling before sleeping
//!
//! When the loop sleeps in `epoll_wait`, the next client `write` has to wake it up: the
//! kernel, running on the client's CPU, sends an interrupt to the server's CPU, and the
//! client's thread pays for it. Under steady load the next requests arrive a few microseconds
//! after a round ends, so a server that sleeps at once pays for a wake-up on almost every
//! round. So after each round the loop keeps asking with a zero timeout for `--busy-poll-us`
//! (20 µs by default) and sleeps only when that much time passes without an event. An idle
//! server spends at most that much CPU after its last request; with one CPU there is no one
//! to wait for, so it never polls. The kernel does the same for network sockets
//! (SO_BUSY_POLL) and for idle virtual CPUs (the haltpoll cpuidle driver), but neither
//! reaches Unix sockets, hence doing it here.
//!
//! # Pitfalls
//!
//! - Polling on one CPU starves the very client it waits for: [`busy_poll`] turns it off.
//! - The descriptor limit counts the server's own descriptors too: [`RESERVED_FDS`].

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::out::Output;
use common::{Context, Result, tell};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{SysconfVar, sysconf};

/// Descriptors kept out of `--max-clients` for the server's own use: the standard streams,
/// epoll, listeners, the shutdown pipe, the lock file, the spare (Redis reserves 32 too).
const RESERVED_FDS: u64 = 32;

/// Raise the soft limit on open descriptors as far as the hard limit allows, and lower
/// `max_clients` to what the limit leaves room for (the result), so that a client beyond it is
/// refused with an error reply rather than cut off by EMFILE at `accept`.
pub fn fit_descriptor_limit(max_clients: usize, log: &mut Output) -> Result<usize> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ctx("getrlimit", "RLIMIT_NOFILE")?;
    let wanted = (max_clients as u64).saturating_add(RESERVED_FDS);
    let mut limit = soft;
    if soft < wanted {
        let raised = wanted.min(hard);
        match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            Ok(()) => limit = raised,
            Err(e) => tell!(
                log,
                "setrlimit(RLIMIT_NOFILE, {raised}): {}; keeping {soft}",
                e.desc()
            )?,
        }
    }
    let room = usize::try_from(limit.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
    if room < max_clients {
        tell!(
            log,
            "max clients lowered from {max_clients} to {room}: at most {limit} open descriptors"
        )?;
        return Ok(room);
    }
    Ok(max_clients)
}

/// How long to poll before sleeping: `asked`, or zero with one CPU, where a client on the
/// same CPU cannot run to send anything while this thread polls.
pub fn busy_poll(asked: Duration) -> Duration {
    if !asked.is_zero() && !several_cpus() {
        return Duration::ZERO;
    }
    asked
}

/// More than one CPU online (as glibc's `get_nprocs` counts them); false if unknown. Online
/// CPUs, not our affinity mask: a server pinned to one CPU still has clients on the others.
fn several_cpus() -> bool {
    matches!(sysconf(SysconfVar::_NPROCESSORS_ONLN), Ok(Some(n)) if n > 1)
}

/// A descriptor held in reserve for EMFILE (see the module docs).
pub struct Spare(Option<OwnedFd>);

impl Spare {
    /// Hold a descriptor (on /dev/null), if one can be had.
    pub fn take() -> Spare {
        Spare(std::fs::File::open("/dev/null").map(OwnedFd::from).ok())
    }

    /// Close it, so that the next `accept4` has a descriptor to return.
    pub fn release(&mut self) {
        self.0 = None;
    }
}
