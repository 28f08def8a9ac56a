//! Whether opening a semaphore may create it: one answer for both kinds, POSIX named
//! semaphores (`O_CREAT`, `O_EXCL`) and System V sets (`IPC_CREAT`, `IPC_EXCL`).

/// Whether [`crate::sem::Sem::open`] (and `posix`'s and `sysv`'s own `open`) may create the
/// semaphore, must, or must not.
#[derive(Clone, Copy, Debug)]
pub enum Creation {
    /// Never: the semaphore must exist (`value`, a car joining its bridge).
    Never,
    /// Always: create it with `value` permits, and the name must be new (`O_EXCL`,
    /// `IPC_EXCL`: the demo roles, which remove what they create).
    Exclusive {
        /// Its permits.
        value: u16,
    },
    /// If absent: use the existing one (checked to be ours), else create it with `value`
    /// permits. A SysV set records K = `limit` (0: none), which a later opener compares with
    /// the K it wants; a POSIX semaphore is a bare number and records nothing of the kind.
    IfAbsent {
        /// Its permits.
        value: u16,
        /// K, recorded by a SysV set.
        limit: u16,
    },
}
