//! Opening a file that someone else may have replaced with something that is not a file.
//!
//! The daemon's config and the pid file that `send` reads are named by the user, and the
//! directory they live in may be shared. Whatever stands at the path is opened, so a FIFO
//! there would block `open(2)` until a writer came, and a process blocked in `open` is deaf to
//! every signal but SIGKILL: the daemon would hang on a SIGHUP, `send` forever. Hence:
//!
//! 1. `open(O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)`: with `O_NONBLOCK`, opening a FIFO
//!    that has no writer returns at once; `O_NOCTTY` keeps a terminal named here from becoming
//!    our controlling terminal.
//! 2. `fstat` on the descriptor just opened (never `stat` on the path, which could be swapped
//!    between the check and the open): anything but a regular file is refused, by name.
//! 3. `fcntl(F_SETFL)` clears `O_NONBLOCK` again. It means nothing for a regular file today,
//!    but the reads that follow are meant to be ordinary blocking reads.

use std::fs::{File, FileType};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use common::{Context, Error, Result};

/// Open `path` for reading if, and only if, it is a regular file; never block in `open`.
/// With `nofollow`, a symlink at `path` is refused too (`O_NOFOLLOW`).
pub fn open_regular(path: &Path, nofollow: bool) -> Result<File> {
    let mut flags = libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .ctx("open", path.display())?;
    let kind = file.metadata().ctx("fstat", path.display())?.file_type();
    if !kind.is_file() {
        return Err(Error::msg(format!(
            "{}: is {}, not a regular file; refused",
            path.display(),
            kind_name(kind)
        )));
    }
    let flags = fcntl(&file, FcntlArg::F_GETFL).ctx("fcntl(F_GETFL)", path.display())?;
    let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
    fcntl(&file, FcntlArg::F_SETFL(flags)).ctx("fcntl(F_SETFL)", path.display())?;
    common::trace!(
        "open({}, O_RDONLY|O_NONBLOCK) + fstat -> regular file",
        path.display()
    );
    Ok(file)
}

/// What stands at a path, for an error message: "a FIFO", "a directory"...
fn kind_name(kind: FileType) -> &'static str {
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "of an unknown type"
    }
}
