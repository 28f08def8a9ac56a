//! The command line.

use std::path::PathBuf;

use clap::Parser;
use common::generate::{ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

use crate::mech::Family;

const EXAMPLES: &str = "\
Examples:
  ipc-bench                         # everything, about 3.5 minutes; table on stdout
  ipc-bench --quick                 # about 20 seconds: p50 ratios to C, a first look
  ipc-bench --quick --only pipe,futex
  ipc-bench --json > run.json       # the JSON document on stdout instead of the table

Every figure is measured between two forked processes, pinned to one CPU and to two CPUs,
next to a C program (built with the crate) making the same calls. CSV, JSON and an SVG
chart go to target/ipc-bench/ (or $CARGO_TARGET_DIR/ipc-bench, or --out).";

/// What the man page says beyond the parser (`ipc-bench --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[(
        "0 (a refused row)",
        "A mechanism the kernel refuses (a 64 KiB message above a queue's size limit) is \
         reported in its row, and the run goes on: still 0.",
    )],
    environment: &[
        ENV_RUNTIME_DIR,
        (
            "CARGO_TARGET_DIR",
            "Without --out, results go to CARGO_TARGET_DIR/ipc-bench; unset, to the target \
             directory the binary was built in (target/ipc-bench).",
        ),
    ],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "target/ipc-bench/results.csv, results.json, latency.svg",
            "What a finished run writes (the directory --out names, else as in ENVIRONMENT). An \
             interrupted run writes nothing.",
        ),
        (
            "RUNTIME_DIR/bench-fifo-*.fifo, /dev/shm/sem.ipc-demo-bench-*, \
             /dev/shm/ipc-demo-bench-*, /dev/mqueue/ipc-demo-bench-*",
            "One measurement's FIFOs, POSIX semaphores, shared memory and queues: created \
             0600 with O_EXCL, unlinked as soon as both processes hold them.",
        ),
        (
            "SysV IPC_PRIVATE queues and semaphore sets",
            "Removed with IPC_RMID when their measurement ends. Only a kill -9 of ipc-bench in \
             the middle of one can leave one behind (key 0: ipcs shows it, ipcrm removes it).",
        ),
    ],
    see_also: &[
        "pipe(7)",
        "unix(7)",
        "tcp(7)",
        "mq_overview(7)",
        "sysvipc(7)",
        "signal(7)",
        "sem_overview(7)",
        "futex(2)",
        "eventfd(2)",
        "shm_overview(7)",
        "sched_setaffinity(2)",
        "vmsplice(2)",
        "splice(2)",
    ],
};

/// Round-trip latency and throughput of every Linux IPC mechanism, Rust next to C.
#[derive(Parser, Debug)]
#[command(name = "ipc-bench", version, after_help = EXAMPLES)]
pub struct Cli {
    /// A run of about 20 seconds: the full run's rounds, fewer of them (16 of each round trip
    /// instead of 192, 2 of each throughput row instead of 24). Its p50 ratios to C agree with
    /// the full run's; for p99, p99.9 and throughput, run the full benchmark.
    #[arg(long)]
    pub quick: bool,

    /// Measure only these mechanisms (comma-separated); the floor is always measured.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub only: Vec<Family>,

    /// Print the JSON document on stdout instead of the Markdown table.
    #[arg(long)]
    pub json: bool,

    /// Narrate the set-up calls (mkfifo, msgget, IPC_RMID…) on stderr; never the timed loops.
    #[arg(short = 'v', long = "trace")]
    pub trace: bool,

    /// Where to write results.csv, results.json and latency.svg
    /// [default: $CARGO_TARGET_DIR/ipc-bench, else target/ipc-bench beside the binary's
    /// profile directory]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ipc-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let cli = parse(&[]).unwrap();
        assert!(!cli.quick && !cli.json && !cli.trace && cli.only.is_empty() && cli.out.is_none());
    }

    #[test]
    fn only_takes_a_comma_separated_list() {
        let cli = parse(&["--quick", "--only", "pipe,futex", "--only=sysv-mq"]).unwrap();
        assert!(cli.quick);
        assert_eq!(cli.only, [Family::Pipe, Family::Futex, Family::SysvMq]);
    }

    #[test]
    fn unknown_mechanism_is_a_usage_error_naming_the_choices() {
        let err = parse(&["--only", "pipe,carrier-pigeon"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("carrier-pigeon"), "{text}");
        assert!(text.contains("unix-stream"), "{text}");
    }

    #[test]
    fn unknown_flag_exits_2() {
        let err = parse(&["--fast"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        assert_eq!(err.exit_code(), 2);
    }
}
