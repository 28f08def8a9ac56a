//! The counter: a "database" that is one number in a file, updated by many processes.
//!
//! Each update is a read-modify-write: `pread` the number, add one, `pwrite` it back. Two
//! processes that read the same value both write value+1, and one update is lost. A binary
//! semaphore (one permit) around the three calls makes them one step for everyone else, and
//! the result is exactly N×M; `--no-lock` leaves it out and counts what the race loses.
//!
//! `counter` creates the file (0600, `O_EXCL`, in the runtime dir) and the semaphore
//! (`O_EXCL`/`IPC_EXCL`, one permit), starts N `update` processes, waits for them, reads the
//! result, and removes both, on Ctrl-C too.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::process::ExitCode;

use common::cleanup::{Shutdown, Unlink};
use common::{Context, Error, Result, names, say, trace};

use crate::cli::{CounterArgs, UpdateArgs};
use crate::creation::Creation;
use crate::procs;
use crate::sem::{Flavor, Remove, Sem};

/// What a counter run found.
pub struct Outcome {
    /// N×M.
    pub expected: u64,
    /// The number in the file at the end.
    pub actual: u64,
}

impl Outcome {
    /// Updates lost to the race.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.actual)
    }
}

/// `sem-demo counter`.
pub fn run(args: &CounterArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    crate::stale::sweep()?;
    let flavor = args.flavor.or(Flavor::Posix);
    let lock = (!args.no_lock).then_some(flavor);
    let out = play(
        &names::unique("sem-counter"),
        args.procs,
        args.iters,
        lock,
        &shutdown,
    )?;
    // A verdict only for a run that was not interrupted.
    shutdown.err_if_requested()?;
    say!("{}", verdict(&out, lock))?;
    Ok(
        if lock.is_none() || out.lost() == 0 && out.actual == out.expected {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The summary line: `ok: ...` with the lock, the lost updates without.
pub fn verdict(out: &Outcome, lock: Option<Flavor>) -> String {
    let (expected, actual) = (out.expected, out.actual);
    match lock {
        Some(f) if actual == expected => {
            format!(
                "ok: expected {expected}, got {actual}: 0 updates lost ({} semaphore)",
                kind(f)
            )
        }
        Some(f) => format!(
            "FAILED: expected {expected}, got {actual} ({} semaphore)",
            kind(f)
        ),
        None => format!(
            "without a lock: expected {expected}, got {actual}: {} updates lost to the race",
            out.lost()
        ),
    }
}

/// "POSIX" or "SysV".
pub fn kind(f: Flavor) -> &'static str {
    match f {
        Flavor::Posix => "POSIX",
        Flavor::Sysv => "SysV",
    }
}

/// Create the file and the semaphore (both named `tag`), run N updaters of M updates each,
/// read the result.
pub fn play(
    tag: &str,
    procs: u32,
    iters: u32,
    lock: Option<Flavor>,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    let path = names::runtime_path(&format!("{tag}.db"))?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .ctx("open(O_CREAT|O_EXCL)", path.display())?;
    let _file_guard = Unlink::path(&path);
    std::io::Write::write_all(&mut file, b"0\n").ctx("write", path.display())?;
    let sem = match lock {
        Some(f) => Some(Sem::open(f, tag, Creation::Exclusive { value: 1 })?.0),
        None => None,
    };
    let _sem_guard = sem.as_ref().map(Remove);

    let iters_arg = iters.to_string();
    let path_arg = path.to_string_lossy();
    let mut children = Vec::new();
    for i in 0..procs {
        let mut args = vec!["update", "--file", &path_arg, "--iters", &iters_arg];
        match lock {
            Some(f) => args.extend(["--name", tag, f.flag()]),
            None => args.push("--no-lock"),
        }
        children.push(procs::start(&format!("update {i}"), &args)?);
        shutdown.err_if_requested()?;
    }
    let failed = procs::wait_all(&children, shutdown)?;
    if !failed.is_empty() {
        return Err(Error::msg(format!(
            "updaters failed: {}",
            failed.join(", ")
        )));
    }
    let actual = read_number(&file, &path)?;
    Ok(Outcome {
        expected: u64::from(procs) * u64::from(iters),
        actual,
    })
}

/// The number at the start of the file (its first line).
fn read_number(file: &File, path: &Path) -> Result<u64> {
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

/// `sem-demo update`: M read-modify-write updates of FILE, each under the semaphore.
pub fn update(args: &UpdateArgs) -> Result<ExitCode> {
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
