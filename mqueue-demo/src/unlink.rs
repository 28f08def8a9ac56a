//! `mqueue-demo unlink`: remove what a supervisor killed with -9 left behind, as TLPI's
//! `pmsg_unlink.c` removes a queue: its four queues (`mq_unlink`, or `msgctl(IPC_RMID)` with
//! `--sysv`), its workers' inboxes, its record (`shm_unlink`; the tasks it held are lost) and
//! its pid file. Refused while a supervisor serves the queue.

use std::process::ExitCode;

use common::cleanup::{Object, Unlink};
use common::pidfile::PidFile;
use common::{Result, say};
use nix::errno::Errno;

use crate::cli::QueueArg;
use crate::mq::{Access, Mq};
use crate::names::Names;
use crate::queue::{Finder, Flavor, Queue, Which};
use crate::record::Leftover;

/// `unlink`: remove what a supervisor killed with -9 left behind: its queues, its workers'
/// inboxes (named in its record, and, for POSIX, found in /dev/mqueue when it is mounted), its
/// record (with the tasks it held: they are lost, and the count says so) and its pid file.
/// Refused while a supervisor lives, from whatever runtime dir: it would go on serving queues
/// nobody can open any more. The record's lock is ours while we remove, so no supervisor
/// starts on these leftovers meanwhile.
pub fn run(arg: &QueueArg) -> Result<ExitCode> {
    let names = Names::new(&arg.name)?;
    let leftover = Leftover::claim(&names)?;
    let workers = leftover
        .as_ref()
        .map_or_else(Vec::new, |l| l.workers.clone());
    let mut removed = 0;
    if arg.flavor() == Flavor::Sysv {
        let mut queues = Vec::new();
        if let Ok(finder) = Finder::new(&names, Flavor::Sysv) {
            // Only queues that are still there and ours (checked with IPC_STAT).
            queues.extend(
                Which::ALL
                    .iter()
                    .filter_map(|&w| finder.open(w, Access::Read, true).ok()),
            );
        }
        let inboxes = workers
            .iter()
            .filter(|(_, id)| *id >= 0)
            .filter_map(|&(pid, id)| {
                crate::sysv::SysvQ::open(&names.inbox(pid), id, 1)
                    .ok()
                    .map(Queue::Sysv)
            });
        queues.extend(inboxes);
        for q in queues {
            q.remove()?;
            say!("removed {} (System V id)", q.name())?;
            removed += 1;
        }
        drop(Unlink::path(crate::sysv::ids_file(&names.tasks)?));
    } else {
        let mut all: Vec<String> = names.all().iter().map(|s| (*s).to_owned()).collect();
        all.extend(workers.iter().map(|&(pid, _)| names.inbox(pid)));
        all.extend(leftover_inboxes(&names));
        all.sort();
        all.dedup();
        for name in all {
            // Only our own: mq_unlink would remove another user's queue if the mode let us.
            match Mq::open(&name, Access::Read, true) {
                Ok(q) => drop(q),
                Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
                Err(e) => return Err(e),
            }
            Object::Mqueue(name.clone()).unlink()?;
            say!("removed {name}")?;
            removed += 1;
        }
    }
    if let Some(record) = leftover {
        let (name, tasks) = (record.name().to_owned(), record.tasks);
        record.remove()?;
        say!(
            "removed {name} (the record of the killed supervisor: {tasks} tasks it held are lost)"
        )?;
    }
    remove_pid_file(&names)?;
    say!("{removed} queues removed")?;
    Ok(ExitCode::SUCCESS)
}

/// The pid file a supervisor killed with -9 left in the runtime dir. Taking its lock proves
/// that no supervisor holds it (`common::pidfile`), and dropping it removes it, only if the
/// name still names the file we locked.
fn remove_pid_file(names: &Names) -> Result<()> {
    let path = names.pid_file()?;
    if std::fs::symlink_metadata(&path).is_ok() {
        drop(PidFile::create(&path)?);
        say!("removed {}", path.display())?;
    }
    Ok(())
}

/// Workers' inboxes (`NAME-w<pid>`) and reply queues (`NAME-r<pid>-<stamp>`) listed in
/// /dev/mqueue (empty if it is not mounted).
fn leftover_inboxes(names: &Names) -> Vec<String> {
    let Some(dir) = common::names::mqueue_listing() else {
        return Vec::new();
    };
    let inbox = |name: &str| {
        name.strip_prefix(&names.tasks)
            .and_then(|s| s.strip_prefix("-w"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|f| format!("/{f}"))
        .filter(|name| inbox(name) || names.is_reply(name))
        .collect()
}
