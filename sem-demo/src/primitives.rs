//! The primitives, one small command each, for scripts and for inspection (TLPI's
//! `psem_post.c`, `psem_wait.c`, `psem_getvalue.c`, `psem_unlink.c`, with SysV beside them).
//!
//! `post`, `wait` and `trywait` create the semaphore with value 0 if it does not exist (with
//! `O_EXCL` / `IPC_EXCL`, then opening the existing one checked to be ours), so a script can
//! start with either side. `value` and `unlink` never create.
//!
//! Exit codes: 0 done; 1 `trywait` would block, `wait` timed out, or an error; 2 bad usage.
//! None of these use SEM_UNDO: a permit taken by `wait` is meant to stay taken after `wait`
//! exits (that is `run`'s job otherwise).

use std::process::ExitCode;

use common::{Result, say};

use crate::cli::{PrimArgs, WaitArgs};
use crate::creation::Creation;
use crate::sem::{Flavor, Sem, timed_out};

/// POSIX unless `--sysv`.
const DEFAULT: Flavor = Flavor::Posix;
/// What `post`/`wait`/`trywait` create when the name is new: no permits, no K.
const CREATE: Creation = Creation::IfAbsent { value: 0, limit: 0 };

/// `sem-demo post NAME`.
pub fn post(args: &PrimArgs) -> Result<ExitCode> {
    let (sem, _) = Sem::open(args.flavor.or(DEFAULT), &args.name, CREATE)?;
    sem.post(false)?;
    Ok(ExitCode::SUCCESS)
}

/// `sem-demo wait NAME [--timeout S]`.
pub fn wait(args: &WaitArgs) -> Result<ExitCode> {
    let (sem, _) = Sem::open(args.prim.flavor.or(DEFAULT), &args.prim.name, CREATE)?;
    if sem.wait(false, args.timeout.as_ref().map(|t| t.duration))? {
        return Ok(ExitCode::SUCCESS);
    }
    let t = args.timeout.as_ref().map_or("?", |t| t.text.as_str());
    Err(timed_out(t, &args.prim.name))
}

/// `sem-demo trywait NAME`: exit 1, silently, if it would block.
pub fn trywait(args: &PrimArgs) -> Result<ExitCode> {
    let (sem, _) = Sem::open(args.flavor.or(DEFAULT), &args.name, CREATE)?;
    Ok(if sem.try_wait(false)? {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `sem-demo value NAME`: the number of free permits on stdout.
pub fn value(args: &PrimArgs) -> Result<ExitCode> {
    let (sem, _) = Sem::open(args.flavor.or(DEFAULT), &args.name, Creation::Never)?;
    say!("{}", sem.value()?)?;
    Ok(ExitCode::SUCCESS)
}

/// `sem-demo unlink NAME`.
pub fn unlink(args: &PrimArgs) -> Result<ExitCode> {
    // Checked first, so that a semaphore that is not ours (or a SysV set of another name) is
    // refused rather than removed; a SysV set is removed even if it was never initialised.
    Sem::unlink(args.flavor.or(DEFAULT), &args.name)?;
    Ok(ExitCode::SUCCESS)
}
