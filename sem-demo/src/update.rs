//! `sem-demo update`: one process of the counter, M read-modify-write updates of a number in
//! a shared file, each under a binary semaphore (one permit): the critical section.
//!
//! Each update, in order: `sem_wait` (or `semop(-1, SEM_UNDO)`) → `pread` the number →
//! `pwrite` it plus one → `sem_post` (or `semop(+1, SEM_UNDO)`). With `--no-lock` the wait
//! and the post are left out, and two updaters that read the same value both write value+1:
//! one update is lost (`counter --no-lock` counts them).
//!
//! # Pitfalls
//!
//! - An error between the wait and the post must not keep the permit: the permit is a guard
//!   ([`crate::sem::Permit`]) that gives it back when dropped, on `?` too. (SysV's `SEM_UNDO`
//!   would give it back at exit; a POSIX semaphore never does.)
//! - SysV's `SEM_UNDO`: an updater killed mid-update does not leave the others locked out.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::process::ExitCode;

use common::{Context, Error, Result, trace};

use crate::cli::UpdateArgs;
use crate::creation::Creation;
use crate::sem::{Flavor, Sem};

/// `sem-demo update`: M read-modify-write updates of FILE, each under the semaphore.
pub fn run(args: &UpdateArgs) -> Result<ExitCode> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&args.file)
        .ctx("open", args.file.display())?;
    // SEM_UNDO (SysV): an updater killed mid-update does not leave the others locked out.
    let sem = match &args.name {
        Some(name) if !args.no_lock => Some(
            Sem::open(
                args.flavor.or(Flavor::Posix),
                name,
                Creation::IfAbsent { value: 1, limit: 1 },
            )?
            .0,
        ),
        _ => None,
    };
    trace!(
        "{} x ({}) on {}",
        args.iters,
        if sem.is_some() {
            "wait, pread, +1, pwrite, post"
        } else {
            "pread, +1, pwrite: no lock"
        },
        args.file.display()
    );
    for i in 0..args.iters {
        if i == 1 && common::narrate::enabled() {
            trace!(
                "(the other {} updates are the same calls; not narrated)",
                args.iters - 1
            );
            quiet_narration();
        }
        // Given back when dropped: an error below (a file that does not hold a number) must
        // not keep the permit from every other updater.
        let permit = sem.as_ref().map(|s| s.take(true)).transpose()?;
        let n = read_number(&file, &args.file)?;
        let next = n.checked_add(1).ok_or_else(|| {
            Error::msg(format!("{}: {n} cannot grow any more", args.file.display()))
        })?;
        let text = format!("{next}\n");
        file.write_at(text.as_bytes(), 0)
            .ctx("pwrite", args.file.display())?;
        trace!("pread({}) -> {n}, pwrite <- {next}", args.file.display());
        if let Some(permit) = permit {
            permit.release()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Turn narration off in this process: thousands of identical lines would bury the rest.
fn quiet_narration() {
    // SAFETY: `update` runs no other thread, so nothing reads the environment concurrently.
    unsafe { std::env::remove_var(common::narrate::ENV) };
    common::narrate::init("update", false);
}

/// The number at the start of the file (its first line).
pub fn read_number(file: &File, path: &Path) -> Result<u64> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).ctx("pread", path.display())?;
    let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
    let first = text.split('\n').next().unwrap_or("").trim();
    first.parse().map_err(|_| {
        Error::msg(format!(
            "{}: does not start with a number: {:?}",
            path.display(),
            common::out::escape(first.as_bytes())
        ))
    })
}
