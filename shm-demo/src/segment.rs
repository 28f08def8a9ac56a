//! Getting the segment into our address space: POSIX (`shm_open` + `mmap`) or System V
//! (`shmget` + `shmat`), and the checked, atomic-only view of it that the rest of the
//! program uses ([`Region`]).
//!
//! POSIX: the server creates the object with `shm_open(O_CREAT|O_EXCL|O_RDWR, 0600)` (glibc
//! adds O_NOFOLLOW and O_CLOEXEC), sizes it with `posix_fallocate` (so a full `/dev/shm` is an
//! ENOSPC now rather than a SIGBUS on first touch later), and `mmap`s it `MAP_SHARED`. A
//! client opens it without O_CREAT, and checks with `fstat` that it is a regular file of ours
//! with mode 0600 before mapping exactly `st_size` bytes: the mapping length never comes from
//! the header, which is only believed once it agrees with `st_size`.
//!
//! System V: the key is `ftok(<runtime dir>/<name>.sysv, 0x1d)`, so it reads `0x1dXXXXXX`
//! (`ftok` puts the project id in the top byte and bits of the file's device and inode
//! below). The server creates the segment with `shmget(key, size, IPC_CREAT|IPC_EXCL|0600)`,
//! everyone `shmat`s it, and `IPC_STAT` gives the owner, mode, size (`shm_segsz`, our
//! `fstat`) and the attach count. `IPC_RMID` on exit. nix wraps none of SysV IPC, so these
//! calls go through `libc`.
//!
//! # Limitation
//!
//! Another process of the same user can still `ftruncate` the POSIX object while it is
//! mapped, and a later access past the new end is a SIGBUS. Only processes of the same user
//! can open it (mode 0600), and this program never shrinks it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use common::{Context, Error, Result, names, trace};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, shm_open};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::Uid;

use crate::layout;

mod region;
mod sysv;

use region::Attach;
pub use region::{Fields, Region};

/// The `ftok` project id: the top byte of our SysV keys (`make clean-ipc` sweeps them).
pub const FTOK_PROJ: i32 = 0x1d;

/// Where a database lives: a POSIX shared memory object or a System V segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `shm_open` + `mmap`, an object in `/dev/shm`.
    Posix,
    /// `shmget` + `shmat`, keyed by `ftok` of a key file (`ipcs -m`).
    Sysv,
}

/// Which database: its POSIX name (which names the key file of a System V one), and where it
/// lives.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub flavor: Flavor,
}

impl Target {
    /// Check a POSIX object name: one leading `/`, no other, 2..=255 bytes.
    pub fn new(name: &str, flavor: Flavor) -> Result<Target> {
        let ok = name.len() >= 2
            && name.len() <= 255
            && name.starts_with('/')
            && !name[1..].contains('/')
            && !name.contains('\0');
        if !ok {
            return Err(Error::Usage(format!(
                "bad name {name:?}: a POSIX shared memory name is '/' and 1..=254 more bytes, \
                 no other '/'"
            )));
        }
        Ok(Target {
            name: name.to_owned(),
            flavor,
        })
    }

    /// The name without its slash, for files in the runtime dir.
    fn stem(&self) -> &str {
        &self.name[1..]
    }

    /// The file whose inode `ftok` turns into the SysV key.
    pub fn key_path(&self) -> Result<PathBuf> {
        names::runtime_path(&format!("{}.sysv", self.stem()))
    }

    /// The server's locked pid file.
    pub fn pid_path(&self) -> Result<PathBuf> {
        let kind = match self.flavor {
            Flavor::Posix => "",
            Flavor::Sysv => ".sysv",
        };
        names::runtime_path(&format!("{}{kind}.pid", self.stem()))
    }

    /// The database as errors name it: `/ipc-demo-db`, or `sysv:/ipc-demo-db`.
    pub fn label(&self) -> String {
        match self.flavor {
            Flavor::Posix => self.name.clone(),
            Flavor::Sysv => format!("sysv:{}", self.name),
        }
    }
}

/// Create the database object of `size` bytes, zero-filled. `None` if something already
/// exists at the name (the caller decides whether it is a leftover to adopt).
pub fn create(target: &Target, size: usize) -> Result<Option<Region>> {
    if target.flavor == Flavor::Sysv {
        return sysv::create(target, size);
    }
    let name = target.name.as_str();
    let fd = match shm_open(
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::S_IRUSR | Mode::S_IWUSR,
    ) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => {
            trace!("shm_open({name}, O_CREAT|O_EXCL|O_RDWR, 0600) -> EEXIST");
            return Ok(None);
        }
        Err(e) => return Err(Error::sys("shm_open", name, e)),
    };
    trace!("shm_open({name}, O_CREAT|O_EXCL|O_RDWR, 0600) -> fd");
    // From here on the object is ours: remove it again if sizing or mapping fails.
    let guard = common::cleanup::Unlink::new(common::cleanup::Object::Shm(name.to_owned()));
    let len = libc::off_t::try_from(size)
        .map_err(|_| Error::msg(format!("{name}: {size} bytes is too large")))?;
    // posix_fallocate, not ftruncate: ftruncate makes a sparse object whose pages are found
    // missing only when first touched, as a SIGBUS, if /dev/shm is full by then.
    nix::fcntl::posix_fallocate(fd.as_fd(), 0, len).map_err(|e| match e {
        Errno::ENOSPC => Error::msg(format!(
            "posix_fallocate {name}: no space left for {size} bytes in /dev/shm (try fewer \
             --slots or a smaller --value-max)"
        )),
        e => Error::sys("posix_fallocate", name, e),
    })?;
    trace!("posix_fallocate({name}, 0, {size})");
    let region = map(&fd, name)?;
    record_name(&region, target);
    let _ = guard.keep();
    Ok(Some(region))
}

/// Open an existing database object: checked to be ours and 0600, mapped at its real size.
pub fn open(target: &Target) -> Result<Region> {
    if target.flavor == Flavor::Sysv {
        return sysv::open(target);
    }
    let name = target.name.as_str();
    let fd = shm_open(name, OFlag::O_RDWR, Mode::empty()).map_err(|e| match e {
        Errno::ENOENT => Error::msg(format!(
            "{name}: no such database (start one with: shm-demo server --name {name})"
        )),
        e => Error::sys("shm_open", name, e),
    })?;
    trace!("shm_open({name}, O_RDWR) -> fd");
    let region = map(&fd, name)?;
    check_name(&region, target, "the object")?;
    Ok(region)
}

/// Record in the header whose database this is: a hash of the name (see `layout`), written
/// first thing after the object is made, before anyone can find it initialised.
fn record_name(region: &Region, target: &Target) {
    region
        .u64(layout::H_NAME_HASH)
        .store(layout::name_hash(&target.name), Ordering::Relaxed);
}

/// Refuse an object whose header records another database's name. The hash is 0 in an
/// object its creator has not initialised yet: the header checks say so later.
fn check_name(region: &Region, target: &Target, what: &str) -> Result<()> {
    let recorded = region.u64(layout::H_NAME_HASH).load(Ordering::Relaxed);
    if recorded == 0 || recorded == layout::name_hash(&target.name) {
        return Ok(());
    }
    Err(Error::msg(format!(
        "{}: {what} holds another database (its header records the name hash \
         {recorded:016x}, not this name's); not using it",
        target.label()
    )))
}

/// Check what `fstat` says about the object, then map all of it.
fn map(fd: &OwnedFd, name: &str) -> Result<Region> {
    let st = fstat(fd.as_fd()).ctx("fstat", name)?;
    vet(
        name,
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG,
        st.st_uid,
        st.st_mode & 0o7777,
        u64::try_from(st.st_size).unwrap_or(0),
    )?;
    let len = usize::try_from(st.st_size).map_err(|_| Error::msg(format!("{name}: bad size")))?;
    let nz =
        std::num::NonZeroUsize::new(len).ok_or_else(|| Error::msg(format!("{name}: empty")))?;
    // SAFETY: a fresh shared mapping of a file we hold open; nothing else in this process
    // refers to the address range it returns.
    let ptr = unsafe {
        mmap(
            None,
            nz,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            fd.as_fd(),
            0,
        )
    }
    .ctx("mmap", name)?;
    trace!("fstat({name}) -> {len} bytes, mode 0600; mmap(MAP_SHARED, {len})");
    // The descriptor is closed on return: the mapping keeps the object alive by itself.
    Ok(Region {
        ptr: ptr.cast(),
        len,
        attach: Attach::Mmap,
        label: name.to_owned(),
    })
}

/// Refuse an object that is not a regular file (or segment) of ours with mode 0600, or too
/// small to hold a header. Sizes beyond that are checked against the header later.
fn vet(name: &str, regular: bool, uid: u32, mode: u32, size: u64) -> Result<()> {
    let refuse = |why: String| Err(Error::msg(format!("{name}: {why}; not using it")));
    if !regular {
        return refuse("is not a regular shared memory object".into());
    }
    if uid != Uid::effective().as_raw() {
        return refuse(format!("is owned by uid {uid}, not by us"));
    }
    if mode != 0o600 {
        return refuse(format!("has mode {mode:04o}, expected 0600"));
    }
    if size < layout::FIXED_HEADER as u64 {
        return refuse(format!(
            "is {size} bytes, smaller than a header ({} bytes)",
            layout::FIXED_HEADER
        ));
    }
    Ok(())
}

/// True if an object stands at the name (whatever it holds).
pub fn exists(target: &Target) -> Result<bool> {
    if target.flavor == Flavor::Sysv {
        return sysv::exists(target);
    }
    match shm_open(target.name.as_str(), OFlag::O_RDONLY, Mode::empty()) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        // Someone else's object we may not open is still an object.
        Err(Errno::EACCES) => Ok(true),
        Err(e) => Err(Error::sys("shm_open", &target.name, e)),
    }
}

/// Remove the object's name (existing mappings stay valid until unmapped).
pub fn remove(target: &Target) -> Result<()> {
    if target.flavor == Flavor::Sysv {
        return sysv::remove(target);
    }
    common::cleanup::Object::Shm(target.name.clone()).unlink()?;
    trace!("shm_unlink({})", target.name);
    Ok(())
}

/// How many processes have the database attached: SysV counts them (`shm_nattch`); for
/// POSIX, the processes of ours whose `/proc/PID/maps` show the object.
pub fn attached(target: &Target) -> Option<u64> {
    if target.flavor == Flavor::Sysv {
        return sysv::nattch(target);
    }
    let needle = format!("/dev/shm{}", target.name);
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(maps) = std::fs::read_to_string(entry.path().join("maps")) {
            if maps
                .lines()
                .any(|l| l.ends_with(&needle) || l.ends_with(&format!("{needle} (deleted)")))
            {
                n += 1;
            }
        }
    }
    Some(n)
}

/// Count this process among the database's watchers for as long as the returned descriptor
/// is open: an open file description read lock (`F_OFD_SETLK`, `F_RDLCK`) on the first byte
/// of the object (POSIX) or of its key file (SysV). Read locks coexist, and the kernel drops
/// a lock when its last descriptor closes, however the process ends (SIGKILL included), so
/// [`watchers`] counts only the living; a count kept in the segment is not given back by a
/// watcher that cannot run a handler.
pub fn watch_lock(target: &Target) -> Result<OwnedFd> {
    let (fd, what) = lock_file(target)?;
    let lock = libc::flock {
        l_type: libc::F_RDLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 1,
        l_pid: 0,
    };
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&lock))
        .ctx("fcntl(F_OFD_SETLK, F_RDLCK)", &what)?;
    trace!("fcntl({what}, F_OFD_SETLK, F_RDLCK, byte 0): counted as a watcher");
    Ok(fd)
}

/// How many processes hold the watchers' lock (see [`watch_lock`]), from `/proc/locks`, whose
/// lines name a lock's file as `MAJOR:MINOR:INODE` (the device numbers in hex). None if that
/// cannot be read.
pub fn watchers(target: &Target) -> Option<u64> {
    let (fd, _) = lock_file(target).ok()?;
    let st = fstat(fd.as_fd()).ok()?;
    let id = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev),
        st.st_ino
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    // `1: OFDLCK ADVISORY READ -1 00:1a:4242 0 0`; a waiter's line has `->` after the number.
    let held = locks.lines().filter(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.get(1) != Some(&"->") && f.get(5) == Some(&id.as_str()) && f[6..] == ["0", "0"]
    });
    Some(held.count() as u64)
}

/// The file the watchers lock, opened for reading, and its name for messages.
fn lock_file(target: &Target) -> Result<(OwnedFd, String)> {
    if target.flavor == Flavor::Sysv {
        let path = target.key_path()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .ctx("open", path.display())?;
        return Ok((file.into(), path.display().to_string()));
    }
    let name = target.name.as_str();
    let fd = shm_open(name, OFlag::O_RDONLY, Mode::empty()).ctx("shm_open", name)?;
    Ok((fd, name.to_owned()))
}
