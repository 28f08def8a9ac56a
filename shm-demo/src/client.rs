//! The client roles: put, get, del, list, stats, watch, destroy. Each maps the segment and
//! works in it directly; none sends a message to the server.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use common::out::escape;
use common::{Context, Error, Result, say, trace};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::unistd::Pid;

use crate::cli::{Command, DbArgs, PathObject};
use crate::db::{self, Db};
use crate::segment::{self, Target};

/// Map the database named by `args` and check its header.
pub fn open(args: &DbArgs) -> Result<(Db, Target)> {
    let target = Target::new(&args.name, args.sysv)?;
    let db = Db::attach(segment::open(&target)?)?;
    Ok((db, target))
}

/// Run one client role.
pub fn run(command: &Command) -> Result<ExitCode> {
    match command {
        Command::Put { db, key, value } => put(db, key, value),
        Command::Get { db, key } => get(db, key),
        Command::Del { db, key } => {
            let (mut db, _) = open(db)?;
            db.stop_mid_write = db::stop_hook();
            let found = db.lock()?.del(key.as_bytes())?;
            Ok(if found {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::List { db, values } => list(db, *values),
        Command::Stats { db } => {
            let (db, target) = open(db)?;
            say!("{}", stats_line(&db, &target).replace(", ", "\n"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch { db, key, count } => watch(db, key, *count),
        Command::Destroy { db } => destroy(db),
        Command::Path { db, object } => path(db, *object),
        Command::Server(_) | Command::Writer(_) | Command::Reader(_) | Command::Demo(_) => {
            unreachable!("main dispatches these roles itself")
        }
    }
}

fn put(args: &DbArgs, key: &OsStr, value: &OsStr) -> Result<ExitCode> {
    let (mut db, target) = open(args)?;
    let value = if value == "-" {
        // At most one byte over the limit: enough to know that it is over, without reading
        // an endless stdin into memory first (so its real length is not known).
        let max = db.geometry().value_max;
        let mut buf = Vec::new();
        std::io::stdin()
            .take(u64::from(max) + 1)
            .read_to_end(&mut buf)
            .ctx("read", "stdin")?;
        if buf.len() > max as usize {
            return Err(Error::msg(format!(
                "value on stdin is over {max} bytes, the limit in {} (server --value-max)",
                target.label()
            )));
        }
        buf
    } else {
        value.as_bytes().to_vec()
    };
    db.stop_mid_write = db::stop_hook();
    db.lock()?.put(key.as_bytes(), &value)?;
    trace!("put {} ({} bytes)", escape(key.as_bytes()), value.len());
    Ok(ExitCode::SUCCESS)
}

fn get(args: &DbArgs, key: &OsStr) -> Result<ExitCode> {
    let (db, _) = open(args)?;
    let mut value = Vec::new();
    let found = db.get(key.as_bytes(), &mut value)?;
    trace!(
        "get {}: seqlock read, no lock taken -> {}",
        escape(key.as_bytes()),
        if found {
            format!("{} bytes", value.len())
        } else {
            "not stored".to_owned()
        }
    );
    if !found {
        return Ok(ExitCode::FAILURE);
    }
    // The raw bytes, as stored: scripts capture them with $(...) or pipe them on.
    let mut out = std::io::stdout().lock();
    out.write_all(&value)
        .and_then(|()| out.flush())
        .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn list(args: &DbArgs, values: bool) -> Result<ExitCode> {
    let (db, _) = open(args)?;
    for (k, v) in db.list()? {
        if values {
            say!("{}\t{}", escape(&k), escape(&v))?;
        } else {
            say!("{}", escape(&k))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The stats as `name value` pairs joined by ", " (the server prints them on one line).
pub fn stats_line(db: &Db, target: &Target) -> String {
    let s = db.stats();
    let known = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let attached = known(segment::attached(target));
    let watchers = known(segment::watchers(target));
    format!(
        "records {}, slots {}, longest_probe {}, generation {}, server_pid {} ({}), attached {attached}, watchers {watchers}, key_max {}, value_max {}, bytes {}",
        s.used,
        s.slots,
        s.longest_probe,
        s.generation,
        s.creator_pid,
        if s.creator_alive { "running" } else { "gone" },
        s.key_max,
        s.value_max,
        s.total_size
    )
}

/// The signals that stop `watch`, and what it says on stderr before it exits 128 + N:
/// the line `common::error::finish` prints for any other role stopped by a signal.
const STOPS: [(Signal, &[u8]); 3] = [
    (Signal::SIGINT, b"shm-demo: interrupted by SIGINT\n"),
    (Signal::SIGTERM, b"shm-demo: interrupted by SIGTERM\n"),
    (Signal::SIGHUP, b"shm-demo: interrupted by SIGHUP\n"),
];

/// SIGINT, SIGTERM or SIGHUP during `watch`: say so and exit at once, with 128 + the
/// signal's number (`common::error`'s table).
///
/// Why exit from the handler: the futex sleep cannot be interrupted race-free by a flag. A
/// signal that lands between the check of the flag and the `FUTEX_WAIT` would leave the
/// watcher asleep until the next change (futex has no `pselect`-like signal mask), and with
/// SA_RESTART the wait would not even return. `write` and `_exit` are async-signal-safe, and
/// `watch` owns nothing to clean up: its mapping and its watchers' lock go with the process.
extern "C" fn leave(sig: libc::c_int) {
    let line = STOPS
        .iter()
        .find(|(s, _)| *s as libc::c_int == sig)
        .map_or(&b""[..], |(_, line)| line);
    let status = Signal::try_from(sig).map_or(128 + sig, |s| {
        libc::c_int::from(common::error::exit_status_for(s))
    });
    // SAFETY: write (of a static buffer) and _exit are async-signal-safe.
    unsafe {
        libc::write(libc::STDERR_FILENO, line.as_ptr().cast(), line.len());
        libc::_exit(status)
    };
}

fn watch(args: &DbArgs, key: &OsStr, count: Option<u64>) -> Result<ExitCode> {
    // First, so that a stop at any point ends it the same way. Each stop signal is blocked
    // while the handler runs: a second one does not interrupt the first one's line.
    let mut stops = SigSet::empty();
    for (sig, _) in STOPS {
        stops.add(sig);
    }
    let action = SigAction::new(SigHandler::Handler(leave), SaFlags::empty(), stops);
    for (sig, _) in STOPS {
        // SAFETY: `leave` only performs async-signal-safe operations.
        unsafe { sigaction(sig, &action) }.ctx("sigaction", sig.as_str())?;
    }
    let (db, target) = open(args)?;
    let key = key.as_bytes();
    let word = db.notify_word(key)?;
    // Counted among the watchers while this is open (see segment::watch_lock).
    let _counted = segment::watch_lock(&target)?;
    watch_loop(&db, &target, key, word, count)
}

fn watch_loop(
    db: &Db,
    target: &Target,
    key: &[u8],
    word: &AtomicU32,
    count: Option<u64>,
) -> Result<ExitCode> {
    let mut last = Vec::new();
    let mut present = db.get(key, &mut last)?;
    let mut announced = false;
    let mut seen = 0;
    let mut now = Vec::new();
    while count.is_none_or(|n| seen < n) {
        // Arm the word first, then read the value: a change after this point changes the
        // word, so the futex wait returns at once (EAGAIN) or is woken: it cannot be missed.
        // The same for the removal of the database (Db::mark_removed).
        let v = db::arm(word);
        if db.removed() {
            return Err(db.removed_error());
        }
        let is = db.get(key, &mut now)?;
        if is && (!present || now != last) {
            say!("{}", escape(&now))?;
            seen += 1;
            std::mem::swap(&mut last, &mut now);
            present = true;
            continue;
        }
        if !is && present {
            eprintln!("shm-demo watch: {:?} deleted", escape(key));
            present = false;
        }
        // Announced once the word is armed, not before: whoever waits for this line and then
        // changes the key (the demo does) is sure to find us in, or on our way into, the
        // futex wait below, and never racing ahead of it.
        if !announced {
            eprintln!(
                "shm-demo watch: watching {:?} in {} ({})",
                escape(key),
                target.label(),
                if present { "present" } else { "not stored yet" }
            );
            announced = true;
        }
        trace!(
            "futex(FUTEX_WAIT, {v:#x}) on the notify word of {:?}",
            escape(key)
        );
        match db::futex_wait(word, v) {
            Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("futex(FUTEX_WAIT)", target.label(), e)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `shm-demo path`: where the database's files live, as raw bytes (a name that is not UTF-8
/// still names the same file when a shell passes it on). The runtime directory is created
/// (0700) if needed, as a server would create it.
fn path(args: &DbArgs, wanted: Option<PathObject>) -> Result<ExitCode> {
    let target = Target::new(&args.name, args.sysv)?;
    let object = if target.sysv {
        target.key_path()?
    } else {
        std::path::PathBuf::from(format!("/dev/shm{}", target.name))
    };
    common::out::paths(
        &[
            (PathObject::Object, "object", &object),
            (PathObject::PidFile, "pid-file", &target.pid_path()?),
            (PathObject::Dir, "dir", &common::names::runtime_dir()?),
        ],
        wanted,
    )
}

/// Stop a live server (it removes the database itself), or remove a dead one's leftover.
fn destroy(args: &DbArgs) -> Result<ExitCode> {
    let target = Target::new(&args.name, args.sysv)?;
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
