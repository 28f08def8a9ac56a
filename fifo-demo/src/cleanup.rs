//! The `cleanup` role: remove the FIFO and pid file that a daemon killed with -9 left behind,
//! like TLPI's `pshm_unlink`, a removal tool of its own. (A new daemon on the same path reuses
//! them anyway; this is for when no new daemon is wanted.)
//!
//! It takes the pid file's lock first, exactly as a daemon would: if a live daemon holds it,
//! nothing is removed. Holding the lock while removing the FIFO means no daemon can start on
//! that path half-way through. Dropping the lock guard then unlinks the pid file, still locked.
//!
//! It also removes what `fifo-demo demo` runs left when they died without cleaning up (see
//! [`sweep_dead_runs`]), which the next demo does too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::names::{self, Kind};
use common::pidfile::{self, PidFile};
use common::{Context, Error, Result, trace};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, fstat, lstat};

use crate::cli::CleanupArgs;
use crate::fifo::{
    existing_fifo, fifo_path, has_reader, pid_path_for, regular_file_advice, regular_file_size,
};

/// Run the `cleanup` role.
pub fn run(args: &CleanupArgs) -> Result<ExitCode> {
    let fifo = fifo_path(args.fifo.as_deref())?;
    let pid_path = args.pid_file.clone().unwrap_or_else(|| pid_path_for(&fifo));
    let removed = remove_fifo(&fifo, args.fifo.as_deref(), &pid_path)?;
    let mut text = if removed.is_empty() {
        format!("nothing to remove at {}\n", fifo.display())
    } else {
        format!("removed {}\n", removed.join(" and "))
    };
    let swept = sweep_dead_runs(&names::runtime_dir()?)?;
    if !swept.is_empty() {
        text.push_str(&format!("{}\n", swept_line(&swept)));
    }
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Remove the FIFO at `fifo` (given as `--fifo arg`, if it was) and its pid file, unless a
/// live daemon holds that; what was removed.
fn remove_fifo(fifo: &Path, arg: Option<&Path>, pid_path: &Path) -> Result<Vec<String>> {
    let had_pid_file = pid_path.symlink_metadata().is_ok();
    let lock = PidFile::create(pid_path).map_err(|e| match pidfile::read(pid_path) {
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
    if let Some(size) = regular_file_size(fifo) {
        let advice = regular_file_advice(fifo, arg, size);
        if size > 0 {
            return Err(Error::msg(format!(
                "{}: is a regular file, not a FIFO; not removed: {advice}",
                fifo.display()
            )));
        }
        remove_empty_file(fifo)?;
        removed.push(format!("{} (an empty regular file)", fifo.display()));
    // Refuses a symlink, a non-FIFO, another user's FIFO: those are not ours to remove.
    } else if existing_fifo(fifo, arg)? {
        if has_reader(fifo)? {
            return Err(Error::msg(format!(
                "{}: a process is reading it (a daemon with another pid file?); not removed",
                fifo.display()
            )));
        }
        nix::unistd::unlink(fifo).ctx("unlink", fifo.display())?;
        trace!("unlink({})", fifo.display());
        removed.push(fifo.display().to_string());
    }
    drop(lock);
    if had_pid_file {
        removed.push(pid_path.display().to_string());
    }
    Ok(removed)
}

/// The lock file of the demo run `tag` (`names::unique("fifo-demo")`): `<tag>.pid` in the
/// runtime dir, locked for as long as the run lives.
pub fn run_lock(dir: &Path, tag: &str) -> PathBuf {
    dir.join(format!("{tag}.pid"))
}

/// The tag of a demo run's lock file name, `fifo-demo-<pid>-<n>-<5 hex digits>.pid`; None for
/// any other name (a daemon's `<tag>.fifo.pid` included). `make clean-ipc` matches the same
/// pattern (common/clean-ipc.sh).
fn run_tag(file_name: &str) -> Option<&str> {
    let tag = file_name.strip_suffix(".pid")?;
    let parts: Vec<&str> = tag.strip_prefix("fifo-demo-")?.split('-').collect();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match parts[..] {
        [pid, n, t] if digits(pid) && digits(n) && t.len() == 5 => t
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            .then_some(tag),
        _ => None,
    }
}

/// Remove what `fifo-demo demo` runs left in `dir` when they died without cleaning up (a
/// second Ctrl-C exits at once, and SIGKILL), and return the paths removed.
///
/// Each run holds its lock file (see [`run_lock`]) for as long as it lives, so a run whose
/// lock can be taken (and that has written its pid in it) is gone: its log files `<tag>.log`
/// and `<tag>.log.1` are removed, then its FIFO and the FIFO's pid file if its daemon died
/// too (normally the daemon removes those itself: it gets SIGTERM when the demo dies), then
/// the lock file. Taking the lock first also keeps two sweeps (two demos starting at once)
/// from working on the same run. Logs kept on purpose (`--keep`, a failed check) have no lock
/// file beside them and stay.
pub fn sweep_dead_runs(dir: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).ctx("opendir", dir.display())? {
        let entry = entry.ctx("readdir", dir.display())?;
        let name = entry.file_name();
        let Some(tag) = name.to_str().and_then(run_tag) else {
            continue;
        };
        // Empty: a run is creating it this instant (it writes its pid only once it holds the
        // lock), and taking the lock from under it would make it fail to start. A dead run's
        // lock always holds a pid.
        if entry.metadata().is_ok_and(|m| m.len() == 0) {
            continue;
        }
        // Refused: the run lives (or the file is not a lock of ours); not ours to touch.
        let Ok(lock) = PidFile::create(&entry.path()) else {
            continue;
        };
        for log in [format!("{tag}.log"), format!("{tag}.log.1")] {
            let log = dir.join(log);
            // Only a regular file of ours (never through a symlink).
            if matches!(names::existing(&log, Kind::File), Ok(true)) {
                nix::unistd::unlink(&log).ctx("unlink", log.display())?;
                trace!("unlink({}) (a log of a dead demo run)", log.display());
                removed.push(log.display().to_string());
            }
        }
        let fifo = dir.join(format!("{tag}.fifo"));
        let fifo_pid = pid_path_for(&fifo);
        if fifo.symlink_metadata().is_ok() || fifo_pid.symlink_metadata().is_ok() {
            // An error here means its daemon still runs (it stops on the SIGTERM the demo's
            // death sent it, and removes both itself) or something else stands there: left
            // alone either way.
            if let Ok(mut gone) = remove_fifo(&fifo, Some(&fifo), &fifo_pid) {
                removed.append(&mut gone);
            }
        }
        drop(lock);
        removed.push(entry.path().display().to_string());
    }
    Ok(removed)
}

/// The line that says what [`sweep_dead_runs`] removed.
pub fn swept_line(removed: &[String]) -> String {
    format!(
        "removed what a demo run that died before cleaning up left: {}",
        removed.join(" ")
    )
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
