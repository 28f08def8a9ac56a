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

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use common::{Context, Error, Result, names, trace};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap, shm_open};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::Uid;

use crate::layout::{self, RawHeader};

/// The `ftok` project id: the top byte of our SysV keys (`make clean-ipc` sweeps them).
pub const FTOK_PROJ: i32 = 0x1d;

/// Which database: its POSIX name, and whether it lives in a System V segment instead.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub sysv: bool,
}

impl Target {
    /// Check a POSIX object name: one leading `/`, no other, 2..=255 bytes.
    pub fn new(name: &str, sysv: bool) -> Result<Target> {
        let ok = name.len() >= 2
            && name.len() <= 255
            && name.starts_with('/')
            && !name[1..].contains('/')
            && !name.contains('\0');
        if !ok {
            return Err(Error::Usage(format!(
                "bad name {name:?}: a POSIX shared memory name is '/' and 1..=254 more bytes, no other '/'"
            )));
        }
        Ok(Target {
            name: name.to_owned(),
            sysv,
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
        let kind = if self.sysv { ".sysv" } else { "" };
        names::runtime_path(&format!("{}{kind}.pid", self.stem()))
    }

    /// The database as errors name it: `/ipc-demo-db`, or `sysv:/ipc-demo-db`.
    pub fn label(&self) -> String {
        if self.sysv {
            format!("sysv:{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

/// How the region was attached, hence how it is detached.
#[derive(Debug)]
enum Attach {
    Mmap,
    SysV,
}

/// The segment as mapped into this process. Every access goes through an atomic of the
/// size the layout gives the field, at a bounds-checked, aligned offset.
///
/// Why atomics for every byte: other processes write this memory while we read it. In Rust's
/// memory model a non-atomic read that races with a write is undefined behaviour, even if the
/// value is then thrown away (as a seqlock reader does with a torn copy). Relaxed atomic
/// loads and stores of whole words compile to the same plain `mov`s on x86-64 and ARM64, so
/// the model is kept at no cost. (Volatile reads would not do: they are not atomic, and a
/// racing volatile read is still a data race in Rust's definition.)
#[derive(Debug)]
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    attach: Attach,
    /// What the region is, for messages.
    pub label: String,
}

// SAFETY: Region hands out only atomics (and a raw mutex pointer used with pthread calls,
// which are thread-safe), so sharing it between threads is as safe as sharing the atomics.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// The mapped length in bytes (from `fstat`/`IPC_STAT`, never from the header).
    pub fn size(&self) -> usize {
        self.len
    }

    fn check(&self, off: usize, size: usize) {
        // Offsets come from a validated geometry; failing this is a bug in this program,
        // not bad input, so it panics rather than reading out of bounds.
        assert!(
            off % size == 0 && off.checked_add(size).is_some_and(|end| end <= self.len),
            "offset {off} (+{size}) outside {} bytes or misaligned",
            self.len
        );
    }

    /// The 64-bit field at `off`.
    pub fn u64(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8);
        // SAFETY: `off..off+8` is inside the mapping and 8-aligned (the mapping is
        // page-aligned; `check` verified the offset), the mapping lives as long as `self`,
        // and every process accesses this field only through 64-bit atomics.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// The 32-bit field at `off`.
    pub fn u32(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4);
        // SAFETY: as for `u64`, with 4 bytes and 4-alignment.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// The fixed fields of the record at `off` (its first [`layout::R_KEY`] bytes: sequence,
    /// notify, state, hash, lengths), bounds-checked once here instead of at each of the
    /// loads a read makes of them (a get's hot path).
    pub fn fields(&self, off: usize) -> Fields<'_> {
        // As in `check`: offsets come from a validated geometry.
        assert!(
            off % 8 == 0
                && off
                    .checked_add(layout::R_KEY)
                    .is_some_and(|end| end <= self.len),
            "record at offset {off} outside {} bytes or misaligned",
            self.len
        );
        Fields { region: self, off }
    }

    /// The writers' mutex.
    pub fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.check(layout::H_MUTEX, layout::MUTEX_ROOM);
        // SAFETY: H_MUTEX + MUTEX_ROOM is inside the mapping (checked above); only the
        // pointer is computed here.
        unsafe { self.ptr.as_ptr().add(layout::H_MUTEX).cast() }
    }

    /// The `n` 64-bit words at `off`, bounds-checked once for all of them.
    fn words(&self, off: usize, n: usize) -> &[AtomicU64] {
        let end = n.checked_mul(8).and_then(|b| off.checked_add(b));
        // As in `check`: offsets come from a validated geometry.
        assert!(
            off % 8 == 0 && end.is_some_and(|end| end <= self.len),
            "{n} words at offset {off} outside {} bytes or misaligned",
            self.len
        );
        // SAFETY: the n words at `off` are inside the mapping and 8-aligned (checked above),
        // the mapping lives as long as `self`, AtomicU64 has the size and alignment of u64,
        // and every process accesses these words only through 64-bit atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off).cast::<AtomicU64>(), n) }
    }

    /// Append `n` bytes at `off` (8-aligned, inside an area rounded up to 8) to `out`, one
    /// relaxed 64-bit load per word.
    #[inline]
    pub fn load_bytes(&self, off: usize, n: usize, out: &mut Vec<u8>) {
        let words = self.words(off, n.div_ceil(8));
        // Whole words into a zeroed tail, then cut to length: the loop has no capacity
        // checks, and compiles to plain 8-byte loads and stores.
        let start = out.len();
        out.resize(start + words.len() * 8, 0);
        for (dst, w) in out[start..].chunks_exact_mut(8).zip(words) {
            dst.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
        }
        out.truncate(start + n);
    }

    /// True if the bytes at `off` equal `want`, compared a word at a time. The stored last
    /// word is zero-padded ([`Region::store_bytes`]), so `want`'s is padded the same way.
    pub fn bytes_equal(&self, off: usize, want: &[u8]) -> bool {
        let words = self.words(off, want.len().div_ceil(8));
        want.chunks(8)
            .zip(words)
            .all(|(chunk, w)| w.load(Ordering::Relaxed) == u64::from_le(layout::le_word(chunk)))
    }

    /// Store `bytes` at `off` (8-aligned), zero-padding the last word.
    pub fn store_bytes(&self, off: usize, bytes: &[u8]) {
        let words = self.words(off, bytes.len().div_ceil(8));
        for (chunk, w) in bytes.chunks(8).zip(words) {
            // from_le: the word whose bytes in memory are `chunk`, on any byte order.
            w.store(u64::from_le(layout::le_word(chunk)), Ordering::Relaxed);
        }
    }

    /// Copy `n` bytes, word by word, from `from` to `to` (both 8-aligned).
    pub fn copy_words(&self, from: usize, to: usize, n: usize) {
        let count = n.div_ceil(8);
        for (src, dst) in self.words(from, count).iter().zip(self.words(to, count)) {
            dst.store(src.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// True unless we can tell that process `pid` does not have this very object mapped: its
    /// `/proc/PID/maps` shows no mapping with our mapping's device and inode (for SysV, the
    /// inode is the shmid). A header's creator pid is data from the segment; a live process
    /// with that pid and start time is the creator only if it uses the segment, which is how
    /// `destroy` avoids signalling some other process a damaged or hand-made header names.
    /// Without /proc to tell, it answers true (trusting the start time alone).
    pub fn mapped_by(&self, pid: i32) -> bool {
        let Some((dev, inode)) = self.identity() else {
            return true;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(maps) => maps.lines().any(|l| dev_inode(l) == Some((&dev, inode))),
            Err(_) => false,
        }
    }

    /// Our mapping's device and inode, from the line of `/proc/self/maps` that starts at it.
    fn identity(&self) -> Option<(String, u64)> {
        let start = format!("{:x}-", self.ptr.as_ptr() as usize);
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let line = maps.lines().find(|l| l.starts_with(&start))?;
        dev_inode(line).map(|(dev, inode)| (dev.to_owned(), inode))
    }

    /// The header's fixed fields (the region is at least [`layout::FIXED_HEADER`] long).
    pub fn raw_header(&self) -> RawHeader {
        let u32_at = |off| self.u32(off).load(Ordering::Relaxed);
        RawHeader {
            magic: self
                .u64(layout::H_MAGIC)
                .load(Ordering::Acquire)
                .to_ne_bytes(),
            version: u32_at(layout::H_VERSION),
            header_size: u32_at(layout::H_HEADER_SIZE),
            total_size: self.u64(layout::H_TOTAL).load(Ordering::Relaxed),
            slots: u32_at(layout::H_SLOTS),
            key_max: u32_at(layout::H_KEY_MAX),
            value_max: u32_at(layout::H_VALUE_MAX),
            record_size: u32_at(layout::H_RECORD_SIZE),
            mutex_size: u32_at(layout::H_MUTEX_SIZE),
            used: u32_at(layout::H_USED),
            undo_slot: u32_at(layout::H_UNDO_SLOT),
            hole: u32_at(layout::H_HOLE),
        }
    }
}

/// A record's fixed fields (see [`Region::fields`]): the record's bounds were checked when it
/// was made, and each field's offset is checked against them at compile time.
pub struct Fields<'a> {
    region: &'a Region,
    off: usize,
}

impl<'a> Fields<'a> {
    /// The 64-bit field at offset `F` of the record (a `layout::R_*` constant).
    #[inline]
    pub fn u64<const F: usize>(&self) -> &'a AtomicU64 {
        const { assert!(F % 8 == 0 && F + 8 <= layout::R_KEY) };
        // SAFETY: off..off + R_KEY is inside the mapping and off is 8-aligned (checked in
        // `Region::fields`), F + 8 <= R_KEY and F is 8-aligned (checked at compile time), the
        // mapping lives as long as the region we borrow, and every process accesses this
        // field only through 64-bit atomics.
        unsafe { AtomicU64::from_ptr(self.region.ptr.as_ptr().add(self.off + F).cast()) }
    }

    /// The 32-bit field at offset `F` of the record.
    #[inline]
    pub fn u32<const F: usize>(&self) -> &'a AtomicU32 {
        const { assert!(F % 4 == 0 && F + 4 <= layout::R_KEY) };
        // SAFETY: as for `u64`, with 4 bytes and 4-alignment.
        unsafe { AtomicU32::from_ptr(self.region.ptr.as_ptr().add(self.off + F).cast()) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match self.attach {
            Attach::Mmap => {
                // SAFETY: ptr/len are exactly what mmap returned, and no reference into the
                // mapping outlives `self` (every accessor borrows it).
                let _ = unsafe { munmap(self.ptr.cast(), self.len) };
            }
            Attach::SysV => {
                // SAFETY: ptr is what shmat returned; as above for references.
                unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
            }
        }
    }
}

/// The device and inode fields of a `/proc/PID/maps` line
/// (`7f..-7f.. rw-s 00000000 00:1a 4242 /dev/shm/ipc-demo-db`); None for an anonymous one.
fn dev_inode(line: &str) -> Option<(&str, u64)> {
    let mut fields = line.split_whitespace().skip(3);
    let dev = fields.next()?;
    let inode = fields.next()?.parse().ok().filter(|&i| i != 0)?;
    Some((dev, inode))
}

/// Create the database object of `size` bytes, zero-filled. `None` if something already
/// exists at the name (the caller decides whether it is a leftover to adopt).
pub fn create(target: &Target, size: usize) -> Result<Option<Region>> {
    if target.sysv {
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
            "posix_fallocate {name}: no space left for {size} bytes in /dev/shm (try fewer --slots or a smaller --value-max)"
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
    if target.sysv {
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
        "{}: {what} holds another database (its header records the name hash {recorded:016x}, not this name's); not using it",
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
    if target.sysv {
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
    if target.sysv {
        return sysv::remove(target);
    }
    common::cleanup::Object::Shm(target.name.clone()).unlink()?;
    trace!("shm_unlink({})", target.name);
    Ok(())
}

/// How many processes have the database attached: SysV counts them (`shm_nattch`); for
/// POSIX, the processes of ours whose `/proc/PID/maps` show the object.
pub fn attached(target: &Target) -> Option<u64> {
    if target.sysv {
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
    if target.sysv {
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

/// System V shared memory. nix 0.32 has no wrappers for it, so these call libc directly.
mod sysv {
    use super::*;

    /// The key file, created 0600 if missing (by the server only), and its `ftok` key.
    pub fn key(target: &Target, create: bool) -> Result<(libc::key_t, PathBuf)> {
        let path = target.key_path()?;
        if create {
            // O_NOFOLLOW: a symlink planted here must not make us create a file elsewhere.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .ctx("open", path.display())?;
        }
        names::existing(&path, names::Kind::File)?;
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::msg(format!("{}: NUL in path", path.display())))?;
        // SAFETY: `c` is a valid NUL-terminated path; ftok only stats it.
        let key = unsafe { libc::ftok(c.as_ptr(), FTOK_PROJ) };
        if key == -1 {
            return Err(match Errno::last() {
                Errno::ENOENT => Error::msg(format!(
                    "{}: no such database (its key file {} is missing; start one with: shm-demo server --sysv --name {})",
                    target.label(),
                    path.display(),
                    target.name
                )),
                e => Error::sys("ftok", path.display(), e),
            });
        }
        trace!(
            "ftok({}, 0x{FTOK_PROJ:x}) -> key 0x{key:08x}",
            path.display()
        );
        Ok((key, path))
    }

    fn stat(id: i32, label: &str) -> Result<libc::shmid_ds> {
        let mut ds = std::mem::MaybeUninit::<libc::shmid_ds>::zeroed();
        // SAFETY: ds points to writable memory of the right type for IPC_STAT to fill.
        let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) };
        Errno::result(rc).ctx("shmctl(IPC_STAT)", label)?;
        // SAFETY: IPC_STAT succeeded, so the kernel filled the structure (zeroed before).
        Ok(unsafe { ds.assume_init() })
    }

    fn attach(id: i32, target: &Target) -> Result<Region> {
        let label = target.label();
        let ds = stat(id, &label)?;
        vet(
            &label,
            true,
            ds.shm_perm.uid,
            u32::from(ds.shm_perm.mode) & 0o777,
            ds.shm_segsz as u64,
        )?;
        // SAFETY: attaching a segment at an address the kernel chooses; nothing in this
        // process refers to that range yet.
        let ptr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if ptr as isize == -1 {
            return Err(Error::sys("shmat", &label, Errno::last()));
        }
        trace!("shmat(id {id}) -> {} bytes (shm_segsz)", ds.shm_segsz);
        Ok(Region {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| Error::msg("shmat returned NULL"))?,
            len: ds.shm_segsz,
            attach: Attach::SysV,
            label,
        })
    }

    pub fn create(target: &Target, size: usize) -> Result<Option<Region>> {
        let (key, _) = key(target, true)?;
        // SAFETY: plain syscall with integer arguments.
        let id = unsafe { libc::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id == -1 {
            return match Errno::last() {
                Errno::EEXIST => {
                    trace!("shmget(0x{key:08x}, {size}, IPC_CREAT|IPC_EXCL|0600) -> EEXIST");
                    Ok(None)
                }
                e => Err(Error::sys("shmget", target.label(), e)),
            };
        }
        trace!("shmget(0x{key:08x}, {size}, IPC_CREAT|IPC_EXCL|0600) -> id {id}");
        match attach(id, target) {
            Ok(r) => {
                record_name(&r, target);
                Ok(Some(r))
            }
            Err(e) => {
                rmid(id);
                Err(e)
            }
        }
    }

    /// Attach the segment `id` found at `key`, and check that it is this name's database:
    /// `ftok` keeps only the low 16 bits of the key file's inode (and 8 of its device), so
    /// two key files can give one key, and the segment at it may be another name's.
    fn ours(id: i32, key: libc::key_t, target: &Target) -> Result<Region> {
        let region = attach(id, target)?;
        let what = format!(
            "the segment at key 0x{key:08x} (ftok of its key file, which another name's key file shares)"
        );
        check_name(&region, target, &what)?;
        Ok(region)
    }

    /// The segment's id, or None if there is no key file or no segment with its key.
    fn find(target: &Target) -> Result<Option<(i32, libc::key_t)>> {
        if !target.key_path()?.exists() {
            return Ok(None);
        }
        let (key, _) = key(target, false)?;
        // SAFETY: plain syscall with integer arguments.
        let id = unsafe { libc::shmget(key, 0, 0) };
        if id == -1 {
            return match Errno::last() {
                Errno::ENOENT => Ok(None),
                e => Err(Error::sys("shmget", target.label(), e)),
            };
        }
        Ok(Some((id, key)))
    }

    pub fn exists(target: &Target) -> Result<bool> {
        Ok(find(target)?.is_some())
    }

    pub fn open(target: &Target) -> Result<Region> {
        match find(target)? {
            Some((id, key)) => ours(id, key, target),
            None => Err(Error::msg(format!(
                "{}: no such database (start one with: shm-demo server --sysv --name {})",
                target.label(),
                target.name
            ))),
        }
    }

    fn rmid(id: i32) {
        // SAFETY: IPC_RMID takes no buffer.
        let rc = unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        if rc == 0 {
            trace!("shmctl(id {id}, IPC_RMID)");
        }
    }

    pub fn remove(target: &Target) -> Result<()> {
        if let Some((id, key)) = find(target)? {
            // Never another name's segment, even if our key file gives its key.
            drop(ours(id, key, target)?);
            rmid(id);
        }
        let path = target.key_path()?;
        common::cleanup::Object::Path(path.clone()).unlink()?;
        trace!("unlink({})", path.display());
        Ok(())
    }

    pub fn nattch(target: &Target) -> Option<u64> {
        let (id, _) = find(target).ok()??;
        stat(id, &target.label()).ok().map(|ds| ds.shm_nattch)
    }
}
