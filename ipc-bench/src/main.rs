//! ipc-bench: what each Linux IPC mechanism costs on this machine, measured the same way for
//! all of them, next to a C program making the same calls and next to the physical floor.
//!
//! # What it shows
//!
//! Round-trip latency (p50, p99, p99.9) and one-way throughput of every mechanism of the other
//! demos, between two real processes pinned to one CPU and to two CPUs. Each Rust figure is
//! set beside a C twin's (`c/twin.c`, built by `build.rs`) that makes the same system calls in
//! the same order, so the ratio is Rust's overhead and nothing else; a bare system call and
//! `memcpy` bandwidth, measured in the same run, are the floor no mechanism can beat.
//!
//! # Roles
//!
//! One: `ipc-bench [--quick] [--only LIST] [--json] [--out DIR] [-v]`, in any terminal.
//! `ipc-bench` (a few minutes), `ipc-bench --quick` (about 20 seconds, fewer rounds: its p50
//! ratios to C agree with the full run's, its tails and throughput do not),
//! `ipc-bench --only pipe,futex`, `ipc-bench --json`. A Markdown table goes to stdout; CSV,
//! JSON and an SVG chart go to `target/ipc-bench/` (or `$CARGO_TARGET_DIR/ipc-bench`, or
//! `--out`).
//!
//! # System calls, in order
//!
//! For each mechanism, placement (one CPU, two CPUs), test and round, Rust side and C side
//! back to back:
//! - **Rust** (`harness.rs`): the coordinator (this process) makes the mechanism's objects
//!   (`mech/`: pipes, FIFOs, sockets, queues, semaphores, a shared mapping) and two
//!   `pipe2(O_CLOEXEC)` → `fork` pong, `fork` ping → each `sched_setaffinity` → round trips
//!   (ping posts and waits, pong waits and posts, timed with the monotonic clock after a
//!   warm-up, into an HDR histogram) or throughput (ping sends 64 B, 4 KiB or 64 KiB messages
//!   for a time budget, ends the stream, pong acknowledges the byte count) → ping writes its
//!   result lines to the results pipe → the coordinator reads them in `poll` with the
//!   shutdown's self-pipe → `kill` + `waitpid` both → the objects removed.
//! - **C** (`twin.rs`, `c/twin.c`): the twin started in a process group of its own → it does
//!   the same calls itself and prints the same lines on its stdout → read in `poll` →
//!   `waitpid` (after `killpg` if it failed, hung or we were stopped).
//! - **Floor** (`floor.rs`): `fork` → `sched_setaffinity` → `getppid` in a loop, or
//!   `memcpy`, in Rust; the same in C.
//!
//! # Pitfalls
//!
//! - A comparison with C must not measure anything but the calls: page-aligned buffers on
//!   both sides (`harness::PageBuf`), the same memcpy layout (`floor.rs`), rounds that
//!   interleave Rust and C so that other tenants' load falls on both (`bench.rs`).
//! - A pipe's reader sees EOF only when every write end is closed: each child drops the ends
//!   it must not hold (`harness::Measure::run`).
//! - A measurement can hang or be refused by the kernel: every read of results has a deadline,
//!   and a refusal is reported in its row while the rest run (`results.rs`).
//! - Named objects and SysV ids must go even if a child dies or we are stopped: the
//!   coordinator, which outlives the measurement, makes and removes them; the twin prints the
//!   ids it makes, so they are removed even if it is killed (`results::Report`).
//! - A child of a forked coordinator must not run the coordinator's destructors (its guards
//!   would remove the objects under the peer): children leave through `harness::exit_with`.
//!
//! # Cleanup
//!
//! FIFOs, POSIX queues, semaphores and shared memory are unlinked as soon as both processes
//! hold them (they inherit them across fork), and the names are guarded until the measurement
//! ends, SIGINT, SIGTERM and SIGHUP included (`common::cleanup`). SysV objects are
//! `IPC_PRIVATE` and removed with `IPC_RMID` when the measurement ends. A stop signal ends the
//! run after the measurement in progress is taken down: nothing is written.
//!
//! # Exit status
//!
//! 0 done (the table and the files written), 1 the run failed (a row the kernel refuses is
//! not a failure: it says so in its row), 2 usage, 128+N stopped by signal N before finishing,
//! after removing what the measurement in progress made (see `common::error`).
//!
//! # See also
//!
//! pipe(7), unix(7), tcp(7), mq_overview(7), sysvipc(7), signal(7), sem_overview(7),
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
use cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(Cli::command(), kind, &cli::MANUAL);
        return common::error::finish("ipc-bench", page);
    }
    common::narrate::init("bench", cli.trace);
    let outcome = bench::run(&cli);
    common::error::finish("ipc-bench", outcome)
}
