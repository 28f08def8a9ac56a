//! System V semaphores: `semget(2)`, `semop(2)`/`semtimedop(2)`, `semctl(2)`.
//!
//! nix 0.32 does not wrap System V IPC, so this module calls libc directly (and declares
//! `semtimedop`, which glibc exports but the libc crate does not bind).
//!
//! # Names and keys
//!
//! A SysV set is found by a numeric key, not a name: `common::sysv_key` gives each name one
//! in our range, `0x1dc0xxxx` (what `make clean-ipc` sweeps), from a 64-bit FNV-1a hash of the
//! name, and says why two names can share a key (one chance in 65 536 per pair). So the set
//! records whose it is, the second way `common::sysv_key` describes:
//!
//! | semaphore | holds |
//! |---|---|
//! | 0 | the permits (what `wait`/`post` and `run` take and give) |
//! | 1 | K, the number of permits it was created for (0: created by a primitive) |
//! | 2, 3 | 15 more bits each of the name's hash; semaphore 2 is never 0 once initialised |
//!
//! A set whose semaphores 2 and 3 do not match our name is another name's (or not a sem-demo
//! set at all, if it does not have 4 semaphores): it is refused with a message naming both,
//! never used. Together with the key that is 46 bits of the hash, so two names that pass for
//! each other are a one-in-10^13 event.
//!
//! # The initialisation race (Stevens, UNP vol. 2, §11.2)
//!
//! `semget(IPC_CREAT)` creates a set whose values are all 0, and setting them is a second
//! call: a process that finds the set between the two would use it uninitialised (a lock
//! with 0 permits, or K not yet recorded). So the creator uses `IPC_CREAT | IPC_EXCL`: exactly
//! one process creates, the others get EEXIST. Stevens then has the creator set the values
//! with `SETALL` and do one `semop`, which sets the set's `sem_otime` (semctl does not), and
//! the others wait until `sem_otime` is non-zero. That wait has a hole: a creator killed
//! between `semget` and `SETALL` leaves a set that never becomes ready and records no pid to
//! check (`sempid` stays 0 until `SETALL`), so nobody can tell a dead creator from a slow one.
//!
//! So the values are not set with `SETALL` but with one `semop` of five operations: "semaphore
//! 2 is 0 (`IPC_NOWAIT`), add V to semaphore 0, K to 1, the name's check values to 2 and 3".
//! The kernel applies them all or none, so the call succeeds only on a set nobody has
//! initialised (semaphore 2 then holds a check value, which is never 0), and it sets
//! `sem_otime`. Since it can succeed once per set, it does not matter who makes it: the
//! creator makes it right after `semget`, and an opener that finds `sem_otime` still 0 makes
//! it too, with the V and K it would have created the set with, instead of waiting. Exactly one
//! succeeds; the others get EAGAIN and use the set as if the winner had created it (a `run`
//! asking for another K is refused, as always). A creator stopped or killed between its two
//! calls therefore holds nobody up. An opener that would not create (`value`, a car) cannot
//! initialise and waits for `sem_otime`, at most 10 s.
//!
//! A set whose semaphore 2 is set while `sem_otime` is not was made the old way (`SETALL`,
//! then `semop`: by hand, or by an earlier version). Its `SETALL` recorded a pid (`GETPID`):
//! if that process is gone, the set is abandoned, and is removed and made again; if it lives,
//! openers wait for it. Removing a set whose `sem_otime` is 0 harms nobody: no `semop` ever
//! succeeded on it, so nobody holds one of its permits. That is also why `unlink` removes
//! such a set at once, without waiting for it to be initialised.
//!
//! # SEM_UNDO
//!
//! With `SEM_UNDO`, the kernel records for each process how much it changed each semaphore,
//! and reverses it when the process exits, however it exits: a holder killed with SIGKILL gives
//! its permit back at once. (A POSIX semaphore cannot: see [`crate::posix`].)

use std::time::{Duration, Instant};

use common::{Context, Error, Result, sysv_key, trace};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Pid, Uid};

use crate::creation::Creation;

/// Semaphores per set: permits, K, two name checks (see the module docs).
const NSEMS: usize = 4;
/// The largest value a SysV semaphore holds (SEMVMX).
pub const SEMVMX: u32 = 32_767;
/// How long an opener waits for another process to finish initialising a set.
const INIT_WAIT: Duration = Duration::from_secs(10);

// glibc exports semtimedop(2), but the libc crate does not declare it.
unsafe extern "C" {
    fn semtimedop(
        semid: libc::c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> libc::c_int;
}

/// The key and the two check values for `name` (see the module docs).
fn key_for(name: &str) -> (libc::key_t, [u16; 2]) {
    let [sem2, sem3] = sysv_key::check_values(name);
    // Semaphore 2 is 0 only in a set nobody has initialised: see the module docs.
    (sysv_key::key_for(name), [sem2.max(1), sem3])
}

/// An open SysV semaphore set of ours.
#[derive(Debug)]
pub struct SemSet {
    id: libc::c_int,
    key: libc::key_t,
    name: String,
    limit: u16,
}

impl SemSet {
    /// Open (or create) the set for `name`. Returns it and whether we created it.
    pub fn open(name: &str, how: Creation) -> Result<(Self, bool)> {
        let (key, check) = key_for(name);
        let what = format!("{name} (key {key:#010x})");
        loop {
            let create = match how {
                Creation::Never => None,
                Creation::Exclusive { value } => Some((value, 0)),
                Creation::IfAbsent { value, limit } => Some((value, limit)),
            };
            if let Some((value, limit)) = create {
                // SAFETY: semget takes plain integers and touches no memory of ours.
                let id = unsafe {
                    libc::semget(key, NSEMS as i32, libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
                };
                if id < 0 {
                    match Errno::last() {
                        Errno::EEXIST if matches!(how, Creation::IfAbsent { .. }) => {}
                        e => return Err(Error::sys("semget", &what, e)),
                    }
                } else {
                    let set = SemSet {
                        id,
                        key,
                        name: name.to_owned(),
                        limit,
                    };
                    trace!("semget({key:#010x}, {NSEMS}, IPC_CREAT|IPC_EXCL|0600) -> id {id}");
                    // Until initialise() returns, an opener may initialise the set itself.
                    match set.initialise(value, limit, check) {
                        Ok(true) => return Ok((set, true)),
                        // An opener was first: use the set as any opener does (below).
                        Ok(false) => {}
                        // Removed meanwhile (`unlink`): start over.
                        Err(e) if e.errno().is_some_and(removed) => continue,
                        Err(e) => {
                            let _ = set.remove();
                            return Err(e);
                        }
                    }
                }
            }
            // SAFETY: as above.
            let id = unsafe { libc::semget(key, 0, 0) };
            if id < 0 {
                match Errno::last() {
                    // Removed since our IPC_EXCL attempt: create it after all.
                    Errno::ENOENT if matches!(how, Creation::IfAbsent { .. }) => continue,
                    Errno::ENOENT => {
                        return Err(Error::msg(format!("semget {what}: no such semaphore set")));
                    }
                    e => return Err(Error::sys("semget", &what, e)),
                }
            }
            trace!("semget({key:#010x}, 0, 0) -> id {id} (existing)");
            let mut set = SemSet {
                id,
                key,
                name: name.to_owned(),
                limit: 0,
            };
            match set.adopt(check, &what, create)? {
                Adopted::Ready => return Ok((set, false)),
                Adopted::Initialised => return Ok((set, true)),
                // Made the old way by a process that died before finishing: remove its set
                // (nobody can hold a permit of it) and start over.
                Adopted::Abandoned => {
                    let _ = set.remove();
                    continue;
                }
                // Removed since we found it: look again.
                Adopted::Gone => continue,
            }
        }
    }

    /// Initialise the set with V = `value` permits, K = `limit` and the name's check values,
    /// in the one semop that succeeds only on a set nobody has initialised (see the module
    /// docs); it sets `sem_otime`. `Ok(false)`: someone else initialised it first.
    fn initialise(&self, value: u16, limit: u16, check: [u16; 2]) -> Result<bool> {
        let delta = |v: u16| {
            i16::try_from(v).map_err(|_| Error::Usage(format!("at most {SEMVMX} permits")))
        };
        let mut ops = [sembuf(2, 0, libc::IPC_NOWAIT); 1 + NSEMS];
        let mut n = 1;
        for (num, v) in [(0, value), (1, limit), (2, check[0]), (3, check[1])] {
            // A 0 would be an operation of its own ("wait until it is 0"): leave it out.
            if v != 0 {
                ops[n] = sembuf(num, delta(v)?, 0);
                n += 1;
            }
        }
        match self.semop(&mut ops[..n], None) {
            Ok(()) => {
                trace!(
                    "semop({}, [sem 2 == 0 ?, +{value}, +K {limit}, +check]) -> initialised, \
                     sem_otime set",
                    self.what()
                );
                Ok(true)
            }
            Err(Errno::EAGAIN) => {
                trace!(
                    "semop({}, [sem 2 == 0 ?, ...]) -> EAGAIN: initialised already",
                    self.what()
                );
                Ok(false)
            }
            Err(e) => Err(Error::sys("semop", self.what(), e)),
        }
    }

    /// Refuse a set that is not ours or not a sem-demo set (owner, mode, size).
    fn vet(ds: &libc::semid_ds, what: &str) -> Result<()> {
        if ds.sem_perm.uid != Uid::effective().as_raw() {
            return Err(Error::msg(format!(
                "semaphore set {what} is owned by uid {}, not by us (uid {})",
                ds.sem_perm.uid,
                Uid::effective()
            )));
        }
        if ds.sem_perm.mode & 0o022 != 0 {
            return Err(Error::msg(format!(
                "semaphore set {what} is writable by group or others (mode {:04o})",
                ds.sem_perm.mode & 0o777
            )));
        }
        if ds.sem_nsems as usize != NSEMS {
            return Err(Error::msg(format!(
                "semaphore set {what} has {} semaphores: it is not a sem-demo set",
                ds.sem_nsems
            )));
        }
        Ok(())
    }

    /// Refuse a set whose semaphores 2 and 3 are not our name's check values.
    fn check_name(&self, check: [u16; 2], what: &str) -> Result<()> {
        let got = [
            self.ctl(2, libc::GETVAL, "GETVAL")?,
            self.ctl(3, libc::GETVAL, "GETVAL")?,
        ];
        if got != [i32::from(check[0]), i32::from(check[1])] {
            return Err(Error::msg(format!(
                "semaphore set {what} belongs to another name (their keys collide); choose \
                 another name"
            )));
        }
        Ok(())
    }

    /// Check an existing set (ours, 4 semaphores, initialised, our name) and read its K. An
    /// opener that would have created the set (`init`: its V and K) initialises it if nobody
    /// has; one that would not waits for it to be initialised.
    fn adopt(&mut self, check: [u16; 2], what: &str, init: Option<(u16, u16)>) -> Result<Adopted> {
        let start = Instant::now();
        let mut waited = 0u32;
        loop {
            let Some(ds) = self.stat_unless_removed()? else {
                return Ok(Adopted::Gone);
            };
            Self::vet(&ds, what)?;
            if ds.sem_otime != 0 {
                break;
            }
            if let Some((value, limit)) = init {
                if waited == 0 {
                    trace!(
                        "semctl(IPC_STAT) -> sem_otime 0: not initialised (its creator is \
                         between semget and semop, or died there); initialising it ourselves"
                    );
                }
                match self.initialise(value, limit, check) {
                    Ok(true) => {
                        self.limit = limit;
                        return Ok(Adopted::Initialised);
                    }
                    // Initialised meanwhile (the next look finds sem_otime set), or made the
                    // old way (below).
                    Ok(false) => {}
                    Err(e) if e.errno().is_some_and(removed) => return Ok(Adopted::Gone),
                    Err(e) => return Err(e),
                }
            }
            if waited == 0 {
                trace!(
                    "semctl(IPC_STAT) -> sem_otime 0: not initialised yet; waiting for its creator"
                );
            }
            waited += 1;
            // Made the old way, SETALL then semop (see the module docs): if the process that
            // did SETALL is gone, the set never will be initialised.
            let setter = self.ctl(0, libc::GETPID, "GETPID")?;
            if setter != 0 && kill(Pid::from_raw(setter), None) == Err(Errno::ESRCH) {
                // Look again: the set may have been initialised, and its initialiser gone,
                // since we looked. If not, it never will be: only the dead process could
                // finish what it began, so the set can be removed.
                match self.stat_unless_removed()? {
                    None => return Ok(Adopted::Gone),
                    Some(ds) if ds.sem_otime != 0 => continue,
                    Some(_) => {
                        trace!(
                            "semctl(GETPID) -> {setter}, gone: the set was abandoned uninitialised"
                        );
                        return Ok(Adopted::Abandoned);
                    }
                }
            }
            if start.elapsed() > INIT_WAIT {
                return Err(Error::msg(format!(
                    "semaphore set {what} was never initialised; `sem-demo unlink --sysv {}` \
                     removes it",
                    self.name
                )));
            }
            // Nothing to block on: sem_otime changes without notice. A creator's window is
            // two calls, so this loop runs a handful of times at most.
            std::thread::sleep(Duration::from_micros(200));
        }
        self.check_name(check, what)?;
        self.limit = u16::try_from(self.ctl(1, libc::GETVAL, "GETVAL")?).unwrap_or(0);
        trace!("semctl(IPC_STAT) -> ours, initialised, K = {}", self.limit);
        Ok(Adopted::Ready)
    }

    /// `sem-demo unlink --sysv NAME`: remove the set of `name`, initialised or not, without
    /// waiting. It must be ours (owner, mode, 4 semaphores) and, if it records a name (its
    /// semaphore 2 is set), `name`'s; a set never initialised records none, and removing it
    /// harms nobody: no permit was ever taken from it.
    pub fn unlink(name: &str) -> Result<()> {
        let (key, check) = key_for(name);
        let what = format!("{name} (key {key:#010x})");
        // SAFETY: semget takes plain integers and touches no memory of ours.
        let id = unsafe { libc::semget(key, 0, 0) };
        if id < 0 {
            return match Errno::last() {
                Errno::ENOENT => Err(Error::msg(format!("semget {what}: no such semaphore set"))),
                e => Err(Error::sys("semget", &what, e)),
            };
        }
        trace!("semget({key:#010x}, 0, 0) -> id {id} (existing)");
        let set = SemSet {
            id,
            key,
            name: name.to_owned(),
            limit: 0,
        };
        let ds = set.stat()?;
        Self::vet(&ds, &what)?;
        if ds.sem_otime == 0 && set.ctl(2, libc::GETVAL, "GETVAL")? == 0 {
            trace!("semctl(IPC_STAT) -> sem_otime 0, semaphore 2 is 0: never initialised");
        } else {
            set.check_name(check, &what)?;
        }
        set.remove()
    }

    /// [`SemSet::stat`], or `None` if the set was removed meanwhile.
    fn stat_unless_removed(&self) -> Result<Option<libc::semid_ds>> {
        match self.stat() {
            Ok(ds) => Ok(Some(ds)),
            Err(e) if e.errno().is_some_and(removed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn stat(&self) -> Result<libc::semid_ds> {
        // SAFETY: semid_ds is plain old data; all-zero is a valid value to be overwritten.
        let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: IPC_STAT writes one semid_ds through the pointer passed as the union semun
        // argument; `ds` is one, and outlives the call.
        let rc =
            unsafe { libc::semctl(self.id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) };
        Errno::result(rc).ctx("semctl(IPC_STAT)", self.what())?;
        Ok(ds)
    }

    /// A semctl command that takes no argument and returns an int (GETVAL, GETPID, GETNCNT).
    fn ctl(&self, num: i32, cmd: libc::c_int, cmd_name: &str) -> Result<i32> {
        // SAFETY: these commands read no fourth argument and touch no memory of ours.
        let rc = unsafe { libc::semctl(self.id, num, cmd) };
        Errno::result(rc).ctx(&format!("semctl({cmd_name})"), self.what())
    }

    /// `semtimedop` on this set, retried after EINTR with what is left of the timeout.
    /// EAGAIN means timed out (or would block, with IPC_NOWAIT).
    fn semop(&self, ops: &mut [libc::sembuf], timeout: Option<Duration>) -> nix::Result<()> {
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            let ts = end.map(|end| {
                let left = end.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                    tv_nsec: left.subsec_nanos().into(),
                }
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `ops` is a valid array of `ops.len()` sembufs; `tsp` is null or points
            // to `ts`, alive for the call.
            let rc = unsafe { semtimedop(self.id, ops.as_mut_ptr(), ops.len(), tsp) };
            match Errno::result(rc) {
                Err(Errno::EINTR) => continue,
                other => return other.map(drop),
            }
        }
    }

    /// Take a permit (semaphore 0, -1). `undo`: with SEM_UNDO, so the kernel gives it back
    /// if we die holding it. `Ok(false)` when the timeout passed first.
    pub fn wait(&self, undo: bool, timeout: Option<Duration>) -> Result<bool> {
        let flags = if undo { libc::SEM_UNDO } else { 0 };
        match self.semop(&mut [sembuf(0, -1, flags)], timeout) {
            Ok(()) => {
                trace!("semop({}, -1{}) -> acquired", self.what(), undo_tag(undo));
                Ok(true)
            }
            Err(Errno::EAGAIN) => {
                trace!(
                    "semtimedop({}, -1, {timeout:?}) -> EAGAIN (timed out)",
                    self.what()
                );
                Ok(false)
            }
            Err(e) => Err(Error::sys("semop", self.what(), e)),
        }
    }

    /// Take a permit if one is free (IPC_NOWAIT); `Ok(false)` if it would block.
    pub fn try_wait(&self, undo: bool) -> Result<bool> {
        let flags = libc::IPC_NOWAIT | if undo { libc::SEM_UNDO } else { 0 };
        match self.semop(&mut [sembuf(0, -1, flags)], None) {
            Ok(()) => {
                trace!(
                    "semop({}, -1, IPC_NOWAIT{}) -> acquired",
                    self.what(),
                    undo_tag(undo)
                );
                Ok(true)
            }
            Err(Errno::EAGAIN) => {
                trace!("semop({}, -1, IPC_NOWAIT) -> EAGAIN", self.what());
                Ok(false)
            }
            Err(e) => Err(Error::sys("semop", self.what(), e)),
        }
    }

    /// Give a permit back (+1). With `undo`, the adjustment recorded by a `wait(undo)` is
    /// cancelled too, so the kernel does not give the permit back a second time at exit.
    pub fn post(&self, undo: bool) -> Result<()> {
        let flags = if undo { libc::SEM_UNDO } else { 0 };
        match self.semop(&mut [sembuf(0, 1, flags)], None) {
            Ok(()) => {
                trace!("semop({}, +1{})", self.what(), undo_tag(undo));
                Ok(())
            }
            Err(Errno::ERANGE) => Err(Error::msg(format!(
                "semop {}: the value would exceed {SEMVMX}",
                self.what()
            ))),
            Err(e) => Err(Error::sys("semop", self.what(), e)),
        }
    }

    /// The number of free permits (GETVAL of semaphore 0).
    pub fn value(&self) -> Result<i32> {
        let v = self.ctl(0, libc::GETVAL, "GETVAL")?;
        trace!("semctl({}, 0, GETVAL) -> {v}", self.what());
        Ok(v)
    }

    /// K, as recorded at creation (0 if created by a primitive).
    pub fn limit(&self) -> u16 {
        self.limit
    }

    /// The name the key was derived from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key, as `ipcs -s` shows it.
    pub fn key(&self) -> libc::key_t {
        self.key
    }

    /// Remove the set (IPC_RMID): waiters wake with EIDRM.
    pub fn remove(&self) -> Result<()> {
        // SAFETY: IPC_RMID reads no fourth argument.
        let rc = unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
        Errno::result(rc).ctx("semctl(IPC_RMID)", self.what())?;
        trace!("semctl({}, IPC_RMID)", self.what());
        Ok(())
    }

    fn what(&self) -> String {
        format!("{} (key {:#010x})", self.name, self.key)
    }
}

/// What [`SemSet::adopt`] found.
enum Adopted {
    /// Initialised, ours, our name.
    Ready,
    /// Not initialised, and we initialised it (with our V and K).
    Initialised,
    /// Made the old way by a process that died before finishing.
    Abandoned,
    /// Removed since we found it.
    Gone,
}

/// The error of a call on a set that was removed meanwhile (EIDRM while a call waited on it,
/// EINVAL once its id is gone).
fn removed(e: Errno) -> bool {
    matches!(e, Errno::EIDRM | Errno::EINVAL)
}

fn sembuf(num: u16, op: i16, flags: libc::c_int) -> libc::sembuf {
    libc::sembuf {
        sem_num: num,
        sem_op: op,
        // The flags (IPC_NOWAIT 0o4000, SEM_UNDO 0x1000) fit the short field.
        sem_flg: flags as libc::c_short,
    }
}

fn undo_tag(undo: bool) -> &'static str {
    if undo { ", SEM_UNDO" } else { "" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_ours_and_stable() {
        let (k, c) = key_for("build");
        assert!(sysv_key::is_ours(k), "{k:#x}");
        assert_eq!(key_for("build"), (k, c));
        assert_ne!(key_for("build"), key_for("build2"));
        assert!(c.iter().all(|&v| u32::from(v) <= SEMVMX));
        // Semaphore 2 is never 0 once initialised: it tells an initialised set from a new one.
        let zero = (0..200_000)
            .map(|i| format!("n{i}"))
            .find(|n| sysv_key::check_values(n)[0] == 0)
            .expect("some name hashes to 0 there");
        assert_eq!(key_for(&zero).1[0], 1, "{zero}");
    }

    /// The values sets made before the keys came from `common::sysv_key` hold (from the
    /// FNV-1a reference function, computed apart): a set made by an older sem-demo is still
    /// found at its key and recognised as its name's.
    #[test]
    fn keys_and_check_values_are_those_existing_sets_hold() {
        assert_eq!(key_for("build"), (0x1dc0_0b03, [6343, 12229]));
        assert_eq!(key_for("run"), (0x1dc0_5a4a, [24773, 20530]));
    }
}
