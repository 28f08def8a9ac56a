//! `status`, `purge`, `unlink`: looking at the queues and tidying them, by name.

use std::process::ExitCode;

use common::cleanup::{Object, Unlink};
use common::pidfile::PidFile;
use common::{Error, Result, say};
use nix::errno::Errno;

use crate::cli::{PathArgs, PathObject, QueueArg};
use crate::mq::{Access, Mq};
use crate::names::Names;
use crate::queue::{Finder, Queue, Which};

/// Where Linux shows queues as files, when the mqueue filesystem is mounted there.
pub const MQUEUE_DIR: &str = "/dev/mqueue";

const ALL: [Which; 4] = [Which::Tasks, Which::Results, Which::Dead, Which::Done];

/// `status`: the depth and limits of each queue (`mq_getattr`, or `IPC_STAT` with `--sysv`),
/// the supervisor's pid, and the kernel's own view.
pub fn status(arg: &QueueArg) -> Result<ExitCode> {
    let names = Names::new(&arg.name)?;
    match names.supervisor() {
        Ok(pid) => say!("supervisor: pid {pid}")?,
        Err(_) => say!("supervisor: none running for {}", names.tasks)?,
    }
    let finder = match Finder::new(&names, arg.sysv) {
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
    if !arg.sysv {
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
    let finder = Finder::new(&names, arg.sysv)?;
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

/// `unlink`: remove the queues a supervisor killed with -9 left behind, and its workers'
/// POSIX inboxes (found in /dev/mqueue when it is mounted). Refused while a supervisor lives:
/// it would go on serving queues nobody can open any more.
pub fn unlink(arg: &QueueArg) -> Result<ExitCode> {
    let names = Names::new(&arg.name)?;
    if let Ok(pid) = names.supervisor() {
        return Err(Error::msg(format!(
            "a supervisor (pid {pid}) serves {}; stop it (kill {pid}) and it removes its queues",
            names.tasks
        )));
    }
    let mut removed = 0;
    if arg.sysv {
        let finder = Finder::new(&names, true)?;
        for which in ALL {
            // Only queues that are still there and ours (checked with IPC_STAT).
            if let Ok(q) = finder.open(which, Access::Read, true) {
                q.remove()?;
                say!("removed {} (System V id)", q.name())?;
                removed += 1;
            }
        }
        drop(Unlink::path(crate::sysv::ids_file(&names.tasks)?));
        remove_pid_file(&names)?;
        say!("{removed} queues removed (a killed worker's inbox: make clean-ipc)")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut all: Vec<String> = names.all().iter().map(|s| (*s).to_owned()).collect();
    all.extend(leftover_inboxes(&names));
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

/// `NAME-w<pid>` and `NAME-r<pid>` queues listed in /dev/mqueue (empty if it is not mounted).
fn leftover_inboxes(names: &Names) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(MQUEUE_DIR) else {
        return Vec::new();
    };
    let prefix = &names.tasks[1..];
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| {
            f.strip_prefix(prefix)
                .and_then(|s| s.strip_prefix("-w").or_else(|| s.strip_prefix("-r")))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|f| format!("/{f}"))
        .collect()
}

/// `mqueue-demo path`: where the queues (as `/dev/mqueue` shows them, when it is mounted),
/// the supervisor's pid file and the runtime dir are ([`common::out::paths`]).
pub fn path(args: &PathArgs) -> Result<ExitCode> {
    let names = Names::new(&args.name)?;
    let in_dev = |name: &str| std::path::PathBuf::from(format!("/dev/mqueue{name}"));
    common::out::paths(
        &[
            (PathObject::Tasks, "tasks", &in_dev(&names.tasks)),
            (PathObject::Results, "results", &in_dev(&names.results)),
            (PathObject::Dead, "dead", &in_dev(&names.dead)),
            (PathObject::Done, "done", &in_dev(&names.done)),
            (PathObject::PidFile, "pid-file", &names.pid_file()?),
            (PathObject::Dir, "dir", &common::names::runtime_dir()?),
        ],
        args.object,
    )
}
