//! `shm-demo watch KEY [--count N]`: sleep on a futex in the segment until another process
//! changes the key, and print each new value.
//!
//! The calls, in order: the stop signals' handler first; `shm_open` + `fstat` + `mmap`;
//! `fcntl(F_OFD_SETLK, F_RDLCK)` on the object, which counts it among the watchers for as
//! long as it lives ([`segment::watch_lock`]); then, in a loop, set the waiting bit of the
//! key's home slot's notify word, read the key (a seqlock read), and `FUTEX_WAIT` on the
//! word while it holds what was set (see [`crate::db::notify`]).
//!
//! # Pitfalls
//!
//! - A change between the read and the sleep: the word is armed before the read, so a change
//!   makes `FUTEX_WAIT` return at once (EAGAIN) or wakes it ([`watch_loop`]).
//! - A stop signal between a check of a flag and the sleep would be missed: the handler
//!   exits the process itself ([`leave`]).
//! - The database removed under it: the removal marks the header and wakes every watcher,
//!   which exits 1 ([`crate::db::Db::mark_removed`]).

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::sync::atomic::AtomicU32;

use common::out::escape;
use common::{Context, Error, Result, say, trace};
use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::cli::WatchArgs;
use crate::db::{self, Db};
use crate::segment::{self, Target};

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

/// Run the `watch` role.
pub fn run(args: &WatchArgs) -> Result<ExitCode> {
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
    let target = args.db.target()?;
    let db = Db::open(&target)?;
    let key = args.key.as_bytes();
    let word = db.notify_word(key)?;
    // Counted among the watchers while this is open (see segment::watch_lock).
    let _counted = segment::watch_lock(&target)?;
    watch_loop(&db, &target, key, word, args.count)
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
        let v = db::notify::arm(word);
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
        match db::notify::futex_wait(word, v) {
            Ok(()) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("futex(FUTEX_WAIT)", target.label(), e)),
        }
    }
    Ok(ExitCode::SUCCESS)
}
