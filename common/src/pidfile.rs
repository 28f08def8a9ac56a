//! A pid file that is also a lock: the way a daemon tells "another one is running" from "a
//! predecessor was killed with -9 and left its files behind".
//!
//! The daemon opens the file and takes an exclusive `flock` on it for as long as it lives. The
//! kernel drops that lock when the process dies, however it dies, so:
//!
//! - lock taken: nobody alive holds the file; any pid in it is stale. We write ours.
//! - lock refused (EWOULDBLOCK): a live daemon holds it; we refuse to start and name its pid.
//!
//! The pid written inside is for people and for `kill $(cat file)`; the lock is the truth.
//! On drop the file is unlinked *while still locked*, then closed.
//!
//! # The unlink race
//!
//! A newcomer may open the file just before its owner unlinks it, then lock the now nameless
//! inode after the owner has gone, and believe it holds the pid file while the path names
//! nothing (or a third daemon's new file). So after locking we check that the path still
//! names the inode we locked, and start over if it does not.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};

/// A locked pid file, removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// Holds the lock; dropped (closed, unlocked) after the file is unlinked.
    lock: Option<Flock<File>>,
}

impl PidFile {
    /// Create or take over the pid file at `path` and write our pid into it.
    ///
    /// Fails if a live process holds it, naming that process's pid, or if `path` is a symlink
    /// (O_NOFOLLOW) or not a regular file.
    pub fn create(path: &Path) -> Result<PidFile> {
        loop {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                // A symlink planted at the path must not redirect our write elsewhere.
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .ctx("open", path.display())?;
            let meta = file.metadata().ctx("fstat", path.display())?;
            if !meta.file_type().is_file() {
                return Err(Error::msg(format!(
                    "{}: is not a regular file",
                    path.display()
                )));
            }
            let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                Err((mut file, Errno::EWOULDBLOCK)) => {
                    let holder = read_pid_from(&mut file)
                        .map_or_else(|| "another process".to_owned(), |p| format!("pid {p}"));
                    return Err(Error::msg(format!(
                        "{}: locked by a running daemon ({holder})",
                        path.display()
                    )));
                }
                Err((_, e)) => return Err(Error::sys("flock", path.display(), e)),
            };
            // Still the same file under that name? (See "The unlink race" above.)
            match std::fs::symlink_metadata(path) {
                Ok(now) if now.ino() == meta.ino() && now.dev() == meta.dev() => {}
                _ => continue,
            }
            crate::trace!("flock({}, LOCK_EX|LOCK_NB) -> ok", path.display());
            locked.set_len(0).ctx("ftruncate", path.display())?;
            locked.rewind().ctx("lseek", path.display())?;
            writeln!(locked, "{}", std::process::id()).ctx("write", path.display())?;
            return Ok(PidFile {
                path: path.to_owned(),
                lock: Some(locked),
            });
        }
    }

    /// The path of the pid file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Unlink first, while the lock is still ours, so nobody can take over a file we are
        // about to delete; closing the file then releases the lock.
        if let Err(e) = nix::unistd::unlink(&self.path) {
            if e != Errno::ENOENT {
                eprintln!("warning: unlink {}: {}", self.path.display(), e.desc());
            }
        }
        drop(self.lock.take());
    }
}

fn read_pid_from(file: &mut File) -> Option<Pid> {
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)
        .map(Pid::from_raw)
}

/// Read the pid of the daemon that holds the pid file at `path`.
///
/// Fails if the file is missing or unreadable, holds no valid pid, or is not locked (its daemon
/// is gone: signalling that pid could hit an unrelated process that reused it).
pub fn read(path: &Path) -> Result<Pid> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ctx("open", path.display())?;
    let pid = read_pid_from(&mut file)
        .ok_or_else(|| Error::msg(format!("{}: does not hold a pid", path.display())))?;
    // A shared lock succeeds only if no daemon holds its exclusive lock.
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Err((_, Errno::EWOULDBLOCK)) => Ok(pid),
        Ok(_) => Err(Error::msg(format!(
            "{}: stale pid file (pid {pid} is no longer running it)",
            path.display()
        ))),
        Err((_, e)) => Err(Error::sys("flock", path.display(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.pid");
        let held = PidFile::create(&path).unwrap();
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts just as another process would.
        let err = PidFile::create(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "locked by a running daemon (pid {})",
                std::process::id()
            )),
            "{err}"
        );
        assert_eq!(read(&path).unwrap().as_raw() as u32, std::process::id());
        drop(held);
        assert!(!path.exists());
    }

    #[test]
    fn stale_file_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.pid");
        std::fs::write(&path, "999999999\n").unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .contains("stale pid file")
        );
        let held = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(held);
    }

    #[test]
    fn symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let path = tmp.path().join("d.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = PidFile::create(&path).unwrap_err().to_string();
        let want = format!(
            "open {}: Too many symbolic links encountered",
            path.display()
        );
        assert_eq!(err, want);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
