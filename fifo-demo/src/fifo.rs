//! Where the daemon's FIFO and pid file are, and what stands at the FIFO's path: shared by
//! every role that names the FIFO (`daemon`, `log`, `cleanup`, `path`).
//!
//! A FIFO lives in the filesystem, so anything can stand at its path: our FIFO, a stale one a
//! killed daemon left, another user's, a symlink, or the regular file that `echo hi > FIFO`
//! creates while no daemon runs. Every role vets the path the same way before it opens it
//! ([`existing_fifo`]), and asks the kernel, not a pid file, whether a reader is there
//! ([`has_reader`]).

use std::path::{Path, PathBuf};

use common::names::{self, Kind};
use common::{Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

/// The FIFO's name in the runtime directory when `--fifo` is not given.
pub const DEFAULT_FIFO: &str = "log.fifo";

/// The pid file that goes with `fifo`: `<fifo>.pid`, next to it.
pub fn pid_path_for(fifo: &Path) -> PathBuf {
    let mut name = fifo.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

/// The FIFO path: `--fifo`, or `log.fifo` in the runtime directory.
pub fn fifo_path(arg: Option<&Path>) -> Result<PathBuf> {
    match arg {
        Some(p) => Ok(p.to_owned()),
        None => names::runtime_path(DEFAULT_FIFO),
    }
}

/// [`names::existing`] for the FIFO at `fifo` (given as `--fifo arg`, if it was): true if a
/// FIFO of ours is there, false if nothing is. When a regular file stands in its place, the
/// error says how it got there and what to do, which differs with what the file holds.
pub fn existing_fifo(fifo: &Path, arg: Option<&Path>) -> Result<bool> {
    names::existing(fifo, Kind::Fifo).map_err(|e| match regular_file_size(fifo) {
        Some(size) => Error::msg(format!("{e}: {}", regular_file_advice(fifo, arg, size))),
        None => e,
    })
}

/// The size of the regular file of ours at `path`, if that is what stands there.
pub fn regular_file_size(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = path.symlink_metadata().ok()?;
    (meta.file_type().is_file() && meta.uid() == nix::unistd::geteuid().as_raw())
        .then_some(meta.len())
}

/// What to do about a regular file of `size` bytes where the FIFO should be.
pub fn regular_file_advice(fifo: &Path, arg: Option<&Path>, size: u64) -> String {
    let how = "a shell writer (`echo ... > FIFO`) run while no daemon was up creates one";
    // Quoted for the shell, so that the advice can be pasted as it is.
    let quote = |p: &Path| shell_words::quote(&p.to_string_lossy()).into_owned();
    let name = quote(fifo);
    if size == 0 {
        let cleanup = match arg {
            Some(p) => format!("fifo-demo cleanup --fifo {}", quote(p)),
            None => "fifo-demo cleanup".to_owned(),
        };
        format!("{how}; it is empty: remove it with `{cleanup}` (or rm {name})")
    } else {
        format!(
            "{how}; it holds {size} bytes, perhaps records meant for the log: \
             look at them (cat {name}), then rm {name}"
        )
    }
}

/// True if some process has the FIFO open for reading: only then does a non-blocking open
/// for writing succeed (otherwise it fails with ENXIO).
pub fn has_reader(fifo: &Path) -> Result<bool> {
    match open(
        fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Err(Errno::ENXIO) => {
            trace!(
                "open({}, O_WRONLY|O_NONBLOCK) -> ENXIO: no reader",
                fifo.display()
            );
            Ok(false)
        }
        Ok(_) => {
            trace!(
                "open({}, O_WRONLY|O_NONBLOCK) -> ok: it has a reader",
                fifo.display()
            );
            Ok(true)
        }
        Err(e) => Err(Error::sys("open", fifo.display(), e)),
    }
}
