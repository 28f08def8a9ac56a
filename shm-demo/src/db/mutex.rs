//! The pthread calls the writers' mutex is made of (nix wraps none of them, so these are
//! libc calls): making it robust and process-shared, and waiting for it with a deadline.
//! What a locking call's result means (EOWNERDEAD above all) is in [`super::Db::lock`].
//!
//! # Pitfalls
//!
//! - pthread functions return their error instead of setting `errno` ([`pthread_result`]).
//! - `pthread_mutex_timedlock` takes an absolute time on CLOCK_REALTIME, not a duration
//!   ([`realtime_after`]).

use std::time::Duration;

use common::Result;
use nix::errno::Errno;

use super::{Db, Writer};

impl Db {
    /// `pthread_mutex_timedlock` for up to `patience`; None if it timed out.
    pub(super) fn lock_within(&self, patience: Duration) -> Result<Option<Writer<'_>>> {
        let m = self.region.mutex();
        let deadline = realtime_after(patience);
        // SAFETY: `m` points at the mutex initialised by `init` in the shared mapping, which
        // outlives the Writer that unlocks it; pthread_mutex_timedlock is thread-safe.
        let rc = unsafe { libc::pthread_mutex_timedlock(m, &deadline) };
        self.locked(rc)
    }
}

/// Initialise a robust, process-shared mutex at `m` (zero-filled shared memory).
pub(super) fn init_mutex(m: *mut libc::pthread_mutex_t) -> std::result::Result<(), Errno> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    // SAFETY: attr is initialised by pthread_mutexattr_init before any other use, and
    // destroyed after pthread_mutex_init has copied what it needs; `m` points at MUTEX_ROOM
    // writable bytes of the mapping that nobody uses yet (the magic is not set).
    unsafe {
        pthread_result(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
        let a = attr.as_mut_ptr();
        let done = pthread_result(libc::pthread_mutexattr_setpshared(
            a,
            libc::PTHREAD_PROCESS_SHARED,
        ))
        .and_then(|()| {
            pthread_result(libc::pthread_mutexattr_setrobust(
                a,
                libc::PTHREAD_MUTEX_ROBUST,
            ))
        })
        .and_then(|()| pthread_result(libc::pthread_mutex_init(m, a)));
        libc::pthread_mutexattr_destroy(a);
        done
    }
}

/// What a pthread function returned, as a Result: 0, or the error number itself. pthread
/// functions return their error rather than set `errno` and return -1, so nix's
/// `Errno::result` does not apply (it would take a positive error for success, and read a
/// stale `errno` for EPERM, which is 1).
pub(super) fn pthread_result(rc: libc::c_int) -> std::result::Result<(), Errno> {
    match rc {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}

/// CLOCK_REALTIME `after` from now, the absolute deadline pthread_mutex_timedlock takes.
fn realtime_after(after: Duration) -> libc::timespec {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    let t = Duration::from(now) + after;
    libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    }
}
