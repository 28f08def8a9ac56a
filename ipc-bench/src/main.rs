//! ipc-bench: what each Linux IPC mechanism costs on this machine, measured the same way for
//! all of them, next to a C program making the same calls and next to the physical floor.
//!
//! Run it: `ipc-bench` (about three and a half minutes), `ipc-bench --quick` (about 20 seconds,
//! fewer rounds: its p50 ratios to C agree with the full run's, its tails and throughput do
//! not), `ipc-bench --only pipe,futex`, `ipc-bench --json`. A Markdown table goes to stdout;
//! CSV, JSON and an SVG chart go to `target/ipc-bench/` (or `$CARGO_TARGET_DIR/ipc-bench`).
//!
//! What happens, for each mechanism, placement (one CPU, two CPUs) and test:
//! - **Rust**: this process sets the mechanism up (pipes, FIFOs, sockets, queues, semaphores,
//!   a shared mapping), forks pong and ping, and each pins itself with `sched_setaffinity`.
//!   Round trips: ping posts and waits, pong waits and posts, timed with the monotonic clock
//!   after a warm-up, into an HDR histogram (p50, p99, p99.9). Throughput: ping sends 64 B,
//!   4 KiB or 64 KiB messages for a time budget, ends the stream, and pong acknowledges the
//!   byte count. Results come back over a pipe; both children are then killed and reaped.
//! - **C**: `c/twin.c`, compiled by `build.rs`, does the same calls in the same order, and
//!   every Rust figure is reported as a ratio to it.
//! - **Floor**: a bare system call (`getppid`) and `memcpy` bandwidth, in Rust and in C.
//!
//! Cleanup: FIFOs, POSIX queues, semaphores and shared memory are unlinked as soon as both
//! processes hold them (they inherit them across fork), and the names are guarded until the
//! measurement ends, Ctrl-C included (`common::cleanup`). SysV objects are `IPC_PRIVATE` and
//! removed with `IPC_RMID` when the measurement ends.
//!
//! See also: pipe(7), unix(7), tcp(7), mq_overview(7), sysvipc(7), signal(7), sem_overview(7),
//! futex(2), eventfd(2), shm_overview(7), sched_setaffinity(2), vmsplice(2), splice(2).

mod bench;
mod chart;
mod cli;
mod floor;
mod harness;
mod mech;
mod report;
mod results;
mod stats;
mod twin;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(kind) = cli.generate.kind {
        return common::error::finish(
            "ipc-bench",
            common::generate::run(cli::Cli::command(), kind),
        );
    }
    common::narrate::init("bench", cli.trace);
    common::error::finish("ipc-bench", bench::run(&cli))
}
