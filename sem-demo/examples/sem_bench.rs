//! The Rust side of `bench/sem.sh`: the same loops as `bench/pair.c`, through sem-demo's own
//! semaphore code (`src/posix.rs`, `src/sysv.rs`, included as they are), so the figures are
//! what the demo's roles pay per call.
//!
//! ```text
//! cargo run --release -p sem-demo --example sem_bench -- pair 1000000
//! ```
//!
//! Modes: `pair N` (sem_wait + sem_post, uncontended), `sysv-pair N` (semop -1, +1),
//! `handoff-posix N` and `handoff-sysv N` (N round trips between two processes). Prints
//! `<mode> <ns per pair or round trip>` (CPU time per pair, wall time per round trip), as the
//! C program does. It lives here, not in the demo
//! binary: a measuring loop is not a role.

#[allow(dead_code)]
#[path = "../src/creation.rs"]
mod creation;
#[allow(dead_code)]
#[path = "../src/posix.rs"]
mod posix;
#[allow(dead_code)]
#[path = "../src/sysv.rs"]
mod sysv;

use std::process::ExitCode;
use std::time::Instant;

use common::cleanup::Object;
use common::names;
use nix::sys::wait::waitpid;
use nix::time::{ClockId, clock_gettime};
use nix::unistd::{ForkResult, fork};

use creation::Creation;
use posix::NamedSem;
use sysv::SemSet;

/// One permit count, either kind, created for the run and removed at its end.
enum Sem {
    Posix(NamedSem),
    Sysv(SemSet),
}

impl Sem {
    fn new(sysv: bool, value: u16) -> common::Result<Sem> {
        let name = names::unique("bench");
        if sysv {
            let (s, _) = SemSet::open(&name, Creation::Exclusive { value })?;
            Ok(Sem::Sysv(s))
        } else {
            let posix = names::posix_name(&name);
            let (s, _) = NamedSem::open(&posix, Creation::Exclusive { value })?;
            // The mapping stays; the name goes at once, so nothing is left behind.
            Object::Semaphore(posix).unlink()?;
            Ok(Sem::Posix(s))
        }
    }

    #[inline]
    fn wait(&self) -> common::Result<bool> {
        match self {
            Sem::Posix(s) => s.wait(None),
            Sem::Sysv(s) => s.wait(false, None),
        }
    }

    #[inline]
    fn post(&self) -> common::Result<()> {
        match self {
            Sem::Posix(s) => s.post(),
            Sem::Sysv(s) => s.post(false),
        }
    }
}

impl Drop for Sem {
    fn drop(&mut self) {
        if let Sem::Sysv(s) = self {
            let _ = s.remove();
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(Ok(n))) = (args.first(), args.get(1).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: sem_bench pair|sysv-pair|handoff-posix|handoff-sysv N");
        return ExitCode::from(2);
    };
    match measure(mode, n) {
        Ok(ns) => {
            println!("{mode} {ns:.1}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sem_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// CPU time of this process, ns: the uncontended pairs never sleep, so on a shared machine
/// the time spent preempted is someone else's work (as in pair.c).
fn cpu_ns() -> common::Result<f64> {
    let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map_err(|e| common::Error::sys("clock_gettime", "CLOCK_PROCESS_CPUTIME_ID", e))?;
    Ok(t.tv_sec() as f64 * 1e9 + t.tv_nsec() as f64)
}

fn measure(mode: &str, n: u64) -> common::Result<f64> {
    let per = |start: Instant| start.elapsed().as_nanos() as f64 / n as f64;
    match mode {
        "pair" | "sysv-pair" => {
            let s = Sem::new(mode == "sysv-pair", 1)?;
            let start = cpu_ns()?;
            for _ in 0..n {
                s.wait()?;
                s.post()?;
            }
            Ok((cpu_ns()? - start) / n as f64)
        }
        "handoff-posix" | "handoff-sysv" => {
            let sysv = mode == "handoff-sysv";
            let (a, b) = (Sem::new(sysv, 0)?, Sem::new(sysv, 0)?);
            // SAFETY: this program has no other thread, so the child may run any code.
            match unsafe { fork() }.map_err(|e| common::Error::sys("fork", "", e))? {
                ForkResult::Child => {
                    for _ in 0..n {
                        if a.wait().is_err() || b.post().is_err() {
                            std::process::exit(1);
                        }
                    }
                    // The parent removes the sets; skip our destructors.
                    std::process::exit(0);
                }
                ForkResult::Parent { child } => {
                    let start = Instant::now();
                    for _ in 0..n {
                        a.post()?;
                        b.wait()?;
                    }
                    let ns = per(start);
                    let _ = waitpid(child, None);
                    Ok(ns)
                }
            }
        }
        other => Err(common::Error::Usage(format!("unknown mode {other}"))),
    }
}
