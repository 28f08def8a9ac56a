//! The server: create the database (or adopt a dead server's), keep it while clients use it
//! directly, save and remove it on SIGTERM/SIGINT.
//!
//! The server takes no part in reads or writes: clients map the segment and work in it. Its
//! jobs are the ones that need one owner: create the object and lay out the header, decide
//! what to do with an object found at the name, load and save snapshots, report on SIGUSR1,
//! and remove the object when it stops. Start-up, in order:
//!
//! 1. signal handlers first (SIGINT/SIGTERM end the loop; SIGUSR1 asks for stats), before
//!    anything exists that they should clean up;
//! 2. the pid file's `flock`: a live server on this name (in this runtime dir) is refused;
//! 3. `O_CREAT|O_EXCL`: create, or learn that something is already there, and then vet it:
//!    not ours or not 0600 → refused; a header that does not check out → refused (or
//!    discarded with `--fresh`); a creator that is alive (pid *and* start time) → refused; a
//!    dead creator's → adopted, after the mutex checks out (a writer that died holding it is
//!    repaired now);
//! 4. `--load`, then the details on stderr and the readiness line on stdout, `ready: pid N
//!    shm /ipc-demo-db` (`sysv-shm` with `--sysv`; `common::lifecycle`: also `READY=1` to
//!    `$NOTIFY_SOCKET` when a service manager set it), then sleep in `poll` until a signal.
//!
//! A stop (SIGTERM/SIGINT/SIGHUP) removes the names first (the object, the pid file), says
//! `STOPPING=1` to a service manager, then saves if asked and exits 0.
//!
//! # Pitfalls
//!
//! - A server asleep in a write to a stderr nobody drains would not see its SIGTERM
//!   (SA_RESTART restarts the write), and a second one would exit at once, leaving the
//!   database behind: status lines go through `common::out::Output`, which never blocks
//!   (lines that find no room wait in its backlog, polled for `POLLOUT` beside the signal
//!   pipes, then are dropped and counted).
//! - A slow `--save` after a stop: the names are removed first, so a second signal, which
//!   exits at once, leaves nothing behind ([`run`]).
//! - A save that waits for the writers' mutex held by a stopped writer would wait in vain:
//!   the committed records are saved without it ([`crate::db::Db::try_lock`]).
//! - Two servers adopting one leftover at once (from two runtime dirs, so their pid files
//!   never meet): the creator is checked again, and claimed, under the writers' mutex
//!   ([`open_or_adopt`]).

use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;

use common::cleanup::{Object, Shutdown, Unlink};
use common::out::Output;
use common::pidfile::{self, PidFile};
use common::{Context, Error, Result, tell, trace};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::cli::ServerArgs;
use crate::db::Db;
use crate::layout::{self, Geometry};
use crate::segment::{self, Flavor, Target};
use crate::snapshot;

/// Removes the database: at the start of a stop ([`Remove::now`]), or when dropped on an
/// early return. `shm_unlink` through common's guard, or `IPC_RMID` and the key file for SysV.
struct Remove {
    /// POSIX: common's guard calls `shm_unlink` when it drops with us.
    posix: Option<Unlink>,
    sysv: Option<Target>,
}

impl Remove {
    fn new(target: &Target) -> Remove {
        match target.flavor {
            Flavor::Posix => Remove {
                posix: Some(Unlink::new(Object::Shm(target.name.clone()))),
                sysv: None,
            },
            Flavor::Sysv => Remove {
                posix: None,
                sysv: Some(target.clone()),
            },
        }
    }

    /// Remove the name now. Our mapping stays valid (a POSIX object lives on while mapped, a
    /// SysV segment marked for removal until its last detach), so a `--save` can still read
    /// it; clients that start from now on find no database, as they should.
    fn now(&mut self) -> Result<()> {
        if let Some(guard) = self.posix.take() {
            let object = guard.keep();
            object.unlink()?;
            trace!("shm_unlink({object})");
        }
        if let Some(t) = self.sysv.take() {
            segment::remove(&t)?;
        }
        Ok(())
    }
}

impl Drop for Remove {
    fn drop(&mut self) {
        if let Some(t) = &self.sysv {
            if let Err(e) = segment::remove(t) {
                eprintln!("warning: {e}");
            }
        }
    }
}

/// Run the server until SIGTERM or SIGINT.
pub fn run(args: &ServerArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    let usr1 = Usr1::install()?;
    let mut out = Output::stderr();
    let target = args.db.target()?;
    let pid_path = match &args.pid_file {
        Some(path) => path.clone(),
        None => target.pid_path()?,
    };
    let pid_file = PidFile::create(&pid_path).map_err(|e| match pidfile::read(&pid_path) {
        Ok(pid) => Error::msg(format!(
            "a server (pid {pid}) already serves {}; refusing to start a second one",
            target.label()
        )),
        Err(_) => e,
    })?;
    let geo = Geometry::new(args.slots, layout::KEY_MAX, args.value_max)?;
    let (db, how) = open_or_adopt(&target, geo, args.fresh, &mut out)?;
    // From here the object is ours to remove, however we leave.
    let mut remove = Remove::new(&target);

    if let Some(path) = &args.load {
        let records = snapshot::load(path, db.geometry())?;
        let mut w = db.lock()?;
        for (k, v) in &records {
            w.put(k, v)?;
        }
        drop(w);
        tell!(
            out,
            "loaded {} records from {}",
            records.len(),
            path.display()
        )?;
    }
    // The details for people on stderr, then the one readiness line on stdout (see
    // common::lifecycle): clients that start from now on find the database.
    let g = db.geometry();
    tell!(
        out,
        "shm-demo server: pid {} serves {} ({how}; {} slots, key max {}, value max {}, {} \
         bytes), pid file {}",
        std::process::id(),
        target.label(),
        g.slots,
        g.key_max,
        g.value_max,
        g.total_size,
        pid_file.path().display()
    )?;
    let name_arg = if args.db.name == "/ipc-demo-db" {
        String::new()
    } else {
        format!(" --name {}", args.db.name)
    };
    let (sysv_arg, kind) = match target.flavor {
        Flavor::Posix => ("", "shm"),
        Flavor::Sysv => (" --sysv", "sysv-shm"),
    };
    tell!(
        out,
        "try: shm-demo put{name_arg}{sysv_arg} greeting hello; \
         shm-demo get{name_arg}{sysv_arg} greeting   (stop with kill {})",
        std::process::id()
    )?;
    match common::lifecycle::ready(format_args!("{kind} {}", target.name)) {
        // A stop came while a stalled stdout held the line back: the loop sees it at once.
        Ok(()) | Err(Error::Interrupted(_)) => {}
        Err(e) => return Err(e),
    }

    while !shutdown.requested() {
        // No timeout: the server has nothing to do until a signal arrives (clients never talk
        // to it) or stderr has room for lines that wait. The self-pipes wake the poll, which
        // SA_RESTART would not.
        let mut fds = vec![
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
            PollFd::new(usr1.read.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(
            out.waiting_fd()
                .map(|fd| PollFd::new(fd, PollFlags::POLLOUT)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", "signal pipes", e)),
        }
        let room = fds
            .get(2)
            .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()));
        drop(fds);
        if room {
            out.flush()?;
        }
        if usr1.take() {
            tell!(out, "stats: {}", crate::stats::line(&db, &target))?;
        }
    }

    // The stop. The names go first (the object's and the pid file's; the lock on the pid
    // file stays ours until exit): the save below may wait up to LOCK_PATIENCE for a running
    // writer, and a second SIGTERM/SIGINT meanwhile exits at once, running no destructor. Our
    // mapping stays valid for the save.
    remove.now()?;
    pid_file.unlink();
    // Watchers exit, writers refuse: what they would write now nobody would ever read. The
    // save below is then the last word.
    db.mark_removed();
    common::lifecycle::stopping();
    let mut saved = String::new();
    if let Some(path) = &args.save {
        // Under the mutex when it can be had, so that the snapshot is one point in time
        // (readers carry on). A writer stopped holding it (or gone without releasing it)
        // would make us wait in vain, and the object's name is already gone: then what is
        // committed is saved without the mutex, the record being written as it was before.
        let records = match db.try_lock()? {
            Some(writer) => {
                let records = db.list()?;
                drop(writer);
                records
            }
            None => {
                tell!(
                    out,
                    "the writers' mutex is held by {}: saving the committed records without it",
                    db.holder()
                )?;
                db.committed()?
            }
        };
        snapshot::save(path, &records)?;
        saved = format!("saved {} records to {}; ", records.len(), path.display());
    }
    let sig = shutdown.signal().map_or("signal", |s| s.as_str());
    let generation = db.stats().generation;
    drop(db);
    tell!(
        out,
        "{sig}: {saved}generation {generation}; removed {} and {}",
        target.label(),
        pid_path.display()
    )?;
    drop(pid_file);
    // At most DRAIN for a stalled reader; a second signal meanwhile exits at once.
    out.drain(None)?;
    Ok(ExitCode::SUCCESS)
}

/// Create the database, or decide what to do with what is already at the name (see the
/// module docs). Returns the database and how we came by it.
fn open_or_adopt(
    target: &Target,
    geo: Geometry,
    fresh: bool,
    out: &mut Output,
) -> Result<(Db, String)> {
    let label = target.label();
    // Twice at most: a leftover discarded with --fresh makes room for one more try.
    for _ in 0..2 {
        if let Some(region) = segment::create(target, geo.total_size)? {
            return Ok((Db::init(region, geo)?, "created".into()));
        }
        // Something is there. segment::open refuses another owner, another mode, a size
        // smaller than a header: those are never ours to adopt or discard.
        let region = segment::open(target)?;
        let db = match Db::attach(region) {
            Ok(db) => db,
            Err(e) if fresh => {
                tell!(out, "discarding {label}: {e}")?;
                segment::remove(target)?;
                continue;
            }
            Err(e) => {
                return Err(Error::msg(format!(
                    "{e}; remove it with `shm-demo destroy` or start with --fresh"
                )));
            }
        };
        let (pid, alive) = db.creator();
        if alive {
            return Err(Error::msg(format!(
                "{label}: its server (pid {pid}) is still running; refusing to take it over"
            )));
        }
        if fresh {
            tell!(out, "discarding the database left by pid {pid} (--fresh)")?;
            drop(db);
            segment::remove(target)?;
            continue;
        }
        // The mutex must check out too: lock it (repairing a dead writer's record). Then,
        // still holding it, look at the creator again and only then claim the database: two
        // servers started at once on one leftover (from different runtime dirs, so their pid
        // files never meet) both saw a dead creator above; under the mutex the first claims
        // it and the second finds the first alive, instead of both serving (and both
        // removing) one object.
        let writer = db.lock()?;
        if let (pid, true) = db.creator() {
            return Err(Error::msg(format!(
                "{label}: its server (pid {pid}) is still running; refusing to take it over"
            )));
        }
        db.claim();
        drop(writer);
        let s = db.stats();
        let mut how = format!(
            "adopted the database left by dead server pid {pid}: {} records",
            s.used
        );
        if *db.geometry() != geo {
            how.push_str(", keeping its own geometry");
        }
        return Ok((db, how));
    }
    Err(Error::msg(format!(
        "{label}: something keeps re-creating it; giving up"
    )))
}

/// SIGUSR1 through a self-pipe (signal-hook writes a byte from the handler).
struct Usr1 {
    read: OwnedFd,
}

impl Usr1 {
    fn install() -> Result<Usr1> {
        let (read, write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).ctx("pipe2", "SIGUSR1")?;
        signal_hook::low_level::pipe::register_raw(signal_hook::consts::SIGUSR1, write)
            .ctx("sigaction", "SIGUSR1")?;
        trace!("sigaction(SIGUSR1) -> self-pipe");
        Ok(Usr1 { read })
    }

    /// True if SIGUSR1 arrived since the last call (several coalesce into one report).
    fn take(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut got = false;
        while matches!(nix::unistd::read(&self.read, &mut buf), Ok(n) if n > 0) {
            got = true;
        }
        got
    }
}
