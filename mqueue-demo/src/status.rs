//! `mqueue-demo status`: every queue's depth and limits (`mq_getattr`, or `msgctl(IPC_STAT)`
//! with `--sysv`), the supervisor's pid (the holder of its record's lock), what its record
//! holds, and the kernel's own view of each queue (`/dev/mqueue/NAME`, where the mqueue
//! filesystem is mounted). Opening a queue for reading takes nothing from it.

use std::process::ExitCode;

use common::{Result, say};
use nix::errno::Errno;

use crate::cli::QueueArg;
use crate::mq::Access;
use crate::names::Names;
use crate::queue::{Finder, Flavor, Queue, Which};

/// Where Linux shows queues as files, when the mqueue filesystem is mounted there.
pub const MQUEUE_DIR: &str = "/dev/mqueue";

/// `status`: the depth and limits of each queue (`mq_getattr`, or `IPC_STAT` with `--sysv`),
/// the supervisor's pid, what its record holds, and the kernel's own view.
pub fn run(arg: &QueueArg) -> Result<ExitCode> {
    let names = Names::new(&arg.name)?;
    match names.supervisor() {
        Ok(pid) => say!("supervisor: pid {pid}")?,
        Err(_) => say!("supervisor: none running for {}", names.tasks)?,
    }
    let finder = match Finder::new(&names, arg.flavor()) {
        Ok(f) => f,
        Err(e) => {
            say!("{e}")?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    for which in Which::ALL {
        let name = finder.name(which);
        // Opening for reading takes nothing from the queue; the attributes are only read.
        match finder.open(which, Access::Read, true) {
            Ok(Queue::Posix(q)) => {
                let a = q.attr()?;
                let kernel = std::fs::read_to_string(format!("{MQUEUE_DIR}{name}"))
                    .map(|s| format!("; {MQUEUE_DIR}{name}: {}", s.trim()))
                    .unwrap_or_default();
                say!(
                    "{name}: {} of {} messages waiting, at most {} bytes each{kernel}",
                    a.curmsgs(),
                    a.maxmsg(),
                    a.msgsize()
                )?;
            }
            Ok(Queue::Sysv(q)) => {
                let (n, qbytes, cbytes) = q.stat()?;
                say!(
                    "{name}: {n} messages waiting ({cbytes} of {qbytes} bytes); System V key \
                     0x{:08x}, id {} (ipcs -q -i {})",
                    q.key(),
                    q.id(),
                    q.id()
                )?;
            }
            Err(e) if e.errno() == Some(Errno::ENOENT) => say!("{name}: does not exist")?,
            Err(e) => say!("{name}: {e}")?,
        }
    }
    match crate::record::census_of(&names) {
        Ok(Some((tasks, workers))) => say!(
            "{}: {tasks} tasks held by the supervisor (in workers' hands, waiting for one, or \
             answered, the result waiting for room), {workers} workers known",
            names.record
        )?,
        Ok(None) => say!("{}: does not exist", names.record)?,
        Err(e) => say!("{}: {e}", names.record)?,
    }
    if arg.flavor() == Flavor::Posix {
        if let (Some(max), Some(size)) =
            (crate::mq::limit("msg_max"), crate::mq::limit("msgsize_max"))
        {
            say!(
                "limits ({}): msg_max {max}, msgsize_max {size} (root may exceed them)",
                crate::mq::LIMITS_DIR
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
