//! The `send` role: `kill -s` with two extras, `--value` (sigqueue) and `--count` (a burst).
//!
//! What it shows: how a signal is sent, and that sending is not delivering. The calls:
//!
//! ```text
//! open(pid file, O_NONBLOCK); fstat     a regular file, or refused (with --pid-file)
//! read(pid); flock(LOCK_SH|LOCK_NB)     EWOULDBLOCK: a live daemon holds it; else stale
//! kill(pid, sig)                        --count times; or, with --value N:
//! sigqueue(pid, sig, N), sigqueue(pid, sig, N+1), ...
//! ```
//!
//! # Pitfalls
//!
//! - **A signal sent is not a signal handled.** kill(2) and sigqueue(3) only *queue* it on the
//!   target and return. So a burst of `--count 100` standard signals may reach the receiver as
//!   anything from 1 to 100 signals (those sent while one is still pending merge into it),
//!   while 100 realtime signals are queued one by one and all arrive, in order.
//! - **Pid 0 and negative pids are process groups** to kill(2): `--pid 0` would signal our own
//!   group, so only positive pids are accepted ([`signals::check_pid`]).
//! - **A stale pid file names someone else**: the pid of a daemon killed with -9 may have been
//!   reused. The file counts only while a live daemon holds its lock.

use std::process::ExitCode;

use nix::errno::Errno;

use crate::cli::SendArgs;
use crate::signals::{self, Sig};
use common::{Error, Result};

/// Send `count` signals to the process named by `pid` or by the pid file.
pub fn run(args: &SendArgs) -> Result<ExitCode> {
    let (value, count) = (args.value, args.count);
    let sig = Sig::parse(&args.signal)?;
    let pid = match (args.pid, args.pid_file.as_deref()) {
        (Some(p), _) => signals::check_pid(p)?,
        (None, Some(file)) => {
            // Refuse a FIFO or a device before common::pidfile::read opens the path: a FIFO
            // would block that open forever (see `crate::file`).
            drop(crate::file::open_regular(file, true)?);
            // Refuses a stale file: once its daemon is gone, the pid may belong to a stranger.
            common::pidfile::read(file)?
        }
        (None, None) => return Err(Error::Usage("give --pid PID or --pid-file FILE".into())),
    };
    if let Some(first) = value {
        // The values first, first+1, ..., first+count-1 must all fit in a C int.
        if i64::from(first) + i64::from(count) - 1 > i64::from(i32::MAX) {
            return Err(Error::Usage(format!(
                "--value {first} --count {count}: the last value would not fit in an int"
            )));
        }
    }
    for i in 0..count {
        let res = match value {
            // Cannot overflow: checked above.
            Some(first) => signals::sigqueue(pid, sig, first + i as i32),
            None => signals::kill(pid, sig),
        };
        if let Err(e) = res {
            if e.errno() == Some(Errno::EAGAIN) {
                return Err(Error::msg(format!(
                    "sigqueue {pid}: queue full after {i} signals (RLIMIT_SIGPENDING reached: \
                     the receiver is not reading them)"
                )));
            }
            return Err(e);
        }
    }
    Ok(ExitCode::SUCCESS)
}
