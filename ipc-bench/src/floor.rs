//! The floor every mechanism stands on, measured in the same run: a bare system call
//! (`getppid`, which glibc does not cache) and `memcpy` bandwidth. No IPC can hand over
//! faster than one system call each way, nor move data faster than a copy.

use std::fmt::Write;
use std::hint::black_box;
use std::os::fd::AsFd;
use std::time::Instant;

use common::cleanup::Shutdown;
use common::{Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, fork, pipe2};

use crate::harness::{PageBuf, Reaped, Spec, Test, exit_with, nanos, pin};
use crate::mech::MAX_MSG;
use crate::results::{Outcome, collect};

/// Calls per timed batch: one clock read per call would weigh as much as the call itself.
const BATCH: u64 = 100;

/// The floor, in one forked process pinned to `spec.cpus.0`, its result lines read through a
/// pipe as a Rust ping's are (see [`crate::harness`]).
pub fn measure(spec: &Spec, shutdown: &Shutdown) -> Result<Outcome> {
    let (results_r, results_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "results")?;
    // SAFETY: this process has one thread (see `harness::Measure::run`), so the child is a
    // complete copy; it leaves through `exit_with`, never returning.
    let pid = match unsafe { fork() }.ctx("fork", "floor")? {
        ForkResult::Child => {
            drop(results_r);
            let outcome = pin(spec.cpus.0).map(|()| run(spec));
            exit_with(outcome, &results_w)
        }
        ForkResult::Parent { child } => Reaped(child),
    };
    drop(results_w);
    let report = collect(results_r.as_fd(), spec.deadline(), shutdown)?;
    drop(pid);
    Ok(report.outcome())
}

/// Run the floor test of `spec`, in this process; returns the result lines.
fn run(spec: &Spec) -> String {
    let mut out = String::new();
    match spec.test {
        Test::Syscall => {
            let stop = Instant::now() + spec.budget;
            for _ in 0..spec.max_samples {
                let t0 = Instant::now();
                for _ in 0..BATCH {
                    black_box(nix::unistd::getppid());
                }
                let t1 = Instant::now();
                let _ = writeln!(out, "lat {}", nanos(t1 - t0) / BATCH);
                if t1 >= stop {
                    break;
                }
            }
        }
        Test::Memcpy(size) => {
            let size = size.clamp(1, MAX_MSG);
            // One buffer, the destination 64 KiB after the source, as in the C twin: the
            // distance between the two modulo 4 KiB changes memcpy's speed (4K aliasing: a
            // load that looks like it depends on an earlier store to the same page offset
            // waits for it), so both sides must use the same one.
            let mut buf = PageBuf::new(2 * MAX_MSG, 0x5a);
            let buf = buf.as_mut_slice();
            let (src, rest) = buf.split_at_mut(MAX_MSG);
            let (src, dst) = (&src[..size], &mut rest[..size]);
            // About 1 MiB between two looks at the clock.
            let batch = (1 << 20) / size;
            let mut bytes: u64 = 0;
            let t0 = Instant::now();
            let stop = t0 + spec.budget;
            let elapsed = loop {
                for _ in 0..batch {
                    dst.copy_from_slice(src);
                    // The copy must happen every time: dst is "used" after each one.
                    black_box(&mut *dst);
                }
                bytes += (batch * size) as u64;
                let now = Instant::now();
                if now >= stop {
                    break now - t0;
                }
            };
            let _ = writeln!(out, "tput {bytes} {}", nanos(elapsed));
        }
        other => {
            let _ = writeln!(out, "err {} is not a floor test", other.name());
        }
    }
    out.push_str("done\n");
    out
}
