//! futex(2): the kernel call under every mutex and condition variable. Ping and pong share one
//! 32-bit word in a shared mapping: ping stores 1 ("your turn") and wakes a waiter, pong
//! stores 2 and wakes. A side whose turn has not come sleeps with `FUTEX_WAIT`, which only
//! sleeps if the word still holds the value it saw, so a wake-up between the load and the
//! sleep is never lost. The mapping is shared between processes, so the futex must not be
//! `FUTEX_PRIVATE_FLAG`.
//!
//! nix does not wrap futex, so this calls libc's `syscall`.

use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Context, Result};
use nix::errno::Errno;

use super::shm::Mapping;
use super::{Endpoint, Pair};

/// One end: the shared word, the value it stores and the value it waits for.
pub struct FutexEnd {
    map: Rc<Mapping>,
    mine: u32,
    theirs: u32,
}

/// One word in an anonymous shared mapping (inherited across fork).
pub fn pair() -> Result<Pair<FutexEnd, FutexEnd>> {
    let map = Rc::new(Mapping::anonymous(4096)?);
    Ok(Pair::new(
        FutexEnd {
            map: Rc::clone(&map),
            mine: 1,
            theirs: 2,
        },
        FutexEnd {
            map,
            mine: 2,
            theirs: 1,
        },
    ))
}

impl FutexEnd {
    fn word(&self) -> &AtomicU32 {
        self.map.word(0)
    }
}

impl Endpoint for FutexEnd {
    fn post(&mut self) -> Result<()> {
        let word = self.word();
        word.store(self.mine, Ordering::Release);
        // SAFETY: the address is a live, aligned u32 in a mapping that outlives the call;
        // FUTEX_WAKE reads no other argument than the count.
        let rc = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1) };
        Errno::result(rc).ctx("futex", "FUTEX_WAKE").map(drop)
    }

    fn wait(&mut self) -> Result<()> {
        let word = self.word();
        loop {
            let seen = word.load(Ordering::Acquire);
            if seen == self.theirs {
                return Ok(());
            }
            let null: *const libc::timespec = std::ptr::null();
            // SAFETY: as for FUTEX_WAKE; a null timeout means no timeout.
            let rc = unsafe {
                libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, seen, null)
            };
            match Errno::result(rc) {
                // EAGAIN: the word changed before we slept; EINTR: a signal. Look again.
                Ok(_) | Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => return Err(e).ctx("futex", "FUTEX_WAIT"),
            }
        }
    }
}
