//! eventfd(2): a 64-bit counter behind a descriptor; `write` adds to it, `read` returns it and
//! resets it to 0, blocking while it is 0. Two, one per direction. The lightest wake-up a
//! descriptor can carry, and it fits in `poll` beside sockets.

use common::{Context, Result};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{Crossed, Endpoint, Pair, crossed, retry};

/// One end: the eventfd it writes (the peer's wake-up) and the one it reads.
pub type EventEnd = Crossed<EventFd>;

/// Two eventfds at 0.
pub fn pair() -> Result<Pair<EventEnd, EventEnd>> {
    let new =
        || EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).ctx("eventfd", "EFD_CLOEXEC");
    Ok(crossed(new()?, new()?))
}

impl Endpoint for EventEnd {
    fn post(&mut self) -> Result<()> {
        retry(|| self.post.write(1))
            .ctx("write", "eventfd")
            .map(drop)
    }

    fn wait(&mut self) -> Result<()> {
        retry(|| self.wait.read()).ctx("read", "eventfd").map(drop)
    }
}
