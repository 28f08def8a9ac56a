//! Process descriptors: `pidfd_open(2)` (Linux 5.3), the one way this workspace waits for a
//! process in `poll` beside other descriptors.
//!
//! A pid is only a number: once its process has exited and been reaped, the kernel may give
//! it to another process, and a `kill` or a check by pid then reaches a stranger. A pidfd
//! names one process for as long as the descriptor is open, and becomes readable when that
//! process exits, so it is also how to wait for a process that is not our child (which
//! `waitpid` cannot wait for): a server a client asked to stop, a supervisor its workers
//! watch.
//!
//! # Pitfalls
//!
//! - **Open it before the pid can be recycled.** For our own child that means before it is
//!   reaped ([`crate::child::Supervised`] opens it at once). For any other process (a pid read
//!   from a pid file), the pid may already be a stranger's when `pidfd_open` runs: check
//!   again *after* opening that the process is still the one meant (the pid file is still
//!   locked by it; it is still our parent), as mqueue-demo's workers do. From then on the
//!   descriptor pins it.
//! - **ESRCH** means no such process now: for a wait, "already gone".
//! - nix 0.32 has no wrapper, hence the raw system call, and the descriptor it returns is
//!   close-on-exec (every pidfd is), so children never inherit it.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// `pidfd_open(pid, 0)`: a descriptor that names process `pid` and becomes readable (POLLIN)
/// when it exits. ESRCH if there is no such process; ENOSYS on a kernel older than 5.3.
pub fn open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, touches no memory of ours, and returns a new
    // descriptor or -1 with errno set.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) })?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::EBADF)?;
    crate::trace!("pidfd_open({pid}) -> {fd}");
    // SAFETY: the kernel has just given us this descriptor (close-on-exec, as pidfds are);
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Wait up to `timeout` for process `pid` (any process, not only a child of ours) to exit:
/// true once it has (or if it was gone already), false if it still runs at the timeout.
/// It is not reaped here: a child of ours stays a zombie for its parent's `waitpid`.
pub fn wait_gone(pid: Pid, timeout: Duration) -> Result<bool> {
    let fd = match open(pid) {
        Ok(fd) => fd,
        Err(Errno::ESRCH) => return Ok(true),
        Err(e) => return Err(Error::sys("pidfd_open", pid, e)),
    };
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, crate::deadline::poll_timeout(left)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(Error::sys("poll", format!("pidfd of pid {pid}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn wait_gone_waits_for_an_exit_and_gives_up_on_a_runner() {
        let mut sleeper = Command::new("sleep").arg("300").spawn().unwrap();
        let pid = Pid::from_raw(i32::try_from(sleeper.id()).unwrap());
        assert!(!wait_gone(pid, Duration::from_millis(20)).unwrap());
        sleeper.kill().unwrap();
        // A zombie has exited: its pidfd is readable before anyone reaps it.
        assert!(wait_gone(pid, Duration::from_secs(30)).unwrap());
        sleeper.wait().unwrap();
    }
}
