//! `shm-demo destroy`: remove the database. A live server is asked to stop (SIGTERM, then
//! its pidfd polled until it has gone: it removes the database itself); a dead server's
//! leftover is removed here (`shm_unlink`, or `IPC_RMID` and the key file), and its watchers
//! woken, as a stopping server would.

use std::process::ExitCode;
use std::time::Duration;

use common::{Context, Error, Result, say, trace};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::cli::DbArgs;
use crate::db::Db;
use crate::segment;

/// Stop a live server (it removes the database itself), or remove a dead one's leftover.
pub fn run(args: &DbArgs) -> Result<ExitCode> {
    let target = args.target()?;
    let label = target.label();
    // Missing, or not ours (other owner or mode): refused by segment::open, with the reason.
    let region = segment::open(&target)?;
    // A damaged object of ours has no server to ask: it is removed all the same.
    let db = Db::attach(region).ok();
    let server = match db.as_ref().map(Db::creator) {
        Some((pid, true)) => Some(pid),
        _ => None,
    };
    if let Some(pid) = server {
        nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGTERM).ctx("kill", pid)?;
        trace!("kill({pid}, SIGTERM)");
        // Not our child: its pidfd tells when it has gone (common::pidfd).
        let limit = Duration::from_secs(10);
        if !common::pidfd::wait_gone(Pid::from_raw(pid), limit)? {
            return Err(Error::msg(format!(
                "server pid {pid} did not stop within {} s",
                limit.as_secs()
            )));
        }
        say!("stopped server pid {pid}; it removed {label}")?;
    } else {
        segment::remove(&target)?;
        // As a server does when it stops: wake the watchers, which exit.
        if let Some(db) = &db {
            db.mark_removed();
        }
        say!("removed {label}")?;
    }
    Ok(ExitCode::SUCCESS)
}
