//! What SysV IPC objects share: they have no name to unlink and no descriptor to close, only
//! an id that lives until someone says `IPC_RMID`. Ours are made with `IPC_PRIVATE` (a fresh
//! object no other key can collide with, which a forked child reaches through the inherited
//! id), and [`Removal`] says `IPC_RMID` when the coordinator drops it.
//!
//! A message queue or a semaphore set disappears at once on `IPC_RMID`, even while in use,
//! unlike a shared memory segment, so these are removed only after the measurement.
//!
//! nix does not wrap SysV IPC, so these calls go through libc.

use std::fmt;

use common::{Context, Error, Result};
use nix::errno::Errno;

/// A kind of SysV object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A message queue (msgget).
    Queue,
    /// A semaphore set (semget).
    Semaphores,
}

impl Kind {
    /// The word the C twin prints for it: `sysv msg ID`, `sysv sem ID`.
    pub fn parse(word: &str) -> Option<Kind> {
        match word {
            "msg" => Some(Kind::Queue),
            "sem" => Some(Kind::Semaphores),
            _ => None,
        }
    }
}

/// Removes a SysV object with IPC_RMID when dropped.
#[must_use = "the object is removed as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Removal {
    kind: Kind,
    id: libc::c_int,
}

impl Removal {
    /// Guard the object `id` of `kind`.
    pub fn new(kind: Kind, id: libc::c_int) -> Self {
        Removal { kind, id }
    }

    /// The object's id.
    pub fn id(&self) -> libc::c_int {
        self.id
    }
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::Queue => write!(f, "SysV message queue {}", self.id),
            Kind::Semaphores => write!(f, "SysV semaphore set {}", self.id),
        }
    }
}

impl Drop for Removal {
    fn drop(&mut self) {
        let rc = match self.kind {
            // SAFETY: IPC_RMID takes no buffer; a stale id only makes the call fail.
            Kind::Queue => unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) },
            // SAFETY: IPC_RMID ignores the semaphore number and takes no fourth argument.
            Kind::Semaphores => unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) },
        };
        match Errno::result(rc) {
            // EINVAL/EIDRM: already gone (the C twin removes its own on a normal exit).
            Ok(_) | Err(Errno::EINVAL | Errno::EIDRM) => common::trace!("IPC_RMID({self})"),
            Err(e) => eprintln!("warning: {}", Error::sys("IPC_RMID", &*self, e)),
        }
    }
}

/// `msgget(IPC_PRIVATE)` or `semget(IPC_PRIVATE, n)`, mode 0600, guarded.
pub fn create(kind: Kind, nsems: libc::c_int) -> Result<Removal> {
    let flags = libc::IPC_CREAT | 0o600;
    let rc = match kind {
        // SAFETY: msgget takes two integers and touches no memory of ours.
        Kind::Queue => unsafe { libc::msgget(libc::IPC_PRIVATE, flags) },
        // SAFETY: semget takes three integers and touches no memory of ours.
        Kind::Semaphores => unsafe { libc::semget(libc::IPC_PRIVATE, nsems, flags) },
    };
    let call = match kind {
        Kind::Queue => "msgget",
        Kind::Semaphores => "semget",
    };
    let id = Errno::result(rc).ctx(call, "IPC_PRIVATE")?;
    let guard = Removal::new(kind, id);
    common::trace!("{call}(IPC_PRIVATE) -> {id}");
    Ok(guard)
}
