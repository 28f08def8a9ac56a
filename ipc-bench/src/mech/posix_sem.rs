//! sem_open(3): two named POSIX semaphores, one per direction. A named semaphore is a small
//! file in /dev/shm mapped into the process; the mapping survives fork, so ping and pong use
//! the coordinator's, and the names are unlinked as soon as both exist.
//!
//! nix does not wrap POSIX semaphores, so these calls go through libc.

use std::ffi::CString;

use common::cleanup::{Object, Unlink};
use common::{Context, Error, Result};
use nix::errno::Errno;

use super::{Crossed, Endpoint, Names, Pair, crossed, retry};

/// An open named semaphore, closed when the last end holding it is dropped.
pub struct Sem {
    ptr: *mut libc::sem_t,
    name: String,
}

impl Drop for Sem {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from sem_open and is closed once, here (Sem is shared through
        // an Rc, never copied).
        unsafe { libc::sem_close(self.ptr) };
    }
}

/// One end: the semaphore it posts (the peer's wake-up) and the one it waits on.
pub type SemEnd = Crossed<Sem>;

/// Two semaphores at 0, ping → pong (`names.a`) and pong → ping (`names.b`).
pub fn pair(names: &Names) -> Result<Pair<SemEnd, SemEnd>> {
    Ok(crossed(open(&names.a)?, open(&names.b)?))
}

/// `sem_open(O_CREAT | O_EXCL, 0600, 0)`, then unlink the name.
fn open(name: &str) -> Result<Sem> {
    let c = CString::new(name).map_err(|_| Error::msg(format!("{name:?}: contains a NUL")))?;
    let mode: libc::c_uint = 0o600;
    let value: libc::c_uint = 0;
    // SAFETY: `c` is a valid C string for the duration of the call; with O_CREAT sem_open
    // reads the two variadic arguments mode and value, passed with the promoted types.
    let ptr = unsafe { libc::sem_open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL, mode, value) };
    if ptr == libc::SEM_FAILED {
        return Err(Error::sys("sem_open", name, Errno::last()));
    }
    let sem = Sem {
        ptr,
        name: name.to_owned(),
    };
    // Unlinked now: the mapping is all ping and pong need.
    drop(Unlink::new(Object::Semaphore(name.to_owned())));
    Ok(sem)
}

impl Endpoint for SemEnd {
    fn post(&mut self) -> Result<()> {
        // SAFETY: `ptr` is an open semaphore (the Rc keeps it open).
        Errno::result(unsafe { libc::sem_post(self.post.ptr) })
            .ctx("sem_post", &self.post.name)
            .map(drop)
    }

    fn wait(&mut self) -> Result<()> {
        // SAFETY: as for sem_post.
        retry(|| Errno::result(unsafe { libc::sem_wait(self.wait.ptr) }))
            .ctx("sem_wait", &self.wait.name)
            .map(drop)
    }
}
