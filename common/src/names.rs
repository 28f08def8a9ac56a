//! Where named objects live and what they are called.
//!
//! Filesystem objects (FIFOs, socket files, pid files) go in a private runtime directory:
//! `$XDG_RUNTIME_DIR/ipc-demo` when the session has one, else `/tmp/ipc-demo-$UID`. It is
//! created with mode 0700, and refused if it is a symlink, not a directory, owned by someone
//! else, or open to group or others: in a shared `/tmp` another user could otherwise plant a
//! symlink or a FIFO of their own where ours is expected.
//!
//! POSIX objects (`shm_open`, `mq_open`, `sem_open`) live in one flat namespace per machine,
//! so their names carry the project prefix: `/ipc-demo-<what>`. `make clean-ipc` sweeps by that
//! prefix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag, lstat};
use nix::unistd::mkdir;
use nix::unistd::{Uid, getpid};

use crate::error::{Context, Error, Result};

/// The prefix of every object this project names.
pub const PREFIX: &str = "ipc-demo";

/// The runtime directory, created if needed and checked to be private (see the module docs).
pub fn runtime_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        // XDG says to ignore a relative value; an empty one means "unset".
        Some(base) if Path::new(&base).is_absolute() => Path::new(&base).join(PREFIX),
        _ => PathBuf::from(format!("/tmp/{PREFIX}-{}", Uid::effective())),
    };
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// A path for a named object in the runtime directory, e.g. `runtime_path("log.fifo")`.
pub fn runtime_path(file: &str) -> Result<PathBuf> {
    Ok(runtime_dir()?.join(file))
}

/// Create `dir` with mode 0700 if it does not exist, then check that it is a real directory,
/// ours, and closed to group and others.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match mkdir(dir, Mode::S_IRWXU) {
        Ok(()) => crate::trace!("mkdir({}, 0700)", dir.display()),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::sys("mkdir", dir.display(), e)),
    }
    // lstat, not stat: a symlink must be refused, not followed.
    let st = lstat(dir).ctx("lstat", dir.display())?;
    let refuse = |why: String| Err(Error::msg(format!("runtime dir {}: {why}", dir.display())));
    match kind_of(st.st_mode) {
        Kind::Symlink => return refuse("is a symlink; refusing to follow it".into()),
        Kind::Directory => {}
        other => return refuse(format!("is a {other}, not a directory")),
    }
    if st.st_uid != Uid::effective().as_raw() {
        return refuse(format!(
            "is owned by uid {}, not by us (uid {})",
            st.st_uid,
            Uid::effective()
        ));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o077 != 0 {
        return refuse(format!(
            "is open to group or others (mode {mode:04o}); expected 0700"
        ));
    }
    Ok(())
}

/// The kind of a filesystem object, as `lstat` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (never followed).
    Symlink,
    /// A FIFO (named pipe).
    Fifo,
    /// A Unix domain socket file.
    Socket,
    /// A device or anything else.
    Other,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::File => "regular file",
            Kind::Directory => "directory",
            Kind::Symlink => "symlink",
            Kind::Fifo => "FIFO",
            Kind::Socket => "socket",
            Kind::Other => "special file",
        })
    }
}

fn kind_of(mode: libc::mode_t) -> Kind {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Directory,
        SFlag::S_IFLNK => Kind::Symlink,
        SFlag::S_IFIFO => Kind::Fifo,
        SFlag::S_IFSOCK => Kind::Socket,
        _ => Kind::Other,
    }
}

/// Check what already stands at `path` before creating or reusing a named object there.
///
/// Returns `Ok(false)` if nothing is there, `Ok(true)` if a `want` owned by us is there (a
/// leftover to reuse or replace), and an error naming the path if it is a symlink, an object
/// of another kind, or someone else's. The caller decides what "reuse" means (a FIFO is
/// reopened; a socket file is probed for a live server first).
pub fn existing(path: &Path, want: Kind) -> Result<bool> {
    let st = match lstat(path) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(false),
        Err(e) => return Err(Error::sys("lstat", path.display(), e)),
    };
    let kind = kind_of(st.st_mode);
    if kind == Kind::Symlink {
        return Err(Error::msg(format!(
            "{}: is a symlink; refusing to follow it",
            path.display()
        )));
    }
    if kind != want {
        return Err(Error::msg(format!(
            "{}: is a {kind}, not a {want}",
            path.display()
        )));
    }
    if st.st_uid != Uid::effective().as_raw() {
        return Err(Error::msg(format!(
            "{}: is owned by uid {}, not by us (uid {})",
            path.display(),
            st.st_uid,
            Uid::effective()
        )));
    }
    Ok(true)
}

/// Replace the file at `path` with `bytes`, atomically: a reader (or a process that starts
/// after a crash) finds the old file or the new one, never half of one.
///
/// The bytes go to a sibling first, `PATH.tmp.PID`, made `O_CREAT|O_EXCL` (never over a file
/// someone planted there), mode 0600, `O_NOFOLLOW|O_CLOEXEC`; it is `fsync`ed (so that the
/// new contents are on disk before the name points at them, which matters only for a crash
/// of the machine), then renamed over `path`. A sibling already at that name can only be the
/// leftover of an earlier process with our pid that was killed mid-write: it is removed once
/// and the write tried again. On an error the sibling is removed and `path` is untouched.
pub fn replace_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", getpid()));
    let tmp = PathBuf::from(tmp);
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let mut file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp).ctx("unlink", tmp.display())?;
            open()
        }
        other => other,
    }
    .ctx("open", tmp.display())?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .ctx("write", tmp.display())
        .and_then(|()| std::fs::rename(&tmp, path).ctx("rename", path.display()));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    crate::trace!(
        "write({}) + fsync + rename -> {}",
        tmp.display(),
        path.display()
    );
    Ok(())
}

/// The POSIX IPC name for `what`: `/ipc-demo-<what>`.
pub fn posix_name(what: &str) -> String {
    format!("/{PREFIX}-{what}")
}

/// Where Linux lists POSIX message queues: an `mqueue` filesystem, mounted here by convention
/// (mq_overview(7)).
pub const MQUEUE_DIR: &str = "/dev/mqueue";

/// Why [`mqueue_listing`] has nothing to show, said as it is to the user.
pub const MQUEUE_NOT_MOUNTED: &str = "/dev/mqueue is not mounted, so POSIX message queues \
     cannot be listed (as root: mount -t mqueue none /dev/mqueue)";

/// `statfs(2)`'s `f_type` of an mqueue filesystem, from linux/magic.h (neither libc nor nix
/// defines it).
const MQUEUE_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x1980_0202);

/// The entries of [`MQUEUE_DIR`], one per queue in this IPC namespace, if an mqueue filesystem
/// is mounted there; `None` if not (then see [`MQUEUE_NOT_MOUNTED`]).
///
/// Queues work without the mount (`mq_open` needs none); only listing them needs it. And the
/// pitfall: where nothing is mounted, `/dev/mqueue` is often still there as an empty
/// directory (a container's, or the mount point systemd would use), and reading it succeeds
/// and lists no queue, exactly like a system that has none. So the filesystem's type is
/// checked (`statfs`), never only whether the directory can be read.
pub fn mqueue_listing() -> Option<std::fs::ReadDir> {
    is_mqueue_fs(Path::new(MQUEUE_DIR))
        .then(|| std::fs::read_dir(MQUEUE_DIR).ok())
        .flatten()
}

fn is_mqueue_fs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type() == MQUEUE_MAGIC)
}

/// A name no other process or call will produce at the same time: `<tag>-<pid>-<n>-<t>`,
/// where `n` counts calls in this process and `t` is a few hex digits of the clock, so that a
/// recycled pid does not collide with a leftover of its predecessor.
pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{tag}-{}-{n}-{:05x}", getpid(), nanos & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn replace_private_swaps_the_whole_file_and_leaves_no_sibling() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ids");
        std::fs::write(&path, "old\n").unwrap();
        // A leftover of an earlier process with our pid, killed mid-write.
        let sibling = tmp.path().join(format!("ids.tmp.{}", getpid()));
        std::fs::write(&sibling, "half").unwrap();
        replace_private(&path, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "no sibling left"
        );
        // A path whose directory is gone: an error naming the sibling, nothing made.
        let gone = tmp.path().join("no-such-dir").join("ids");
        let err = replace_private(&gone, b"x").unwrap_err().to_string();
        assert!(
            err.starts_with("open ") && err.contains("ids.tmp."),
            "{err}"
        );
    }

    /// The mount table's word on `dir`: an mqueue filesystem is mounted exactly there.
    fn mountinfo_says_mqueue_at(dir: &str) -> bool {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        // "36 35 0:19 / /dev/mqueue rw,relatime shared:14 - mqueue mqueue rw": the mount point
        // is field 5, the filesystem type the first field after " - ". The last mount on a
        // point is the one visible there.
        table
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(dir))
            .and_then(|l| l.split_once(" - "))
            .is_some_and(|(_, rest)| rest.split(' ').next() == Some("mqueue"))
    }

    #[test]
    fn the_mqueue_listing_is_there_exactly_when_the_mount_table_says_so() {
        let mounted = mountinfo_says_mqueue_at(MQUEUE_DIR);
        assert_eq!(mqueue_listing().is_some(), mounted, "{MQUEUE_DIR}");
        if !mounted {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("SKIPPED the mounted case of this test: {MQUEUE_NOT_MOUNTED}\n").as_bytes(),
            );
        }
    }

    #[test]
    fn an_empty_directory_is_not_a_listing_of_queues() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(std::fs::read_dir(tmp.path()).is_ok(), "readable, and empty");
        assert!(!is_mqueue_fs(tmp.path()));
    }

    #[test]
    fn private_dir_is_created_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rt");
        ensure_private_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // A second call accepts the directory it made.
        ensure_private_dir(&dir).unwrap();
    }

    #[test]
    fn symlinked_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("rt");
        symlink(&target, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
    }

    #[test]
    fn group_writable_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rt");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("open to group or others (mode 0770)"), "{err}");
    }

    #[test]
    fn file_in_place_of_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("rt");
        std::fs::write(&file, b"x").unwrap();
        let err = ensure_private_dir(&file).unwrap_err().to_string();
        assert!(err.contains("is a regular file, not a directory"), "{err}");
    }

    #[test]
    fn existing_checks_kind_and_refuses_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("obj");
        assert!(!existing(&p, Kind::Fifo).unwrap());
        nix::unistd::mkfifo(&p, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        assert!(existing(&p, Kind::Fifo).unwrap());
        let err = existing(&p, Kind::Socket).unwrap_err().to_string();
        assert!(err.ends_with("is a FIFO, not a socket"), "{err}");
        let l = tmp.path().join("link");
        symlink(&p, &l).unwrap();
        assert!(
            existing(&l, Kind::Fifo)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
    }

    #[test]
    fn names_are_prefixed_and_unique() {
        assert_eq!(posix_name("tasks"), "/ipc-demo-tasks");
        assert_ne!(unique("t"), unique("t"));
    }
}
