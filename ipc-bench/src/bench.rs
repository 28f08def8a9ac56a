//! The run: which rows to measure, in what order, with what budgets; then the outputs.
//!
//! Rounds interleave: every row is measured once per round, the Rust side and the C twin one
//! after the other (C first in odd rounds), and the rounds are merged: round-trip histograms
//! add up, throughput keeps each side's best round. On a shared, busy machine this spreads
//! the noise evenly over both sides, so the ratios stay fair even when the absolute figures
//! move.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use common::cleanup::{Object, Shutdown, Unlink};
use common::{Context, Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use nix::sys::signal::Signal;

use crate::cli::Cli;
use crate::harness::{self, Measure, Placement, Spec, Test};
use crate::mech::{self, Family, Mech, Names};
use crate::report::{self, Build, Key, Machine, Row, Run};
use crate::results::Outcome;
use crate::stats::Figure;
use crate::{chart, floor, twin};

/// Message sizes of the throughput tests.
pub const SIZES: [usize; 3] = [64, 4096, 64 * 1024];

/// How long each measurement runs, and how many times.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Timed round trips, per run.
    pub latency: Duration,
    /// How many times each round-trip row (and the system-call floor) is measured; the
    /// histograms are merged.
    pub latency_rounds: usize,
    /// Untimed round trips first.
    pub warmup: Duration,
    /// Timed sending, per run.
    pub throughput: Duration,
    /// How many times each throughput row (and the memcpy floor) is measured; each side
    /// keeps its best.
    pub throughput_rounds: usize,
}

impl Budget {
    /// The full run (a few minutes with every mechanism). Many short rounds rather than a
    /// few long ones: Rust and C of one row are measured back to back in every round, so the
    /// finer they interleave, the more alike the load each side sees on a shared machine (a
    /// burst of other tenants' work lasting tens of milliseconds otherwise lands on one
    /// side's window and not the other's), and the more process pairs a 1-CPU row averages
    /// over (whether the woken process preempts the waker at once varies from one pair to the
    /// next). BENCHMARKS.md, ipc-bench, has what fewer, longer rounds did to the p99 ratios.
    /// Throughput keeps each side's best round, which longer windows serve better.
    pub const FULL: Budget = Budget {
        latency: Duration::from_millis(5),
        latency_rounds: 192,
        warmup: Duration::from_millis(3),
        throughput: Duration::from_millis(30),
        throughput_rounds: 24,
    };
    /// `--quick`: the full run's rounds, fewer of them. Every window, warm-up and the
    /// interleave are the full run's, so a quick run measures both sides the way the full
    /// run does, only over fewer process pairs: one long window per side would compare a
    /// Rust pair and a C pair at different ages, and a pair's cross-CPU round trip can change
    /// as it ages (BENCHMARKS.md, ipc-bench, "What --quick is for"). Even round counts let
    /// each side go first equally often.
    pub const QUICK: Budget = Budget {
        latency_rounds: 16,
        throughput_rounds: 2,
        ..Budget::FULL
    };

    /// How many rounds a row of this test gets.
    pub fn rounds(&self, test: Test) -> usize {
        match test {
            Test::Latency | Test::Syscall => self.latency_rounds,
            Test::Throughput(_) | Test::Memcpy(_) => self.throughput_rounds,
        }
    }
}

/// Every row to measure, in table order: the floor, then each selected mechanism at each
/// placement, round trip first, then throughput by message size.
pub fn plan(only: &[Family]) -> Vec<Key> {
    let mut keys = vec![Key {
        mech: None,
        test: Test::Syscall,
        placement: Placement::OneProcess,
    }];
    keys.extend(SIZES.map(|n| Key {
        mech: None,
        test: Test::Memcpy(n),
        placement: Placement::OneProcess,
    }));
    let selected = Mech::ALL
        .into_iter()
        .filter(|m| only.is_empty() || only.contains(&m.family()));
    for mech in selected {
        for placement in [Placement::SameCpu, Placement::CrossCpu] {
            let mut tests = Vec::new();
            if mech.has_latency() {
                tests.push(Test::Latency);
            }
            if mech.carries_data() {
                tests.extend(SIZES.map(Test::Throughput));
            }
            keys.extend(tests.into_iter().map(|test| Key {
                mech: Some(mech),
                test,
                placement,
            }));
        }
    }
    keys
}

/// Run the benchmark the command line asks for.
pub fn run(cli: &Cli) -> Result<ExitCode> {
    // First, before any child exists: Ctrl-C, SIGTERM and a closed terminal (SIGHUP) end the
    // run through our cleanup.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    // Said first, so that nobody waits minutes for figures of the wrong build.
    let build = Build::this();
    if let Some(warning) = build.warning() {
        eprintln!("ipc-bench: warning: {warning}");
    }
    let budget = if cli.quick {
        Budget::QUICK
    } else {
        Budget::FULL
    };
    let cpus = harness::usable_cpus()?;
    let machine = Machine::probe(cpus.len());
    let pins = match cpus.as_slice() {
        [] => return Err(Error::msg("sched_getaffinity: no usable CPU")),
        [one] => (*one, None),
        [a, b, ..] => (*a, Some(*b)),
    };
    let keys = plan(&cli.only);
    let mut rows: Vec<Row> = keys
        .iter()
        .map(|&key| Row {
            key,
            rust: Figure::NotRun(String::new()),
            c: Figure::NotRun(String::new()),
        })
        .collect();

    let measurements: usize = keys.iter().map(|k| budget.rounds(k.test) * 2).sum();
    let progress = progress_bar(measurements as u64);
    let all_rounds = budget.latency_rounds.max(budget.throughput_rounds);
    for round in 0..all_rounds {
        for row in &mut rows {
            let key = row.key;
            let rounds = budget.rounds(key.test);
            if round >= rounds {
                continue;
            }
            let cpus = match (key.placement, pins.1) {
                (Placement::CrossCpu, None) => {
                    let why = Figure::NotRun("only one CPU is usable".into());
                    row.rust = why.clone();
                    row.c = why;
                    progress.inc(2);
                    continue;
                }
                (Placement::CrossCpu, Some(b)) => (pins.0, b),
                _ => (pins.0, pins.0),
            };
            let spec = Spec {
                test: key.test,
                cpus,
                budget: match key.test {
                    Test::Latency | Test::Syscall => budget.latency,
                    _ => budget.throughput,
                },
                warmup: budget.warmup,
                max_samples: 1_000_000,
            };
            let c_first = round % 2 == 1;
            for c_side in [c_first, !c_first] {
                progress.set_message(format!(
                    "round {}/{}: {}, {}, {}, {}",
                    round + 1,
                    rounds,
                    key.label(),
                    key.test.name(),
                    key.placement.label(),
                    if c_side { "C" } else { "Rust" }
                ));
                let outcome = measure_one(key.mech, &spec, c_side, &shutdown);
                // Whatever the measurement made is removed by now (measure_one's guards).
                if let Err(stop) = shutdown.err_if_requested() {
                    progress.finish_and_clear();
                    eprintln!("ipc-bench: interrupted; nothing written");
                    return Err(stop);
                }
                let figure = Figure::from_outcome(outcome);
                if c_side {
                    row.c.merge(figure);
                } else {
                    row.rust.merge(figure);
                }
                progress.inc(1);
            }
        }
    }
    progress.finish_and_clear();
    let command = command_line();
    let run = Run {
        command: &command,
        machine: &machine,
        build,
        quick: cli.quick,
    };
    write_outputs(cli, &rows, &run)?;
    Ok(ExitCode::SUCCESS)
}

/// One side of one row, once. Whatever goes wrong is the row's outcome, so the run goes on.
fn measure_one(mech: Option<Mech>, spec: &Spec, c_side: bool, shutdown: &Shutdown) -> Outcome {
    let result = (|| -> Result<Outcome> {
        let names = match mech {
            Some(m) => Names::for_mech(m)?,
            None => Names {
                a: "-".into(),
                b: "-".into(),
            },
        };
        // Whoever made them and however it ended, the names are gone when this returns.
        let _guards = name_guards(mech, &names);
        match (c_side, mech) {
            (true, _) => twin::measure(mech, spec, &names, shutdown),
            (false, None) => floor::measure(spec, shutdown),
            (false, Some(m)) => {
                let run = Measure {
                    spec: *spec,
                    shutdown,
                };
                mech::with_pair(m, spec.test.size(), &names, run)?
            }
        }
    })();
    result.unwrap_or_else(|e| Outcome::Refused(e.to_string()))
}

/// Guards for the named objects a measurement of `mech` may create under `names`.
fn name_guards(mech: Option<Mech>, names: &Names) -> Vec<Unlink> {
    let both = |make: fn(String) -> Object| {
        vec![
            Unlink::new(make(names.a.clone())),
            Unlink::new(make(names.b.clone())),
        ]
    };
    match mech {
        Some(Mech::Fifo) => both(|n| Object::Path(n.into())),
        Some(Mech::PosixMq) => both(Object::Mqueue),
        Some(Mech::PosixSem) => both(Object::Semaphore),
        Some(Mech::Shm) => vec![Unlink::new(Object::Shm(names.a.clone()))],
        _ => Vec::new(),
    }
}

/// A progress line on stderr, or nothing when stderr is not a terminal (a log, a pipe, CI).
fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {wide_msg}")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// The command line as the report shows it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::iter::once("ipc-bench".to_owned())
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where results go: --out, else $CARGO_TARGET_DIR/ipc-bench, else the target directory the
/// binary was built in (`target/release/ipc-bench` → `target/ipc-bench`).
pub fn out_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_owned();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        return PathBuf::from(target).join("ipc-bench");
    }
    let built_in = std::env::current_exe().ok().and_then(|exe| {
        let profile = exe.parent()?;
        let target = profile.parent()?;
        Some(target.join("ipc-bench"))
    });
    built_in.unwrap_or_else(|| PathBuf::from("target/ipc-bench"))
}

fn write_outputs(cli: &Cli, rows: &[Row], run: &Run) -> Result<()> {
    let dir = out_dir(cli.out.as_deref());
    std::fs::create_dir_all(&dir).ctx("mkdir", dir.display())?;
    let json = report::json(rows, run);
    let write = |name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).ctx("write", path.display())
    };
    write("results.csv", &report::csv(rows))?;
    write("results.json", &json)?;
    let svg = dir.join("latency.svg");
    let title = format!("ipc-bench round trips: {}", run.machine.line());
    if let Err(e) = chart::draw(rows, &svg, &title) {
        eprintln!("ipc-bench: no chart: {e}");
    }
    let text = if cli.json {
        json
    } else {
        report::markdown(rows, run)
    };
    common::say!("{}", text.trim_end())?;
    eprintln!(
        "ipc-bench: wrote results.csv, results.json and latency.svg to {}",
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_get_many_short_rounds_and_throughput_fewer_longer_ones() {
        let b = Budget::FULL;
        for test in [Test::Latency, Test::Syscall] {
            assert_eq!(b.rounds(test), b.latency_rounds, "{test:?}");
        }
        for test in [Test::Throughput(64), Test::Memcpy(4096)] {
            assert_eq!(b.rounds(test), b.throughput_rounds, "{test:?}");
        }
        assert!(b.latency_rounds > b.throughput_rounds);
        assert!(b.latency < b.throughput);
    }

    #[test]
    fn quick_is_the_full_run_with_fewer_rounds() {
        let (q, f) = (Budget::QUICK, Budget::FULL);
        assert_eq!(
            (q.latency, q.warmup, q.throughput),
            (f.latency, f.warmup, f.throughput)
        );
        assert!(q.latency_rounds < f.latency_rounds);
        assert!(q.throughput_rounds < f.throughput_rounds);
        // C goes first in odd rounds: an even count gives each side the lead as often.
        for rounds in [q.latency_rounds, q.throughput_rounds] {
            assert!(rounds >= 2 && rounds % 2 == 0, "{rounds}");
        }
    }

    #[test]
    fn plan_has_the_floor_then_each_selected_mechanism() {
        let keys = plan(&[Family::Futex]);
        assert_eq!(keys.len(), 4 + 2);
        assert!(keys[..4].iter().all(|k| k.mech.is_none()));
        assert_eq!(keys[4].placement, Placement::SameCpu);
        assert_eq!(keys[5].placement, Placement::CrossCpu);
        assert!(keys[4..].iter().all(|k| k.test == Test::Latency));
    }

    #[test]
    fn the_pipe_family_brings_its_tuned_variants_for_throughput_only() {
        let keys = plan(&[Family::Pipe]);
        let big: Vec<_> = keys
            .iter()
            .filter(|k| k.mech == Some(Mech::Pipe1m))
            .collect();
        assert_eq!(big.len(), 2 * SIZES.len());
        assert!(big.iter().all(|k| matches!(k.test, Test::Throughput(_))));
        let plain = keys.iter().filter(|k| k.mech == Some(Mech::Pipe)).count();
        assert_eq!(plain, 2 * (1 + SIZES.len()));
    }

    #[test]
    fn no_selection_means_everything() {
        let keys = plan(&[]);
        for mech in Mech::ALL {
            assert!(keys.iter().any(|k| k.mech == Some(mech)), "{mech:?}");
        }
    }

    #[test]
    fn out_flag_wins() {
        assert_eq!(out_dir(Some(Path::new("/x"))), PathBuf::from("/x"));
    }
}
