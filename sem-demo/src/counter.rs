//! The counter: a "database" that is one number in a file, updated by many processes.
//!
//! Each update is a read-modify-write: `pread` the number, add one, `pwrite` it back. Two
//! processes that read the same value both write value+1, and one update is lost. A binary
//! semaphore (one permit) around the three calls makes them one step for everyone else, and
//! the result is exactly N×M; `--no-lock` leaves it out and counts what the race loses.
//!
//! `counter` creates the file (0600, `O_EXCL`, in the runtime dir) and the semaphore
//! (`O_EXCL`/`IPC_EXCL`, one permit), starts N `update` processes ([`crate::update`]), waits
//! for them, reads the result, and removes both, on Ctrl-C too.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use common::cleanup::{Shutdown, Unlink};
use common::{Context, Error, Result, names, say};

use crate::cli::CounterArgs;
use crate::creation::Creation;
use crate::procs;
use crate::sem::{Flavor, Remove, Sem};
use crate::update;

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
                f.name()
            )
        }
        Some(f) => format!(
            "FAILED: expected {expected}, got {actual} ({} semaphore)",
            f.name()
        ),
        None => format!(
            "without a lock: expected {expected}, got {actual}: {} updates lost to the race",
            out.lost()
        ),
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
    let actual = update::read_number(&file, &path)?;
    Ok(Outcome {
        expected: u64::from(procs) * u64::from(iters),
        actual,
    })
}
