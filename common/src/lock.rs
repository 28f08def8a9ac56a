//! Record locks that name their holder: a write lock on a whole file (`fcntl(F_SETLK)`), held
//! by a process for as long as it lives (the kernel drops it however the process dies, -9
//! included), and `fcntl(F_GETLK)`, which tells any other process who holds it, from the
//! kernel's lock table rather than from what a file says.
//!
//! # Pitfalls
//!
//! - A record lock belongs to the *process*, and closing *any* descriptor of the file in that
//!   process drops it (fcntl(2)): the holder opens the locked file once, and never again.
//! - `F_GETLK` never reports the caller's own locks, and a second `F_SETLK` from the holder
//!   succeeds: only another process is told "held".
//! - The pid is the holder's in the caller's pid namespace: 0 if it cannot be seen from there.
//!   Open-file-description locks (`F_OFD_SETLK`) are not dropped by other closes, but `F_GETLK`
//!   names no pid for them (-1). Both come back as [`Holder::Unnamed`].

use std::os::fd::BorrowedFd;

use nix::fcntl::{FcntlArg, fcntl};
use nix::unistd::Pid;

/// Who holds a write lock on a file, as `F_GETLK` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Nobody (or only the caller itself).
    Nobody,
    /// This process.
    Process(Pid),
    /// A process that cannot be named from here (see the module docs).
    Unnamed,
}

/// `struct flock` for the whole file: from offset 0 to its end, however far it grows.
fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is a plain C struct of integers, for which all-zero bytes are a valid value
    // (SEEK_SET from offset 0, length 0: to the end); the type is set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::c_short::try_from(kind).unwrap_or(libc::c_short::MAX);
    lock.l_whence = libc::c_short::try_from(libc::SEEK_SET).unwrap_or(0);
    lock
}

/// Take a write lock on the whole of `fd`'s file: `F_SETLKW` (wait for it) if `wait`, else
/// `F_SETLK`, which fails at once with EAGAIN or EACCES while another process holds it.
pub fn lock_whole(fd: BorrowedFd<'_>, wait: bool) -> nix::Result<()> {
    let lock = whole_file(libc::F_WRLCK);
    let arg = if wait {
        FcntlArg::F_SETLKW(&lock)
    } else {
        FcntlArg::F_SETLK(&lock)
    };
    fcntl(fd, arg).map(drop)
}

/// Who holds a write lock on the whole of `fd`'s file, or a part of it (`F_GETLK`).
pub fn holder(fd: BorrowedFd<'_>) -> nix::Result<Holder> {
    let mut lock = whole_file(libc::F_WRLCK);
    fcntl(fd, FcntlArg::F_GETLK(&mut lock))?;
    Ok(if libc::c_int::from(lock.l_type) == libc::F_UNLCK {
        Holder::Nobody
    } else if lock.l_pid > 0 {
        Holder::Process(Pid::from_raw(lock.l_pid))
    } else {
        Holder::Unnamed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};

    /// A lock held by another process (Python's `fcntl.lockf` is `F_SETLK`) is refused to us and
    /// names that process; our own lock is not reported to ourselves; gone with its holder.
    #[test]
    fn the_holder_is_named_by_the_kernel() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("locked");
        std::fs::write(&path, "").unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let script = "import fcntl, sys\nf = open(sys.argv[1], 'r+')\n\
                      fcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\nsys.stdin.read()";
        let mut other = Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(other.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "locked\n");
        let pid = Pid::from_raw(i32::try_from(other.id()).unwrap());
        assert_eq!(holder(file.as_fd()), Ok(Holder::Process(pid)));
        let refused = lock_whole(file.as_fd(), false).unwrap_err();
        assert!(matches!(
            refused,
            nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES
        ));
        drop(other.stdin.take());
        other.wait().unwrap();
        assert_eq!(holder(file.as_fd()), Ok(Holder::Nobody));
        lock_whole(file.as_fd(), false).unwrap();
        assert_eq!(
            holder(file.as_fd()),
            Ok(Holder::Nobody),
            "our own lock is not reported"
        );
    }
}
