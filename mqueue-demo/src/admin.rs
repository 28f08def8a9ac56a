//! `status`, `purge`, `unlink`: looking at the queues and tidying them, by name.

use std::process::ExitCode;

use common::cleanup::{Object, Unlink};
use common::pidfile::PidFile;
use common::{Result, say};
use nix::errno::Errno;

use crate::cli::{PathArgs, PathObject, QueueArg};
use crate::mq::{Access, Mq};
use crate::names::Names;
use crate::queue::{Finder, Flavor, Queue, Which};
use crate::record::Leftover;

/// Where Linux shows queues as files, when the mqueue filesystem is mounted there.
pub const MQUEUE_DIR: &str = "/dev/mqueue";

const ALL: [Which; 4] = [Which::Tasks, Which::Results, Which::Dead, Which::Done];

/// `status`: the depth and limits of each queue (`mq_getattr`, or `IPC_STAT` with `--sysv`),
/// the supervisor's pid, what its record holds, and the kernel's own view.
pub fn status(arg: &QueueArg) -> Result<ExitCode> {
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
    for which in ALL {
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

/// `purge`: receive and discard everything waiting in the task, result and dead-letter
/// queues. The supervisor may go on running: its workers keep what they hold.
pub fn purge(arg: &QueueArg) -> Result<ExitCode> {
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

/// `unlink`: remove what a supervisor killed with -9 left behind: its queues, its workers'
/// inboxes (named in its record, and, for POSIX, found in /dev/mqueue when it is mounted), its
/// record (with the tasks it held: they are lost, and the count says so) and its pid file.
/// Refused while a supervisor lives, from whatever runtime dir: it would go on serving queues
/// nobody can open any more. The record's lock is ours while we remove, so no supervisor
/// starts on these leftovers meanwhile.
pub fn unlink(arg: &QueueArg) -> Result<ExitCode> {
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
                ALL.iter()
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

/// `mqueue-demo path`: where the queues (as `/dev/mqueue` shows them, when it is mounted),
/// the supervisor's record (in `/dev/shm`), its pid file and the runtime dir are ([`common::out::paths`]).
pub fn path(args: &PathArgs) -> Result<ExitCode> {
    let names = Names::new(&args.name)?;
    let in_dev = |name: &str| std::path::PathBuf::from(format!("/dev/mqueue{name}"));
    common::out::paths(
        &[
            (PathObject::Tasks, "tasks", &in_dev(&names.tasks)),
            (PathObject::Results, "results", &in_dev(&names.results)),
            (PathObject::Dead, "dead", &in_dev(&names.dead)),
            (PathObject::Done, "done", &in_dev(&names.done)),
            (
                PathObject::Record,
                "record",
                &std::path::PathBuf::from(format!("/dev/shm{}", names.record)),
            ),
            (PathObject::PidFile, "pid-file", &names.pid_file()?),
            (PathObject::Dir, "dir", &common::names::runtime_dir()?),
        ],
        args.object,
    )
}
