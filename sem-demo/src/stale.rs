//! Leftovers of a `counter`, `bridge` or `demo` killed with -9.
//!
//! Their objects are named after a tag from `common::names::unique`, which starts with the
//! role and the creator's pid (`sem-counter-4242-0-1a2b3`, `sem-demo-4242-...`): the
//! database file in the runtime dir, the POSIX semaphore `/dev/shm/sem.ipc-demo-TAG...` and the
//! bridge's board `/dev/shm/ipc-demo-TAG...`. Nothing runs on SIGKILL, so the next start of any
//! of these roles removes what belongs to a pid that no longer exists, and says so. (A SysV
//! set cannot be traced back to its name from its key; `make clean-ipc` sweeps those.) A pid
//! that is alive again, reused by another process, keeps its leftovers: wrongly kept is
//! harmless, wrongly removed would not be.

use std::path::Path;

use common::{Result, names, trace};
use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::{Pid, Uid};

/// The roles whose tags are swept.
const TAGS: [&str; 3] = ["sem-counter-", "sem-bridge-", "sem-demo-"];

/// Remove the leftovers of dead creators from the runtime dir and `/dev/shm`.
pub fn sweep() -> Result<()> {
    let runtime = names::runtime_dir()?;
    sweep_dir(&runtime, "", ".db");
    sweep_dir(
        Path::new("/dev/shm"),
        &format!("sem.{}-", names::PREFIX),
        "",
    );
    sweep_dir(Path::new("/dev/shm"), &format!("{}-", names::PREFIX), "");
    Ok(())
}

fn sweep_dir(dir: &Path, prefix: &str, suffix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = Uid::effective().as_raw();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(tag) = file.strip_prefix(prefix).filter(|_| file.ends_with(suffix)) else {
            continue;
        };
        let Some(pid) = creator(tag) else { continue };
        // Only our own files, and only regular ones (symlink_metadata: never follow).
        let ours = entry.path().symlink_metadata().is_ok_and(|m| {
            std::os::unix::fs::MetadataExt::uid(&m) == me && m.file_type().is_file()
        });
        if ours && kill(pid, None) == Err(Errno::ESRCH) {
            let path = entry.path();
            if std::fs::remove_file(&path).is_ok() {
                trace!(
                    "unlink({}): left by pid {pid}, which is gone",
                    path.display()
                );
                eprintln!(
                    "sem-demo: removed {}, left by pid {pid} (gone)",
                    path.display()
                );
            }
        }
    }
}

/// The creator's pid in a tag like `sem-counter-4242-0-1a2b3...`.
fn creator(tag: &str) -> Option<Pid> {
    let rest = TAGS.iter().find_map(|t| tag.strip_prefix(t))?;
    let pid: i32 = rest.split('-').next()?.parse().ok()?;
    (pid > 0).then(|| Pid::from_raw(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creator_is_read_from_the_tag() {
        let pid = |n| Some(Pid::from_raw(n));
        assert_eq!(creator("sem-counter-4242-0-1a2b3.db"), pid(4242));
        assert_eq!(creator("sem-demo-17-3-abcde-bridge-posix"), pid(17));
        assert_eq!(creator("sem-bridge-9-0-abcde"), pid(9));
        assert_eq!(creator("t-prim-17-0-abcde"), None);
        assert_eq!(creator("sem-counter-x-0"), None);
        assert_eq!(creator("sem-bridge--1-0"), None);
        assert_eq!(creator("counter-17-0"), None);
    }
}
