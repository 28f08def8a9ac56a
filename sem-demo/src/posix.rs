//! POSIX named semaphores: `sem_open(3)` and friends.
//!
//! nix 0.32 does not wrap POSIX semaphores, so this module calls libc directly. On Linux,
//! glibc keeps a named semaphore in a file, `/dev/shm/sem.NAME`, which `sem_open` maps into
//! the process: the `sem_t` is a 32-bit counter in shared memory, and `sem_wait`/`sem_post`
//! are atomic operations on it, with a `futex(2)` only when a waiter must sleep or be woken.
//! The uncontended pair is therefore no system call at all.
//!
//! # Ownership
//!
//! `/dev/shm` is writable by everyone (mode 1777), so another user can create
//! `sem.ipc-demo-lock` before we do, and our `sem_open` without `O_CREAT` would happily use
//! their semaphore (they could then post it at will). A role that creates does so with
//! `O_CREAT | O_EXCL` and mode 0600, so it never adopts an existing file by mistake; a role
//! that opens an existing name checks the file it mapped. glibc's `sem_open` already opens
//! with `O_NOFOLLOW` (a planted symlink fails with ELOOP), but it checks no owner, so we open
//! `/dev/shm/sem.NAME` ourselves with `O_NOFOLLOW`, `fstat` that descriptor (a regular file,
//! ours, not writable by group or others, large enough for a `sem_t`: a shorter file would
//! raise SIGBUS at the first access), and compare its device and inode with the mapping
//! that `sem_open` made, as `/proc/self/maps` shows it. The last step closes the gap between
//! the two opens: the name might have been replaced in between, and then the file we checked
//! is not the one we use.
//!
//! # No owner
//!
//! A POSIX semaphore is only a number. It does not record who took a permit, so when a process
//! dies holding one (SIGKILL, a crash), nobody gives it back: every later waiter blocks until
//! someone posts by hand. System V semaphores have `SEM_UNDO` for exactly this (see
//! [`crate::sysv`]).

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::ptr::NonNull;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::Uid;

use crate::creation::Creation;

/// An open POSIX named semaphore; `sem_close` on drop (the name stays: see `sem_unlink`).
pub struct NamedSem {
    sem: NonNull<libc::sem_t>,
    name: String,
}

// SAFETY: a named semaphore lives in a shared mapping and is made for concurrent use by many
// processes and threads; glibc's operations on it are atomic, and the mapping stays until
// sem_close in Drop.
unsafe impl Send for NamedSem {}
// SAFETY: as for Send: every operation on the sem_t is thread-safe by POSIX's definition.
unsafe impl Sync for NamedSem {}

/// `/dev/shm/sem.NAME` for the POSIX name `/NAME`: where glibc keeps it.
pub fn file_of(name: &str) -> String {
    format!("/dev/shm/sem.{}", name.trim_start_matches('/'))
}

impl NamedSem {
    /// Open (or create) the semaphore `name` (`/ipc-demo-...`). Returns it and whether we
    /// created it.
    pub fn open(name: &str, how: Creation) -> Result<(Self, bool)> {
        let c = CString::new(name).map_err(|_| Error::msg(format!("{name}: contains NUL")))?;
        loop {
            let (excl, value) = match how {
                Creation::Never => (false, 0),
                Creation::Exclusive { value } | Creation::IfAbsent { value, .. } => (true, value),
            };
            if excl {
                // SAFETY: `c` is a valid C string for the duration of the call; with O_CREAT
                // sem_open takes two more arguments, the mode and the initial value, passed
                // here with the types it reads them as (mode_t promoted to c_uint, c_uint).
                let p = unsafe {
                    libc::sem_open(
                        c.as_ptr(),
                        libc::O_CREAT | libc::O_EXCL,
                        0o600 as libc::c_uint,
                        libc::c_uint::from(value),
                    )
                };
                match NonNull::new(p).filter(|_| p != libc::SEM_FAILED) {
                    Some(sem) => {
                        trace!("sem_open({name}, O_CREAT|O_EXCL, 0600, {value}) -> created");
                        return Ok((
                            NamedSem {
                                sem,
                                name: name.to_owned(),
                            },
                            true,
                        ));
                    }
                    None => match Errno::last() {
                        Errno::EEXIST if matches!(how, Creation::IfAbsent { .. }) => {}
                        e => return Err(Error::sys("sem_open", name, e)),
                    },
                }
            }
            // SAFETY: `c` is a valid C string; without O_CREAT sem_open takes no more args.
            let p = unsafe { libc::sem_open(c.as_ptr(), 0) };
            match NonNull::new(p).filter(|_| p != libc::SEM_FAILED) {
                Some(sem) => {
                    let sem = NamedSem {
                        sem,
                        name: name.to_owned(),
                    };
                    sem.vet()?;
                    trace!("sem_open({name}, 0) -> existing, ours");
                    return Ok((sem, false));
                }
                // Removed between our two sem_opens: try creating again.
                None if Errno::last() == Errno::ENOENT && excl => {}
                None if Errno::last() == Errno::ENOENT => {
                    return Err(Error::msg(format!("sem_open {name}: no such semaphore")));
                }
                None => return Err(Error::sys("sem_open", name, Errno::last())),
            }
        }
    }

    /// Refuse a semaphore that is not ours (see the module docs).
    fn vet(&self) -> Result<()> {
        let path = file_of(&self.name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match open(path.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP) => {
                return Err(Error::msg(format!("{path}: is a symlink; refusing it")));
            }
            Err(e) => return Err(Error::sys("open", &path, e)),
        };
        let file = File::from(fd);
        let st = fstat(file.as_fd()).ctx("fstat", &path)?;
        let refuse = |why: String| Err(Error::msg(format!("semaphore {}: {why}", self.name)));
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            return refuse(format!("{path} is not a regular file"));
        }
        if st.st_uid != Uid::effective().as_raw() {
            return refuse(format!(
                "{path} is owned by uid {}, not by us (uid {})",
                st.st_uid,
                Uid::effective()
            ));
        }
        if st.st_mode & 0o022 != 0 {
            return refuse(format!(
                "{path} is writable by group or others (mode {:04o})",
                st.st_mode & 0o7777
            ));
        }
        // sem_open maps sizeof(sem_t) bytes of the file whatever its size, and a page of a
        // mapping beyond the end of its file raises SIGBUS at the first sem_wait or
        // sem_getvalue: a truncated file must be refused here, not crash us later.
        let size = std::mem::size_of::<libc::sem_t>();
        if usize::try_from(st.st_size).map_or(true, |n| n < size) {
            return refuse(format!(
                "{path} has {} bytes, too few for a semaphore ({size}): it was not made by \
                 sem_open",
                st.st_size
            ));
        }
        let meta = file.metadata().ctx("fstat", &path)?;
        match mapping_of(self.sem.as_ptr() as usize) {
            Some((dev, ino)) if ino == meta.ino() && dev == meta.dev() => Ok(()),
            Some(_) => refuse(format!("{path} was replaced while we opened it")),
            None => refuse("its mapping is not in /proc/self/maps".into()),
        }
    }

    /// The POSIX name, `/ipc-demo-...`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Take a permit: `sem_wait`, or `sem_timedwait` with a deadline. `Ok(false)` on timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let Some(timeout) = timeout else {
            loop {
                // SAFETY: `sem` points to the live mapping made by sem_open (closed only in
                // Drop).
                if unsafe { libc::sem_wait(self.sem.as_ptr()) } == 0 {
                    trace!("sem_wait({}) -> acquired", self.name);
                    return Ok(true);
                }
                match Errno::last() {
                    Errno::EINTR => continue,
                    e => return Err(Error::sys("sem_wait", &self.name, e)),
                }
            }
        };
        // sem_timedwait takes an absolute CLOCK_REALTIME deadline (a wall-clock step moves it;
        // glibc's sem_clockwait would take CLOCK_MONOTONIC, but is not in the libc crate).
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let end = now.saturating_add(timeout);
        let abs = libc::timespec {
            tv_sec: libc::time_t::try_from(end.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: end.subsec_nanos().into(),
        };
        loop {
            // SAFETY: as above; `abs` is a valid timespec on our stack for the call.
            if unsafe { libc::sem_timedwait(self.sem.as_ptr(), &abs) } == 0 {
                trace!("sem_timedwait({}, {timeout:?}) -> acquired", self.name);
                return Ok(true);
            }
            match Errno::last() {
                // The deadline is absolute, so a retry after a signal keeps it.
                Errno::EINTR => continue,
                Errno::ETIMEDOUT => {
                    trace!("sem_timedwait({}, {timeout:?}) -> ETIMEDOUT", self.name);
                    return Ok(false);
                }
                e => return Err(Error::sys("sem_timedwait", &self.name, e)),
            }
        }
    }

    /// Take a permit if one is free: `sem_trywait`; `Ok(false)` if it would block.
    pub fn try_wait(&self) -> Result<bool> {
        loop {
            // SAFETY: `sem` points to the live mapping made by sem_open.
            if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                trace!("sem_trywait({}) -> acquired", self.name);
                return Ok(true);
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => {
                    trace!("sem_trywait({}) -> EAGAIN", self.name);
                    return Ok(false);
                }
                e => return Err(Error::sys("sem_trywait", &self.name, e)),
            }
        }
    }

    /// Give a permit back: `sem_post`.
    pub fn post(&self) -> Result<()> {
        // SAFETY: `sem` points to the live mapping made by sem_open.
        if unsafe { libc::sem_post(self.sem.as_ptr()) } != 0 {
            return Err(Error::sys("sem_post", &self.name, Errno::last()));
        }
        trace!("sem_post({})", self.name);
        Ok(())
    }

    /// The current value: `sem_getvalue`.
    pub fn value(&self) -> Result<i32> {
        let mut v: libc::c_int = 0;
        // SAFETY: `sem` points to the live mapping; `v` is a valid int for the result.
        if unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut v) } != 0 {
            return Err(Error::sys("sem_getvalue", &self.name, Errno::last()));
        }
        trace!("sem_getvalue({}) -> {v}", self.name);
        Ok(v)
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open and is closed exactly once, here.
        unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

/// The device and inode of the file mapped at `addr`, from `/proc/self/maps`
/// (`start-end perms offset major:minor inode path`).
fn mapping_of(addr: usize) -> Option<(u64, u64)> {
    let maps = BufReader::new(File::open("/proc/self/maps").ok()?);
    for line in maps.lines() {
        let line = line.ok()?;
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let (start, end) = (
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        );
        if !(start..end).contains(&addr) {
            continue;
        }
        let (major, minor) = fields.nth(2)?.split_once(':')?;
        let ino = fields.next()?.parse().ok()?;
        let dev = libc::makedev(
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
        );
        return Some((dev, ino));
    }
    None
}
