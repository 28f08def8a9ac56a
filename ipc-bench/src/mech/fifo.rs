//! mkfifo(3): a pipe with a name, which is what lets unrelated processes meet at it. Here the
//! name is needed only until both ends are open: ping and pong inherit the descriptors
//! across fork, so the FIFOs are unlinked at once and nothing is left behind even on kill -9.
//! Once open, a FIFO *is* a pipe: the same `pipe_inode_info` in the kernel, the same costs.

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

use common::cleanup::Unlink;
use common::{Context, Result};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

use super::fd::{FdEnd, Finish};
use super::{Names, Pair};

/// Two FIFOs, ping → pong (`names.a`) and pong → ping (`names.b`).
pub fn pair(names: &Names) -> Result<Pair<FdEnd, FdEnd>> {
    let (p2c_r, p2c_w) = open_fifo(&names.a)?;
    let (c2p_r, c2p_w) = open_fifo(&names.b)?;
    Ok(Pair::new(
        FdEnd::new(p2c_w, c2p_r, Finish::Close, "FIFO"),
        FdEnd::new(c2p_w, p2c_r, Finish::Close, "FIFO"),
    ))
}

/// Create the FIFO at `path` (0600; EEXIST if anything is there), open both ends, unlink it.
fn open_fifo(path: &str) -> Result<(OwnedFd, OwnedFd)> {
    mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).ctx("mkfifo", path)?;
    // Removed when this function returns, on an error too: both ends are open by then.
    let _name = Unlink::path(path);
    common::trace!("mkfifo({path}, 0600)");
    // A writer's open blocks until there is a reader, so the reader comes first, and
    // non-blocking (it would otherwise wait for a writer); then its reads are made blocking.
    // std opens with O_CLOEXEC.
    let r: OwnedFd = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ctx("open(O_RDONLY | O_NONBLOCK)", path)?
        .into();
    let w: OwnedFd = OpenOptions::new()
        .write(true)
        .open(path)
        .ctx("open(O_WRONLY)", path)?
        .into();
    fcntl(&r, FcntlArg::F_SETFL(OFlag::empty())).ctx("fcntl(F_SETFL)", path)?;
    Ok((r, w))
}
