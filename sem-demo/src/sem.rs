//! One semaphore, POSIX or System V, behind the few operations every role uses.
//!
//! The roles are written once and run on either kind (`--posix`, `--sysv`), so that the demo
//! can show where the two differ: what happens to a permit when its holder dies.

use std::fmt;
use std::time::Duration;

use common::{Error, Result, names};
use nix::errno::Errno;

use crate::creation::Creation;
use crate::posix::NamedSem;
use crate::sysv::SemSet;

/// Which kind of semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// A POSIX named semaphore (`sem_open`, `/dev/shm/sem.ipc-demo-NAME`).
    Posix,
    /// A System V semaphore set (`semget`, key `0x1dc0xxxx` from the name).
    Sysv,
}

impl Flavor {
    /// Its name in messages: "POSIX" or "SysV".
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Posix => "POSIX",
            Flavor::Sysv => "SysV",
        }
    }

    /// The flag that selects it, for children started with the same flavor.
    pub fn flag(self) -> &'static str {
        match self {
            Flavor::Posix => "--posix",
            Flavor::Sysv => "--sysv",
        }
    }
}

/// An open semaphore of either kind.
pub enum Sem {
    /// POSIX named.
    Posix(NamedSem),
    /// System V set.
    Sysv(SemSet),
}

/// A validated semaphore name: letters, digits, `.`, `_`, `-`; given either bare (`build`) or
/// as the POSIX name `/ipc-demo-build`. The POSIX object is always `/ipc-demo-NAME`, so that
/// `make clean-ipc` knows it for ours.
pub fn parse_name(s: &str) -> std::result::Result<String, String> {
    let bare = s.strip_prefix(&format!("/{}-", names::PREFIX)).unwrap_or(s);
    if bare.is_empty() || bare.len() > 200 {
        return Err("a name has 1 to 200 characters".into());
    }
    if let Some(c) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed in a name (letters, digits, '.', '_', '-')"
        ));
    }
    Ok(bare.to_owned())
}

impl Sem {
    /// Open the semaphore `name` (bare, as [`parse_name`] returns it). Returns whether we
    /// created it.
    pub fn open(flavor: Flavor, name: &str, how: Creation) -> Result<(Self, bool)> {
        Ok(match flavor {
            Flavor::Posix => {
                let (s, created) = NamedSem::open(&names::posix_name(name), how)?;
                (Sem::Posix(s), created)
            }
            Flavor::Sysv => {
                let (s, created) = SemSet::open(name, how)?;
                (Sem::Sysv(s), created)
            }
        })
    }

    /// Take a permit; `undo` asks SysV to give it back if we die holding it (POSIX cannot).
    /// `Ok(false)` if `timeout` passed first.
    pub fn wait(&self, undo: bool, timeout: Option<Duration>) -> Result<bool> {
        match self {
            Sem::Posix(s) => s.wait(timeout),
            Sem::Sysv(s) => s.wait(undo, timeout),
        }
    }

    /// Take a permit for a critical section, waiting as long as it takes: a [`Permit`] that
    /// gives it back when dropped.
    pub fn take(&self, undo: bool) -> Result<Permit<'_>> {
        self.wait(undo, None)?;
        Ok(self.permit(undo))
    }

    /// [`Sem::take`] with an optional timeout: `Ok(None)` if it passed first.
    pub fn take_within(&self, undo: bool, timeout: Option<Duration>) -> Result<Option<Permit<'_>>> {
        Ok(self.wait(undo, timeout)?.then(|| self.permit(undo)))
    }

    /// The guard of a permit just taken.
    fn permit(&self, undo: bool) -> Permit<'_> {
        Permit {
            sem: self,
            undo,
            held: true,
        }
    }

    /// Take a permit if one is free; `Ok(false)` if it would block.
    pub fn try_wait(&self, undo: bool) -> Result<bool> {
        match self {
            Sem::Posix(s) => s.try_wait(),
            Sem::Sysv(s) => s.try_wait(undo),
        }
    }

    /// Give a permit back (`undo` must match the `wait` that took it).
    pub fn post(&self, undo: bool) -> Result<()> {
        match self {
            Sem::Posix(s) => s.post(),
            Sem::Sysv(s) => s.post(undo),
        }
    }

    /// K as recorded at creation: SysV only (0: created by a primitive). A POSIX semaphore
    /// is a bare number and records nothing of the kind.
    pub fn limit(&self) -> Option<u16> {
        match self {
            Sem::Posix(_) => None,
            Sem::Sysv(s) => Some(s.limit()),
        }
    }

    /// The number of free permits.
    pub fn value(&self) -> Result<i32> {
        match self {
            Sem::Posix(s) => s.value(),
            Sem::Sysv(s) => s.value(),
        }
    }

    /// `sem-demo unlink NAME`: remove the semaphore `name`, a POSIX one once it is checked to
    /// be ours, a SysV set without waiting for it to be initialised (see [`SemSet::unlink`]).
    pub fn unlink(flavor: Flavor, name: &str) -> Result<()> {
        match flavor {
            Flavor::Posix => Sem::open(flavor, name, Creation::Never)?.0.remove(),
            Flavor::Sysv => SemSet::unlink(name),
        }
    }

    /// Remove the name (`sem_unlink`) or the set (`IPC_RMID`).
    pub fn remove(&self) -> Result<()> {
        match self {
            Sem::Posix(s) => common::cleanup::Object::Semaphore(s.name().to_owned()).unlink(),
            Sem::Sysv(s) => s.remove(),
        }
    }
}

/// How messages name it: `/ipc-demo-NAME`, or `NAME (key 0x1dc0abcd)`.
impl fmt::Display for Sem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sem::Posix(s) => f.write_str(s.name()),
            Sem::Sysv(s) => write!(f, "{} (key {:#010x})", s.name(), s.key()),
        }
    }
}

/// A permit taken by [`Sem::take`], given back (`post`) when dropped: every way out of a
/// critical section gives it back, a `?` on an error included.
///
/// Pitfall: without a guard, an early return between the wait and the post keeps the permit.
/// SysV's `SEM_UNDO` gives it back when the process exits, but a POSIX semaphore never does:
/// one `update` that failed on a file that did not hold a number left every later `update`
/// waiting forever.
#[must_use = "dropping the permit gives it back at once"]
pub struct Permit<'a> {
    sem: &'a Sem,
    undo: bool,
    held: bool,
}

impl Permit<'_> {
    /// Give the permit back now, and say if that failed (dropping it can only warn).
    pub fn release(mut self) -> Result<()> {
        self.held = false;
        self.sem.post(self.undo)
    }

    /// Leave the permit taken: for a holder that must not give it back itself because the
    /// process it guards may still run (see `run`).
    pub fn keep(mut self) {
        self.held = false;
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.held
            && let Err(e) = self.sem.post(self.undo)
        {
            // Drop cannot return an error; the error that brought us here is on its way.
            eprintln!("sem-demo: warning: {e}");
        }
    }
}

/// Removes a semaphore we created when dropped, of either kind.
pub struct Remove<'a>(pub &'a Sem);

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        match self.0.remove() {
            // (SysV removals narrate themselves.)
            Ok(()) if matches!(self.0, Sem::Posix(_)) => {
                common::trace!("sem_unlink({})", self.0);
            }
            Ok(()) => {}
            // Already gone (someone ran `sem-demo unlink`): nothing left to do.
            Err(e) if matches!(e.errno(), Some(Errno::EINVAL | Errno::EIDRM)) => {}
            // Drop cannot return an error; say it, so the leftover is not a mystery.
            Err(e) => eprintln!("warning: {e}"),
        }
    }
}

/// `Error` for a wait that timed out, in the words scripts grep for.
pub fn timed_out(seconds: &str, name: &str) -> Error {
    Error::msg(format!("timed out after {seconds} s waiting for {name}"))
}
