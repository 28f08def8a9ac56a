//! The `cleanup` role: remove the FIFO and pid file that a daemon killed with -9 left behind,
//! like TLPI's `pshm_unlink`, a removal tool of its own. (A new daemon on the same path reuses
//! them anyway; this is for when no new daemon is wanted.)
//!
//! It takes the pid file's lock first, exactly as a daemon would: if a live daemon holds it,
//! nothing is removed. Holding the lock while removing the FIFO means no daemon can start on
//! that path half-way through. Dropping the lock guard then unlinks the pid file, still locked.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use common::pidfile::{self, PidFile};
use common::{Context, Error, Result, trace};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat, lstat};

use crate::cli::CleanupArgs;
use crate::daemon::{
    existing_fifo, fifo_path, has_reader, pid_path_for, regular_file_advice, regular_file_size,
};

/// Run the `cleanup` role.
pub fn run(args: &CleanupArgs) -> Result<ExitCode> {
    let fifo = fifo_path(args.fifo.as_deref())?;
    let pid_path = args.pid_file.clone().unwrap_or_else(|| pid_path_for(&fifo));
    let had_pid_file = pid_path.symlink_metadata().is_ok();
    let lock = PidFile::create(&pid_path).map_err(|e| match pidfile::read(&pid_path) {
        Ok(pid) => Error::msg(format!(
            "a log daemon (pid {pid}) is still reading {}; stop it with kill {pid}",
            fifo.display()
        )),
        Err(_) => e,
    })?;
    let mut removed = Vec::new();
    // A regular file of ours where the FIFO should be: what `echo ... > FIFO` leaves behind
    // when no daemon was reading. Empty, it is removed; with bytes in it, they may be records
    // somebody meant for the log, so it is refused with what to do.
    if let Some(size) = regular_file_size(&fifo) {
        let advice = regular_file_advice(&fifo, args.fifo.as_deref(), size);
        if size > 0 {
            return Err(Error::msg(format!(
                "{}: is a regular file, not a FIFO; not removed: {advice}",
                fifo.display()
            )));
        }
        remove_empty_file(&fifo)?;
        removed.push(format!("{} (an empty regular file)", fifo.display()));
    // Refuses a symlink, a non-FIFO, another user's FIFO: those are not ours to remove.
    } else if existing_fifo(&fifo, args.fifo.as_deref())? {
        if has_reader(&fifo)? {
            return Err(Error::msg(format!(
                "{}: a process is reading it (a daemon with another pid file?); not removed",
                fifo.display()
            )));
        }
        nix::unistd::unlink(&fifo).ctx("unlink", fifo.display())?;
        trace!("unlink({})", fifo.display());
        removed.push(fifo.display().to_string());
    }
    drop(lock);
    if had_pid_file {
        removed.push(pid_path.display().to_string());
    }
    let text = if removed.is_empty() {
        format!("nothing to remove at {}\n", fifo.display())
    } else {
        format!("removed {}\n", removed.join(" and "))
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Remove the regular file at `path` if it is ours and empty, checked on the file itself.
///
/// `open` (never following a symlink) and `fstat` decide, not the name: what counts is the
/// file we hold. The name must still lead to it when we unlink it. A shell writer could still
/// append to it in the instant between that check and the unlink (a writer takes no lock); if
/// one did, the file is gone with its bytes, and we say so rather than claim it was empty.
fn remove_empty_file(path: &Path) -> Result<()> {
    let fd = open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", path.display())?;
    let st = fstat(&fd).ctx("fstat", path.display())?;
    let ours = st.st_uid == nix::unistd::geteuid().as_raw();
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || !ours || st.st_size != 0 {
        return Err(Error::msg(format!(
            "{}: changed while being looked at; not removed",
            path.display()
        )));
    }
    let named = lstat(path).ctx("lstat", path.display())?;
    if (named.st_dev, named.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Error::msg(format!(
            "{}: replaced while being looked at; not removed",
            path.display()
        )));
    }
    nix::unistd::unlink(path).ctx("unlink", path.display())?;
    trace!("unlink({}) (an empty regular file)", path.display());
    let after = fstat(&fd).ctx("fstat", path.display())?;
    if after.st_size != 0 {
        return Err(Error::msg(format!(
            "{}: removed, but a writer put {} bytes in it as it was being removed",
            path.display(),
            after.st_size
        )));
    }
    Ok(())
}
