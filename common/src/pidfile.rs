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
//!
//! # Who holds it: ask the lock, not the file
//!
//! The pid written in the file can be stale at the very moment the lock is held: a newcomer
//! takes over a dead daemon's file by locking it first and rewriting it after, so a reader
//! that reads the old pid and then finds the file locked would name the dead daemon (and its
//! pid may by now belong to an unrelated process that a `kill` would hit). Reading after the
//! lock test does not help either: the newcomer may not have written yet. Only the kernel
//! knows who holds a lock, and it says so for one kind of lock: `fcntl(F_GETLK)` reports the
//! pid of the process holding a POSIX record lock. It does not see `flock` locks at all, and
//! for open-file-description locks (`F_OFD_SETLK`) it reports -1.
//!
//! So a daemon holds two locks on its pid file, each for what it does well:
//!
//! - a POSIX **record lock** (`fcntl(F_SETLK)`, a write lock on the whole file), taken
//!   *first*: whoever holds it is named by `F_GETLK`, from the kernel's lock table, which a
//!   dead process cannot be in. [`read`] and a refused [`PidFile::create`] name the holder
//!   this way and never from the file's text; the text is for people and `kill $(cat FILE)`.
//! - the **`flock`**, taken second, which excludes a second holder even within one process
//!   (record locks belong to a process, so a second `F_SETLK` from the same process succeeds
//!   and replaces its first) and survives what a record lock does not (below). Shell tools
//!   (`flock(1)`, `make clean-ipc`) test this one.
//!
//! Taking the record lock first means there is no moment when a process has the file and the
//! kernel cannot name it: a reader sees either nobody (stale) or the process that is taking
//! the file over, before it has written a byte.
//!
//! ## Pitfall: closing any descriptor of the file drops the record lock
//!
//! A POSIX record lock is released when its process closes *any* descriptor of the file, not
//! just the one it was taken through (fcntl(2), "Advisory record locking"). A daemon that
//! opened its own pid file a second time (to read it, to check something) and closed it
//! would silently lose the lock that names it. This module keeps a list of the pid files its
//! process holds: [`read`] or [`PidFile::create`] on one of them answers "this process" and,
//! having closed the descriptor it opened, takes the record lock again. Code outside this
//! module must not open a held pid file; if it does, the `flock` still excludes rivals, and
//! [`read`] says that the holder cannot be named rather than guess.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};
use crate::lock::{self, Holder};

/// Device and inode: what tells one file from another, whatever its name.
type FileId = (u64, u64);

/// The pid files this process holds, each with the descriptor that holds its locks (see
/// "Pitfall" in the module docs).
type Held = Vec<(FileId, Arc<Flock<File>>)>;

/// [`Held`], behind the mutex that every open of a pid file in this process takes for as long
/// as it keeps the file open. Record locks belong to the process, not the thread: a `read` on
/// one thread closing its descriptor while `create` on another has just taken the record lock
/// would drop that lock, so the two never overlap.
static HELD: Mutex<Held> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Held> {
    // A panic while the list was locked leaves it whole (each change is one push or retain).
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A locked pid file, removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// Device and inode of the file we locked: the path is unlinked only while it names it.
    id: FileId,
    /// Holds both locks; dropped (closed, unlocked) after the file is unlinked. Shared only
    /// with [`HELD`].
    lock: Option<Arc<Flock<File>>>,
}

impl PidFile {
    /// Create or take over the pid file at `path` and write our pid into it.
    ///
    /// Fails if a live process holds it, naming that process's pid, or if `path` is a symlink
    /// (O_NOFOLLOW), not a regular file, owned by another user, or writable by others.
    pub fn create(path: &Path) -> Result<PidFile> {
        Self::create_inner(path, &mut |_| {})
    }

    /// [`PidFile::create`], calling `between(step)` after each lock is taken (`"record lock"`,
    /// `"flock"`), before the pid is written. Only for tests, which stop the process there to
    /// make the takeover's window certain.
    #[cfg(feature = "test-support")]
    #[doc(hidden)]
    pub fn create_observed(path: &Path, between: &mut dyn FnMut(&str)) -> Result<PidFile> {
        Self::create_inner(path, between)
    }

    fn create_inner(path: &Path, between: &mut dyn FnMut(&str)) -> Result<PidFile> {
        let mut list = held();
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
            let id = (meta.dev(), meta.ino());
            let locked_by = |holder: String| {
                Err(Error::msg(format!(
                    "{}: locked by a running daemon ({holder})",
                    path.display()
                )))
            };
            if is_held_here(&list, id) {
                // A record lock taken now would succeed (it is our own), and closing this
                // descriptor would then drop the one our PidFile holds.
                close_keeping_lock(&list, file, id);
                return locked_by(format!("pid {}", std::process::id()));
            }
            match lock::lock_whole(file.as_fd(), false) {
                Ok(()) => {}
                Err(Errno::EAGAIN | Errno::EACCES) => match holder(&file, path)? {
                    Some(pid) => return locked_by(format!("pid {pid}")),
                    // Released since: its holder has just gone. Try again.
                    None => continue,
                },
                Err(e) => return Err(Error::sys("fcntl(F_SETLK)", path.display(), e)),
            }
            crate::trace!(
                "fcntl({}, F_SETLK, F_WRLCK, whole file) -> ok",
                path.display()
            );
            between("record lock");
            let mut locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => locked,
                // Someone who takes only the flock (flock(1), a shell probe): the kernel
                // cannot name it.
                Err((_, Errno::EWOULDBLOCK)) => {
                    return locked_by(
                        "one that does not say its pid: only its flock is held".to_owned(),
                    );
                }
                Err((_, e)) => return Err(Error::sys("flock", path.display(), e)),
            };
            crate::trace!("flock({}, LOCK_EX|LOCK_NB) -> ok", path.display());
            between("flock");
            // Still the same file under that name? (See "The unlink race" above.)
            match std::fs::symlink_metadata(path) {
                Ok(now) if (now.dev(), now.ino()) == id => {}
                _ => continue,
            }
            locked.set_len(0).ctx("ftruncate", path.display())?;
            locked.rewind().ctx("lseek", path.display())?;
            writeln!(locked, "{}", std::process::id()).ctx("write", path.display())?;
            let lock = Arc::new(locked);
            list.push((id, Arc::clone(&lock)));
            return Ok(PidFile {
                path: path.to_owned(),
                id,
                lock: Some(lock),
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
        // The name first (if still ours), then closing the file releases both locks.
        self.unlink();
        let mut list = held();
        list.retain(|(id, _)| *id != self.id);
        drop(self.lock.take());
    }
}

/// True if this process holds the pid file with this device and inode.
fn is_held_here(list: &Held, id: FileId) -> bool {
    list.iter().any(|(held, _)| *held == id)
}

/// Close `file`, a second descriptor of a pid file this process holds, and take the record
/// lock that closing it dropped again (see "Pitfall" in the module docs). The `flock` is
/// still ours, so only a newcomer that has taken the record lock in the instant between, and
/// is about to fail at the `flock`, can hold it: waiting (F_SETLKW) outlasts it.
fn close_keeping_lock(list: &Held, file: File, id: FileId) {
    drop(file);
    if let Some((_, lock)) = list.iter().find(|(held, _)| *held == id) {
        if let Err(e) = lock::lock_whole(lock.as_fd(), true) {
            eprintln!(
                "warning: fcntl(F_SETLKW) on a pid file we hold: {}",
                e.desc()
            );
        }
    }
}

/// The pid of the process holding the record lock on `file`, from the kernel (`F_GETLK`,
/// through [`crate::lock::holder`]); None if nobody holds it. An error if a holder exists that
/// cannot be named: one in a pid namespace we cannot see, or an open-file-description lock.
fn holder(file: &File, path: &Path) -> Result<Option<Pid>> {
    match lock::holder(file.as_fd()).ctx("fcntl(F_GETLK)", path.display())? {
        Holder::Nobody => Ok(None),
        Holder::Process(pid) => Ok(Some(pid)),
        Holder::Unnamed => Err(Error::msg(format!(
            "{}: locked by a process this one cannot name (another pid namespace, or an open \
             file description lock)",
            path.display()
        ))),
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

/// The pid of the daemon that holds the pid file at `path`, as the kernel's lock table says
/// (see "Who holds it" in the module docs), never as the file's text says.
///
/// Fails if the file is missing or unreadable, is not locked (its daemon is gone: signalling
/// the pid in it could hit an unrelated process that reused it), is locked by a process that
/// cannot be named, or fails the checks of [`PidFile::create`] (another user's file could
/// name any pid).
pub fn read(path: &Path) -> Result<Pid> {
    let list = held();
    // O_NONBLOCK: opening a FIFO for reading blocks until some process opens it for writing,
    // which may be never, and no signal but SIGKILL ends that wait. With O_NONBLOCK the open
    // returns at once and `check_ours` refuses what is not a regular file; on a regular file
    // the flag changes nothing.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ctx("open", path.display())?;
    let meta = file.metadata().ctx("fstat", path.display())?;
    check_ours(path, &meta)?;
    let id = (meta.dev(), meta.ino());
    if is_held_here(&list, id) {
        // F_GETLK never reports our own locks; and see "Pitfall" for the close.
        close_keeping_lock(&list, file, id);
        return Ok(nix::unistd::getpid());
    }
    if let Some(pid) = holder(&file, path)? {
        return Ok(pid);
    }
    // Nobody holds the record lock. A shared flock succeeds if nobody holds the flock either.
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(mut file) => {
            let stale = read_pid_from(&mut file)
                .map_or_else(|| "no pid".to_owned(), |pid| format!("pid {pid}"));
            Err(Error::msg(format!(
                "{}: stale pid file ({stale} is no longer running it)",
                path.display()
            )))
        }
        Err((_, Errno::EWOULDBLOCK)) => Err(Error::msg(format!(
            "{}: locked by a process that does not say its pid (only its flock is held: a \
             daemon stopping at this instant, or a tool such as flock(1))",
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
