//! The `send` role: `kill -s` with two extras, `--value` (sigqueue) and `--count` (a burst).
//!
//! kill(2) and sigqueue(3) both only *queue* a signal on the target and return; they do not
//! wait for it to be handled. So a burst of `--count 100` standard signals may reach the
//! receiver as anything from 1 to 100 signals (those sent while one is still pending merge
//! into it), while 100 realtime signals are queued one by one and all arrive, in order.

use std::path::Path;
use std::process::ExitCode;

use nix::errno::Errno;

use crate::signals::{self, Sig};
use common::{Error, Result};

/// Send `count` signals to the process named by `pid` or by the pid file.
pub fn run(
    signal: &str,
    pid: Option<i32>,
    pid_file: Option<&Path>,
    value: Option<i32>,
    count: u32,
) -> Result<ExitCode> {
    let sig = Sig::parse(signal)?;
    let pid = match (pid, pid_file) {
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
