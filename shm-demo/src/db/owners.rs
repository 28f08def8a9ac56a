//! The processes the segment names: the server that created (or adopted) the database, and
//! the thread that holds the writers' mutex. Both are numbers read from shared memory, so
//! both are checked against what `/proc` says before anything is done to them: a recycled
//! pid, or one a damaged header names, must not be taken for the creator.

use std::sync::atomic::Ordering;

use common::Result;

use super::{Db, LOCK_PATIENCE, Writer};
use crate::layout;

/// Who holds the writers' mutex (see [`Db::holder`]).
#[derive(Debug)]
pub enum Holder {
    /// Nobody (it was released since).
    Nobody,
    /// A thread that no longer exists: it died, and the kernel did not hand the mutex on
    /// (`EOWNERDEAD` to the next locker) as it does for a robust mutex's owner, so nobody
    /// ever will. A thread of another pid namespace, a robust list that was lost, or a
    /// damaged segment leaves this.
    Gone { tid: u32 },
    /// A live thread, with its process's pid, name and state (`/proc/TID/status`).
    Live {
        tid: u32,
        pid: String,
        name: String,
        state: String,
    },
}

impl Holder {
    /// True if the holder can still release the mutex soon: it lives and is not stopped.
    pub fn may_release(&self) -> bool {
        match self {
            Holder::Nobody => true,
            Holder::Gone { .. } => false,
            Holder::Live { state, .. } => !state.starts_with(['T', 't', 'Z', 'X']),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Nobody => write!(f, "a writer that has just released it (try again)"),
            Holder::Gone { tid } => write!(
                f,
                "thread {tid}, which no longer exists: its owner died without the kernel handing \
                 the mutex on, so no writer will get it again (stop the server, whose --save keeps \
                 the committed records, and start a new one)"
            ),
            Holder::Live {
                tid,
                pid,
                name,
                state,
            } => {
                write!(f, "pid {pid} ({name}")?;
                if pid != &tid.to_string() {
                    write!(f, ", thread {tid}")?;
                }
                write!(f, "), {state}")
            }
        }
    }
}

impl Db {
    /// Take the writers' mutex unless that means waiting for a writer that cannot release
    /// it: one that is stopped (SIGSTOP, Ctrl-Z) or whose thread no longer exists. A writer
    /// that runs is waited for, up to [`LOCK_PATIENCE`]. None: not taken.
    pub fn try_lock(&self) -> Result<Option<Writer<'_>>> {
        let m = self.region.mutex();
        // SAFETY: as in `lock_within`.
        let rc = unsafe { libc::pthread_mutex_trylock(m) };
        if rc != libc::EBUSY {
            return self.locked(rc);
        }
        if !self.holder().may_release() {
            return Ok(None);
        }
        self.lock_within(LOCK_PATIENCE)
    }

    /// Write our pid and start time as the creator (a server that creates or adopts it).
    pub fn claim(&self) {
        let pid = std::process::id();
        self.region
            .u32(layout::H_CREATOR_PID)
            .store(pid, Ordering::Relaxed);
        self.region
            .u64(layout::H_CREATOR_START)
            .store(start_time(pid as i32).unwrap_or(0), Ordering::Release);
    }

    /// The creator's pid, and whether that process is still alive: the pid exists, has the
    /// recorded start time (a recycled pid is not mistaken for the creator) and has this
    /// segment mapped (a pid and start time read from a damaged or hand-made header do not
    /// make some other live process the creator).
    pub fn creator(&self) -> (i32, bool) {
        let pid = self
            .region
            .u32(layout::H_CREATOR_PID)
            .load(Ordering::Relaxed) as i32;
        let start = self
            .region
            .u64(layout::H_CREATOR_START)
            .load(Ordering::Acquire);
        let alive = pid > 0 && start_time(pid) == Some(start) && self.region.mapped_by(pid);
        (pid, alive)
    }

    /// Who holds the writers' mutex, as far as `/proc` tells.
    ///
    /// A robust mutex's lock word (glibc's `__lock`, the first 4 bytes of the
    /// `pthread_mutex_t`) is the futex word of the kernel's robust-futex protocol: the owner's
    /// thread id in its low 30 bits (`FUTEX_TID_MASK`). A thread id from the segment is data
    /// like any other: it names a thread of this machine's pid namespace, or none.
    pub fn holder(&self) -> Holder {
        const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
        let tid = self.region.u32(layout::H_MUTEX).load(Ordering::Relaxed) & FUTEX_TID_MASK;
        if tid == 0 {
            return Holder::Nobody;
        }
        // /proc/TID/status answers for any thread id, not only for a process's first thread.
        let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
            return Holder::Gone { tid };
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map_or("?", str::trim)
                .to_owned()
        };
        Holder::Live {
            tid,
            pid: field("Tgid:"),
            name: field("Name:"),
            state: field("State:"),
        }
    }
}

/// A process's start time in clock ticks after boot (field 22 of `/proc/PID/stat`), which
/// tells a process from a later one that was given the same pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything, so fields are
    // counted from the last ')': the state is field 3, the start time field 22.
    let (_, rest) = text.rsplit_once(") ")?;
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}
