//! Who serves `NAME`: the record's lock; and what the other roles read of a record.
//!
//! The supervisor holds a write lock on its record for as long as it lives, and that lock is
//! the proof that it serves `NAME` (see record.rs, "Who serves `NAME`"): the kernel drops it
//! however the process dies, and `fcntl(F_GETLK)` names the holder to anyone who asks.
//!
//! The other roles only read: [`holder`] and [`watch`] name the live supervisor (for `submit`
//! and `worker`), [`census_of`] counts what a record holds (for `status`), and a [`Leftover`]
//! is a killed supervisor's record, locked while `unlink` removes what it left.

use std::os::fd::{AsFd, OwnedFd};

use common::lock::Holder;
use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{shm_open, shm_unlink};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{Pid, Uid};

use super::layout::{Geometry, HEADER, MAX_BYTES, MAX_WORKERS, WORKER, census};
use crate::names::Names;

/// Where glibc keeps POSIX shared memory objects: `/dev/shm/NAME`.
pub(super) fn shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// A record at our name must be a regular file of ours that no one else may open: another
/// user's could say anything, and a looser mode lets others write it.
pub(super) fn check_ours(name: &str, st: &libc::stat) -> Result<()> {
    if st.st_uid != Uid::effective().as_raw() {
        return Err(Error::msg(format!(
            "{name}: belongs to uid {}, not to us (uid {}); POSIX names are shared by the whole \
             machine: choose another --queue",
            st.st_uid,
            Uid::effective()
        )));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o077 != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::msg(format!(
            "{name}: mode {mode:04o} lets other users open it, so what it records cannot be \
             trusted; remove it (make clean-ipc) and start again"
        )));
    }
    Ok(())
}

/// Take the write lock on `fd` (`common::lock`): None if taken, Some(pid) of the process that
/// holds it.
pub(super) fn take_lock(fd: &OwnedFd, name: &str) -> Result<Option<Pid>> {
    loop {
        match common::lock::lock_whole(fd.as_fd(), false) {
            Ok(()) => return Ok(None),
            Err(Errno::EAGAIN | Errno::EACCES) => {
                if let Some(pid) = locked_by(fd, name)? {
                    return Ok(Some(pid));
                }
                // Released in between: try again.
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("fcntl(F_SETLK)", name, e)),
        }
    }
}

/// The pid of the process that holds a write lock on `fd`'s file, if one does (F_GETLK);
/// an error if it cannot be named (another pid namespace).
fn locked_by(fd: &OwnedFd, name: &str) -> Result<Option<Pid>> {
    match common::lock::holder(fd.as_fd()).ctx("fcntl(F_GETLK)", name)? {
        Holder::Nobody => Ok(None),
        Holder::Process(pid) => Ok(Some(pid)),
        Holder::Unnamed => Err(Error::msg(format!(
            "{name}: locked by a process this one cannot name (in another pid namespace?)"
        ))),
    }
}

/// The record at `name`, opened with `flags` and checked to be ours; None if there is none.
pub(super) fn open_existing(name: &str, flags: OFlag) -> Result<Option<(OwnedFd, libc::stat)>> {
    let fd = match shm_open(name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(Error::sys("shm_open", name, e)),
    };
    let st = fstat(&fd).ctx("fstat", name)?;
    check_ours(name, &st)?;
    Ok(Some((fd, st)))
}

/// The pid of the supervisor that serves `names` now, whatever its runtime dir: the holder
/// of its record's lock. None if there is no record, or nobody holds it (its supervisor was
/// killed).
pub fn holder(names: &Names) -> Result<Option<Pid>> {
    let name = &names.record;
    let Some((fd, _)) = open_existing(name, OFlag::O_RDONLY)? else {
        return Ok(None);
    };
    let pid = locked_by(&fd, name)?;
    trace!(
        "fcntl({name}, F_GETLK) -> {}",
        pid.map_or_else(|| "unlocked".to_owned(), |p| format!("locked by pid {p}"))
    );
    Ok(pid)
}

/// The live supervisor's pid and a pidfd that becomes readable when it exits. The pid comes
/// from F_GETLK, and a pid can be recycled, so the lock is checked again *after*
/// `pidfd_open`: still held by the same pid, the pidfd is the supervisor's.
pub fn watch(names: &Names) -> Result<(Pid, OwnedFd)> {
    let pid = names.supervisor()?;
    let gone = common::pidfd::open(pid).ctx("pidfd_open", format!("the supervisor (pid {pid})"))?;
    if names.supervisor()? != pid {
        return Err(Error::msg(format!(
            "the supervisor (pid {pid}) of {} was replaced meanwhile",
            names.tasks
        )));
    }
    Ok((pid, gone))
}

/// What the record of `names` holds now: (tasks, workers); None if there is none. Read with
/// `pread`, a copy, so that a supervisor writing it meanwhile disturbs nothing but the figures.
pub fn census_of(names: &Names) -> Result<Option<(usize, usize)>> {
    let name = &names.record;
    let Some((fd, st)) = open_existing(name, OFlag::O_RDONLY)? else {
        return Ok(None);
    };
    let bytes = read_all(&fd, &st, name)?;
    Ok(Geometry::read(&bytes)
        .filter(|geo| geo.len() == bytes.len())
        .map(|geo| census(&geo, &bytes))
        .map(|(tasks, workers)| (tasks, workers.len())))
}

/// The whole record, read into memory (it is at most [`MAX_BYTES`] and a little more).
pub(super) fn read_all(fd: &OwnedFd, st: &libc::stat, name: &str) -> Result<Vec<u8>> {
    let size = usize::try_from(st.st_size).unwrap_or(0);
    let mut bytes = vec![0; size.min(MAX_BYTES + HEADER + MAX_WORKERS * WORKER)];
    let n = nix::sys::uio::pread(fd, &mut bytes, 0).ctx("pread", name)?;
    bytes.truncate(n);
    Ok(bytes)
}

/// A killed supervisor's record, locked by us while its leftovers are removed (`unlink`), so
/// that no supervisor starts on them meanwhile.
pub struct Leftover {
    name: String,
    _fd: OwnedFd,
    /// Tasks it held, now to be thrown away.
    pub tasks: usize,
    /// Its workers: pid, and the System V inbox id (-1 for POSIX).
    pub workers: Vec<(Pid, i32)>,
}

impl Leftover {
    /// Lock the record `names` left, if there is one; refused (naming the pid) while a
    /// supervisor holds it.
    pub fn claim(names: &Names) -> Result<Option<Leftover>> {
        let name = &names.record;
        let Some((fd, st)) = open_existing(name, OFlag::O_RDWR)? else {
            return Ok(None);
        };
        if let Some(pid) = take_lock(&fd, name)? {
            return Err(Error::msg(format!(
                "a supervisor (pid {pid}) serves {}; stop it (kill {pid}) and it removes its \
                 queues",
                names.tasks
            )));
        }
        let bytes = read_all(&fd, &st, name)?;
        let (tasks, workers) = match Geometry::read(&bytes) {
            Some(geo) if geo.len() == bytes.len() => census(&geo, &bytes),
            _ => (0, Vec::new()),
        };
        Ok(Some(Leftover {
            name: name.clone(),
            _fd: fd,
            tasks,
            workers,
        }))
    }

    /// Remove the record (the lock goes with the descriptor).
    pub fn remove(self) -> Result<()> {
        match shm_unlink(self.name.as_str()) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(Error::sys("shm_unlink", &self.name, e)),
        }
    }

    /// The record's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
