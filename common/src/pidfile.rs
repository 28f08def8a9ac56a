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
//! # A file someone else made
//!
//! In a shared directory another user can create the pid file first; if we locked it and
//! wrote into it, they could later put any pid in it for `kill $(cat file)` (or a root
//! `signal-demo send`) to hit, and we would delete their file on exit. So an existing file is
//! refused unless we own it and nobody else can write it, checked with `fstat` on the file we
//! opened (`O_NOFOLLOW`, so a symlink is refused too, not followed), never by name first.
//! Reading a pid file for signalling applies the same check. On drop we unlink the path only
//! if it still names the file we locked.
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
    /// Device and inode of the file we locked: the path is unlinked only while it names it.
    id: (u64, u64),
    /// Holds the lock; dropped (closed, unlocked) after the file is unlinked.
    lock: Option<Flock<File>>,
}

impl PidFile {
    /// Create or take over the pid file at `path` and write our pid into it.
    ///
    /// Fails if a live process holds it, naming that process's pid, or if `path` is a symlink
    /// (O_NOFOLLOW), not a regular file, owned by another user, or writable by others.
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
            check_ours(path, &meta)?;
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
                id: (meta.dev(), meta.ino()),
                lock: Some(locked),
            });
        }
    }

    /// The path of the pid file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device and inode of the locked file: compare them with another file's to tell
    /// whether two names (a hard link, another spelling) are one file.
    pub fn id(&self) -> (u64, u64) {
        self.id
    }
}

impl PidFile {
    /// Remove the name now, keeping the lock until drop: for a daemon whose stop takes a while
    /// (a drain), so that a hard exit in the meantime (a second signal) leaves no pid file
    /// behind. A newcomer may then start at once, with a new file; ours stays locked and
    /// nameless until we exit. Only if the path still names our file, as on drop.
    pub fn unlink(&self) {
        // Unlink while the lock is still ours, so nobody can take over a file we are about to
        // delete. Not if the path names another file: one put in its place (by `mv`, by a
        // successor) is not ours to delete.
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|now| (now.dev(), now.ino()) == self.id);
        if ours {
            if let Err(e) = nix::unistd::unlink(&self.path) {
                if e != Errno::ENOENT {
                    eprintln!("warning: unlink {}: {}", self.path.display(), e.desc());
                }
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // The name first (if still ours), then closing the file releases the lock.
        self.unlink();
        drop(self.lock.take());
    }
}

/// Refuse a pid file that is not a regular file, that another user owns, or that others may
/// write (we create ours 0600; anything looser was not made by us). `meta` comes from `fstat`
/// on the opened file, so it describes what we would lock and read, not what a name pointed
/// to a moment before.
fn check_ours(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let refuse = |why: String| Err(Error::msg(format!("{}: {why}", path.display())));
    if !meta.file_type().is_file() {
        return refuse("is not a regular file".to_owned());
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return refuse(format!(
            "owned by uid {}, not by us (uid {me}): refusing a pid file someone else made",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "writable by others (mode {:03o}): refusing a pid file someone else could rewrite",
            meta.mode() & 0o777
        ));
    }
    Ok(())
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
/// Fails if the file is missing or unreadable, holds no valid pid, is not locked (its daemon
/// is gone: signalling that pid could hit an unrelated process that reused it), or fails the
/// checks of [`PidFile::create`] (another user's file could name any pid).
pub fn read(path: &Path) -> Result<Pid> {
    // O_NONBLOCK: opening a FIFO for reading blocks until some process opens it for writing,
    // which may be never, and no signal but SIGKILL ends that wait. With O_NONBLOCK the open
    // returns at once and `check_ours` refuses what is not a regular file; on a regular file
    // the flag changes nothing.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ctx("open", path.display())?;
    check_ours(path, &file.metadata().ctx("fstat", path.display())?)?;
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
    fn a_fifo_at_the_pid_file_path_is_refused_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.pid");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Without O_NONBLOCK the open would wait for a writer forever: run it on a thread so
        // that a regression fails this test instead of hanging the suite.
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(read(&path).map_err(|e| e.to_string()));
        });
        let result = outcome
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("pidfile::read returned instead of blocking on the FIFO");
        let err = result.expect_err("a FIFO is not a pid file");
        assert!(err.contains("d.pid"), "the error names the file: {err}");
    }

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

    /// Runs only as root (CI does): making a file another user owns takes `chown`. Elsewhere it
    /// says on stderr, uncaptured, that it was skipped.
    #[test]
    fn another_users_file_is_refused_and_kept() {
        if !nix::unistd::geteuid().is_root() {
            let _ = std::io::stderr().write_all(
                b"SKIPPED another_users_file_is_refused_and_kept: needs root to chown a file\n",
            );
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.pid");
        std::fs::write(&path, "1\n").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let want = format!(
            "{}: owned by uid 65534, not by us (uid 0): refusing a pid file someone else made",
            path.display()
        );
        assert_eq!(PidFile::create(&path).unwrap_err().to_string(), want);
        assert_eq!(read(&path).unwrap_err().to_string(), want);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "1\n",
            "left as it was"
        );
    }

    #[test]
    fn file_writable_by_others_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.pid");
        std::fs::write(&path, "1\n").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .unwrap();
        let err = PidFile::create(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "writable by others (mode 666): refusing a pid file someone else could rewrite"
            ),
            "{err}"
        );
        assert!(path.exists());
    }

    #[test]
    fn a_file_put_in_its_place_is_not_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("d.pid");
        let held = PidFile::create(&path).unwrap();
        let other = tmp.path().join("other");
        std::fs::write(&other, "someone else's\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        drop(held);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's\n");
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
