//! System V shared memory: the same database in a segment that `shmget` makes and `shmat`
//! maps (see [`super`]'s docs). nix 0.32 has no wrappers for it, so these call libc directly.

use std::ffi::CString;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::ptr::NonNull;

use common::{Context, Error, Result, names, trace};
use nix::errno::Errno;

use super::region::Attach;
use super::{FTOK_PROJ, Region, Target, check_name, record_name, vet};

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
                "{}: no such database (its key file {} is missing; start one with: shm-demo \
                 server --sysv --name {})",
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
        "the segment at key 0x{key:08x} (ftok of its key file, which another name's key \
         file shares)"
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
