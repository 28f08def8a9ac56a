//! `mqueue-demo purge`: receive and discard every message waiting in the task, result and
//! dead-letter queues (`mq_receive` until EAGAIN). A supervisor may go on running meanwhile:
//! what its workers hold, and what its record holds, is not in those queues.

use std::process::ExitCode;

use common::{Result, say};
use nix::errno::Errno;

use crate::cli::QueueArg;
use crate::mq::Access;
use crate::names::Names;
use crate::queue::{Finder, Which};

/// `purge`: receive and discard everything waiting in the task, result and dead-letter
/// queues. The supervisor may go on running: its workers keep what they hold.
pub fn run(arg: &QueueArg) -> Result<ExitCode> {
    let names = Names::new(&arg.name)?;
    let finder = Finder::new(&names, arg.flavor())?;
    let mut buf = Vec::new();
    for which in [Which::Tasks, Which::Results, Which::Dead] {
        let q = match finder.open(which, Access::Read, true) {
            Ok(q) => q,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let mut n = 0;
        while q.receive(&mut buf).is_ok() {
            n += 1;
        }
        say!("purged {n} messages from {}", q.name())?;
    }
    Ok(ExitCode::SUCCESS)
}
