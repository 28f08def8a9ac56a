//! pipe(2): two pipes for a round trip (one each way); in bulk, the first one carries the
//! data. Two variants show how far a pipe can be pushed:
//! - `F_SETPIPE_SZ` to 1 MiB (the unprivileged maximum, `/proc/sys/fs/pipe-max-size`), so
//!   the writer blocks less often than with the default 64 KiB;
//! - `vmsplice` on the writer (the pipe takes references to the sender's pages instead of
//!   copying them) and `splice` into `/dev/null` on the reader (the pages are dropped without
//!   being copied out): no copy at all, which is the ceiling, not what a reader that looks at
//!   the data can get.

use std::fs::OpenOptions;
use std::io::IoSlice;
use std::os::fd::OwnedFd;

use common::{Context, Result};
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice, vmsplice};
use nix::unistd::pipe2;

use super::fd::{FdEnd, Finish};
use super::{Endpoint, MAX_MSG, Pair, retry};

/// Which pipe.
#[derive(Clone, Copy, Debug)]
pub enum Variant {
    /// As pipe2 makes it: 64 KiB of buffer on Linux.
    Plain,
    /// Grown to 1 MiB with F_SETPIPE_SZ.
    Big,
}

/// Two pipes, ping → pong and pong → ping.
pub fn pair(variant: Variant) -> Result<Pair<FdEnd, FdEnd>> {
    let (p2c_r, p2c_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "ping → pong")?;
    let (c2p_r, c2p_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "pong → ping")?;
    if let Variant::Big = variant {
        fcntl(&p2c_w, FcntlArg::F_SETPIPE_SZ(1 << 20)).ctx("fcntl(F_SETPIPE_SZ, 1 MiB)", "pipe")?;
    }
    Ok(Pair::new(
        FdEnd::new(p2c_w, c2p_r, Finish::Close, "pipe"),
        FdEnd::new(c2p_w, p2c_r, Finish::Close, "pipe"),
    ))
}

/// An end of the zero-copy pipe: `vmsplice` to send, `splice` to `/dev/null` to receive.
pub struct Zerocopy {
    inner: FdEnd,
    devnull: OwnedFd,
}

/// The pipes of [`pair`] with zero-copy sending and receiving.
pub fn zerocopy_pair() -> Result<Pair<Zerocopy, Zerocopy>> {
    let pipes = pair(Variant::Plain)?;
    let devnull = || -> Result<OwnedFd> {
        let file = OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .ctx("open", "/dev/null")?;
        Ok(file.into())
    };
    Ok(Pair::new(
        Zerocopy {
            inner: pipes.ping,
            devnull: devnull()?,
        },
        Zerocopy {
            inner: pipes.pong,
            devnull: devnull()?,
        },
    ))
}

impl Endpoint for Zerocopy {
    fn post(&mut self) -> Result<()> {
        self.inner.post()
    }

    fn wait(&mut self) -> Result<()> {
        self.inner.wait()
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let tx = self.inner.tx()?;
        let mut rest = msg;
        while !rest.is_empty() {
            // SAFETY: vmsplice lends `msg`'s pages to the pipe until the reader has consumed
            // them; the sender's message buffer is never written after it is filled, so what
            // the reader gets is what was sent. No SPLICE_F_GIFT, so no alignment rule applies.
            let n = retry(|| unsafe { vmsplice(tx, &[IoSlice::new(rest)], SpliceFFlags::empty()) })
                .ctx("vmsplice", "pipe")?;
            rest = &rest[n..];
        }
        Ok(())
    }

    fn recv(&mut self, _buf: &mut [u8]) -> Result<usize> {
        retry(|| {
            splice(
                self.inner.rx(),
                None,
                &self.devnull,
                None,
                MAX_MSG,
                SpliceFFlags::SPLICE_F_MOVE,
            )
        })
        .ctx("splice", "pipe → /dev/null")
    }

    fn end(&mut self) -> Result<()> {
        self.inner.end()
    }
}
