//! The `cleanup` role: remove the FIFO and pid file that a daemon killed with -9 left behind,
//! like TLPI's `pshm_unlink`, a removal tool of its own. (A new daemon on the same path reuses
//! them anyway; this is for when no new daemon is wanted.)
//!
//! It takes the pid file's lock first, exactly as a daemon would: if a live daemon holds it,
//! nothing is removed. Holding the lock while removing the FIFO means no daemon can start on
//! that path half-way through. Dropping the lock guard then unlinks the pid file, still locked.

use std::io::Write;
use std::process::ExitCode;

use common::names::{self, Kind};
use common::pidfile::{self, PidFile};
use common::{Context, Error, Result, trace};

use crate::cli::CleanupArgs;
use crate::daemon::{fifo_path, has_reader, pid_path_for};

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
    // Refuses a symlink, a non-FIFO, another user's FIFO: those are not ours to remove.
    if names::existing(&fifo, Kind::Fifo)? {
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
