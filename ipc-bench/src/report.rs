//! The report: a Markdown table for people, CSV and JSON for programs, and the rankings.
//!
//! Every Rust figure is shown next to its C twin's and as a ratio to it (`×C`): for latency
//! Rust/C (below 1 is faster than C), for throughput Rust/C (above 1 is faster than C).

use std::fmt::Write;

use serde::Serialize;

use crate::harness::{Placement, Test};
use crate::mech::Mech;
use crate::stats::{Figure, Summary, ratio};

/// The goals of issue 14: p50 within 1.15× of C, p99 within 1.5×, bulk ≥ 0.9× of C.
pub const GOAL_P50: f64 = 1.15;
/// See [`GOAL_P50`].
pub const GOAL_P99: f64 = 1.5;
/// See [`GOAL_P50`].
pub const GOAL_BULK: f64 = 0.9;

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The mechanism; None for the floor.
    pub mech: Option<Mech>,
    /// The test.
    pub test: Test,
    /// Where the processes ran.
    pub placement: Placement,
}

impl Key {
    /// The row's label: the mechanism, or what the floor measures.
    pub fn label(&self) -> &'static str {
        match (self.mech, self.test) {
            (Some(m), _) => m.label(),
            (None, Test::Syscall) => "floor: system call (getppid)",
            (None, _) => "floor: memcpy",
        }
    }

    /// The machine-readable name.
    pub fn name(&self) -> &'static str {
        self.mech.map_or("floor", Mech::name)
    }
}

/// One row: a key, and the Rust and C figures.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub key: Key,
    /// The Rust side.
    pub rust: Figure,
    /// The C twin.
    pub c: Figure,
}

impl Row {
    /// Rust p-quantile / C p-quantile.
    pub fn latency_ratio(&self, q: f64) -> Option<f64> {
        ratio(
            self.rust.quantile(q).map(|v| v as f64),
            self.c.quantile(q).map(|v| v as f64),
        )
    }

    /// Rust MiB/s / C MiB/s.
    pub fn throughput_ratio(&self) -> Option<f64> {
        ratio(self.rust.mib_per_s(), self.c.mib_per_s())
    }

    fn is_latency(&self) -> bool {
        matches!(self.key.test, Test::Latency | Test::Syscall)
    }
}

/// The machine the run measured on, as the report's header shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model, from /proc/cpuinfo.
    pub cpu: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// The 1-minute load average when the run started.
    pub load: String,
}

impl Machine {
    /// Look the machine up in /proc now (the load average too: call it when the run starts),
    /// for a run that may use `cpus` CPUs.
    pub fn probe(cpus: usize) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
        let load = read("/proc/loadavg")
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_owned();
        Machine {
            cpu,
            cpus,
            kernel,
            load,
        }
    }

    /// One line for the table's header.
    pub fn line(&self) -> String {
        format!(
            "{}, {} CPU{} usable, Linux {}, load {} at start",
            self.cpu,
            self.cpus,
            if self.cpus == 1 { "" } else { "s" },
            self.kernel,
            self.load
        )
    }
}

/// How this binary was built. A Rust figure measures the build as much as the code: without
/// optimisations the timed loops and memcpy run several times slower, and the C twin is
/// always built with -O2, so a ratio to C then says nothing about Rust.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Build {
    /// The profile's `opt-level` (`0`-`3`, `s`, `z`), as cargo gave it to build.rs.
    pub opt_level: &'static str,
    /// False at opt-level 0: the Rust figures then measure unoptimised code.
    pub optimized: bool,
}

impl Build {
    /// This binary.
    pub fn this() -> Build {
        Build::with_opt_level(env!("IPC_BENCH_OPT_LEVEL"))
    }

    /// A build at `opt_level`.
    pub fn with_opt_level(opt_level: &'static str) -> Build {
        Build {
            opt_level,
            optimized: opt_level != "0",
        }
    }

    /// What the table and stderr say about an unoptimised build; None for an optimised one.
    pub fn warning(&self) -> Option<String> {
        (!self.optimized).then(|| {
            format!(
                "built without optimisations (opt-level {}): the Rust figures measure \
                 unoptimised code, next to a C twin built with -O2; for figures that mean \
                 something, build with `cargo build --release -p ipc-bench`",
                self.opt_level
            )
        })
    }
}

/// What the report says about the run as a whole, besides its rows.
#[derive(Debug, Serialize)]
pub struct Run<'a> {
    /// The command line.
    pub command: &'a str,
    /// The machine.
    pub machine: &'a Machine,
    /// The binary.
    pub build: Build,
    /// A `--quick` run (the command line says so too; the table adds what it is good for).
    #[serde(skip)]
    pub quick: bool,
}

/// A duration with three significant digits or so: 321 ns, 4.48 µs, 16.9 µs, 2.04 ms, 20.3 ms.
fn ns(v: Option<u64>) -> String {
    let Some(v) = v else {
        return "—".into();
    };
    let f = v as f64;
    match v {
        0..1_000 => format!("{v} ns"),
        1_000..10_000 => format!("{:.2} µs", f / 1e3),
        10_000..1_000_000 => format!("{:.1} µs", f / 1e3),
        1_000_000..10_000_000 => format!("{:.2} ms", f / 1e6),
        _ => format!("{:.1} ms", f / 1e6),
    }
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.0}"))
}

fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.2}×"))
}

fn size(n: usize) -> String {
    if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

/// The text of a failed or skipped side, kept short and free of `|`.
fn why(f: &Figure) -> Option<String> {
    match f {
        Figure::Failed(w) | Figure::NotRun(w) => Some(w.replace('|', "/")),
        _ => None,
    }
}

/// Why a row has no figures: the one reason when both sides failed (they make the same
/// call), else which side failed and why.
fn failure(row: &Row) -> Option<String> {
    match (why(&row.rust), why(&row.c)) {
        (None, None) => None,
        (Some(w), Some(_)) => Some(w),
        (Some(w), None) => Some(format!("Rust: {w}")),
        (None, Some(w)) => Some(format!("C: {w}")),
    }
}

/// The Markdown report: a latency table, a throughput table, the rankings and the goals.
pub fn markdown(rows: &[Row], run: &Run) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## ipc-bench\n");
    let _ = writeln!(out, "`{}` on {}.\n", run.command, run.machine.line());
    if let Some(warning) = run.build.warning() {
        let _ = writeln!(out, "**Warning: {warning}.**\n");
    }
    if run.quick {
        let _ = writeln!(
            out,
            "A quick run: the full run's rounds, fewer of them. Its p50 ratios to C agree with \
             the full run's; its p99, p99.9 and throughput figures do not (too few rounds), \
             and its goals below are a first look, not a verdict.\n"
        );
    }

    let _ = writeln!(out, "### Round trip (1-byte message or bare wake-up)\n");
    let _ = writeln!(
        out,
        "| mechanism | CPUs | p50 | p99 | p99.9 | C p50 | C p99 | C p99.9 | p50 ×C | p99 ×C |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows.iter().filter(|r| r.is_latency()) {
        let (r, c) = (&row.rust, &row.c);
        let _ = write!(
            out,
            "| {} | {} ",
            row.key.label(),
            row.key.placement.label()
        );
        match failure(row) {
            Some(w) => {
                let _ = writeln!(out, "| {w} | | | | | | | |");
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    ns(r.quantile(0.5)),
                    ns(r.quantile(0.99)),
                    ns(r.quantile(0.999)),
                    ns(c.quantile(0.5)),
                    ns(c.quantile(0.99)),
                    ns(c.quantile(0.999)),
                    times(row.latency_ratio(0.5)),
                    times(row.latency_ratio(0.99)),
                );
            }
        }
    }

    let _ = writeln!(
        out,
        "\n### Throughput (MiB/s, one way; each side's best round)\n"
    );
    let _ = writeln!(out, "| mechanism | CPUs | message | Rust | C | ×C |");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|");
    for row in rows.iter().filter(|r| !r.is_latency()) {
        let _ = write!(
            out,
            "| {} | {} | {} ",
            row.key.label(),
            row.key.placement.label(),
            size(row.key.test.size())
        );
        match failure(row) {
            Some(w) => {
                let _ = writeln!(out, "| {w} | | |");
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    mib(row.rust.mib_per_s()),
                    mib(row.c.mib_per_s()),
                    times(row.throughput_ratio())
                );
            }
        }
    }

    let _ = writeln!(
        out,
        "\n1 CPU: both processes pinned to one CPU, so each hand-over is a context switch. \
         2 CPUs: pinned to two, so each hand-over is a cross-CPU wake-up. Unpinned figures \
         are not shown because they are bimodal: the scheduler sometimes puts both processes \
         on one CPU and sometimes not, and a run mixes the two rows above."
    );

    for (placement, title) in [
        (Placement::CrossCpu, "2 CPUs"),
        (Placement::SameCpu, "1 CPU"),
    ] {
        let ranked = rank_latency(rows, placement);
        if !ranked.is_empty() {
            let _ = writeln!(out, "\n### Ranking: round-trip p50, {title}\n");
            for (i, (label, p50)) in ranked.iter().enumerate() {
                let _ = writeln!(out, "{}. {label}: {}", i + 1, ns(Some(*p50)));
            }
        }
    }
    let ranked = rank_bandwidth(rows, Placement::CrossCpu, 64 * 1024);
    if !ranked.is_empty() {
        let _ = writeln!(out, "\n### Ranking: throughput at 64 KiB, 2 CPUs\n");
        for (i, (label, v)) in ranked.iter().enumerate() {
            let _ = writeln!(out, "{}. {label}: {v:.0} MiB/s", i + 1);
        }
    }

    let goals = Goals::of(rows);
    let _ = writeln!(out, "\n### Goals (Rust against its C twin, this run)\n");
    let _ = writeln!(
        out,
        "- p50 within {GOAL_P50}× of C: {}/{} rows{}",
        goals.p50.0,
        goals.p50.1,
        missed(&goals.p50_missed)
    );
    let _ = writeln!(
        out,
        "- p99 within {GOAL_P99}× of C: {}/{} rows{}",
        goals.p99.0,
        goals.p99.1,
        missed(&goals.p99_missed)
    );
    let _ = writeln!(
        out,
        "- pipe and Unix stream at 64 KiB at least {GOAL_BULK}× of C: {}/{} rows{}",
        goals.bulk.0,
        goals.bulk.1,
        missed(&goals.bulk_missed)
    );
    out
}

fn missed(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" (missed: {})", list.join("; "))
    }
}

/// How many rows meet each goal, out of how many were measured on both sides.
#[derive(Debug, Default, PartialEq)]
pub struct Goals {
    /// (met, measured) for p50.
    pub p50: (usize, usize),
    /// (met, measured) for p99.
    pub p99: (usize, usize),
    /// (met, measured) for pipe and Unix-stream bulk at 64 KiB.
    pub bulk: (usize, usize),
    /// The rows that missed the p50 goal, with their ratio.
    pub p50_missed: Vec<String>,
    /// The rows that missed the p99 goal.
    pub p99_missed: Vec<String>,
    /// The rows that missed the bulk goal.
    pub bulk_missed: Vec<String>,
}

impl Goals {
    /// Check every row against the goals.
    pub fn of(rows: &[Row]) -> Goals {
        let mut g = Goals::default();
        let tally = |r: Option<f64>,
                     ok: fn(f64) -> bool,
                     count: &mut (usize, usize),
                     missed: &mut Vec<String>,
                     row: &Row| {
            if let Some(r) = r {
                count.1 += 1;
                if ok(r) {
                    count.0 += 1;
                } else {
                    missed.push(format!(
                        "{}, {}, {:.2}×",
                        row.key.label(),
                        row.key.placement.label(),
                        r
                    ));
                }
            }
        };
        for row in rows.iter().filter(|r| r.key.mech.is_some()) {
            if row.key.test == Test::Latency {
                tally(
                    row.latency_ratio(0.5),
                    |r| r <= GOAL_P50,
                    &mut g.p50,
                    &mut g.p50_missed,
                    row,
                );
                tally(
                    row.latency_ratio(0.99),
                    |r| r <= GOAL_P99,
                    &mut g.p99,
                    &mut g.p99_missed,
                    row,
                );
            }
            let bulk_mech = matches!(row.key.mech, Some(Mech::Pipe | Mech::UnixStream));
            if bulk_mech && row.key.test == Test::Throughput(64 * 1024) {
                tally(
                    row.throughput_ratio(),
                    |r| r >= GOAL_BULK,
                    &mut g.bulk,
                    &mut g.bulk_missed,
                    row,
                );
            }
        }
        g
    }
}

/// Mechanisms by Rust round-trip p50 at `placement`, fastest first.
pub fn rank_latency(rows: &[Row], placement: Placement) -> Vec<(&'static str, u64)> {
    let mut v: Vec<_> = rows
        .iter()
        .filter(|r| r.key.mech.is_some() && r.key.test == Test::Latency)
        .filter(|r| r.key.placement == placement)
        .filter_map(|r| Some((r.key.label(), r.rust.quantile(0.5)?)))
        .collect();
    v.sort_by_key(|&(label, p50)| (p50, label));
    v
}

/// Mechanisms by Rust throughput with `size`-byte messages at `placement`, fastest first.
pub fn rank_bandwidth(rows: &[Row], placement: Placement, size: usize) -> Vec<(&'static str, f64)> {
    let mut v: Vec<_> = rows
        .iter()
        .filter(|r| r.key.mech.is_some() && r.key.test == Test::Throughput(size))
        .filter(|r| r.key.placement == placement)
        .filter_map(|r| Some((r.key.label(), r.rust.mib_per_s()?)))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// One row as CSV and JSON carry it.
#[derive(Debug, Serialize)]
pub struct Record {
    /// `pipe`, `futex`, …, `floor`.
    pub mechanism: &'static str,
    /// The table's label.
    pub label: &'static str,
    /// `latency`, `throughput`, `syscall`, `memcpy`.
    pub test: &'static str,
    /// `same-cpu`, `cross-cpu`, `one-process`.
    pub placement: &'static str,
    /// Message size in bytes (1 for round trips, 0 for the system call).
    pub size_bytes: usize,
    /// The Rust side.
    pub rust: Summary,
    /// The C twin.
    pub c: Summary,
    /// Rust p50 / C p50.
    pub p50_ratio: Option<f64>,
    /// Rust p99 / C p99.
    pub p99_ratio: Option<f64>,
    /// Rust MiB/s / C MiB/s.
    pub throughput_ratio: Option<f64>,
}

fn round3(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v * 1000.0).round() / 1000.0)
}

/// The rows as records.
pub fn records(rows: &[Row]) -> Vec<Record> {
    rows.iter()
        .map(|row| Record {
            mechanism: row.key.name(),
            label: row.key.label(),
            test: row.key.test.name(),
            placement: row.key.placement.name(),
            size_bytes: row.key.test.size(),
            rust: row.rust.summary(),
            c: row.c.summary(),
            p50_ratio: round3(row.latency_ratio(0.5)),
            p99_ratio: round3(row.latency_ratio(0.99)),
            throughput_ratio: round3(row.throughput_ratio()),
        })
        .collect()
}

/// The CSV columns.
pub const CSV_HEADER: &str = "mechanism,test,placement,size_bytes,\
rust_status,rust_samples,rust_p50_ns,rust_p99_ns,rust_p999_ns,rust_mib_per_s,rust_error,\
c_status,c_samples,c_p50_ns,c_p99_ns,c_p999_ns,c_mib_per_s,c_error,\
p50_ratio,p99_ratio,throughput_ratio";

/// A CSV field, quoted if it needs to be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The rows as CSV, with a header line.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in records(rows) {
        let mut cols = vec![
            field(r.mechanism),
            r.test.to_owned(),
            r.placement.to_owned(),
            r.size_bytes.to_string(),
        ];
        for s in [&r.rust, &r.c] {
            cols.extend([
                s.status.to_owned(),
                opt(s.samples),
                opt(s.p50_ns),
                opt(s.p99_ns),
                opt(s.p999_ns),
                opt(s.mib_per_s),
                field(s.error.as_deref().unwrap_or("")),
            ]);
        }
        cols.extend([opt(r.p50_ratio), opt(r.p99_ratio), opt(r.throughput_ratio)]);
        out.push_str(&cols.join(","));
        out.push('\n');
    }
    out
}

/// The whole run as one JSON document: `command`, `machine`, `build`, `rows`.
#[derive(Serialize)]
pub struct Document<'a> {
    /// The command line, the machine and the build.
    #[serde(flatten)]
    pub run: &'a Run<'a>,
    /// Every row.
    pub rows: Vec<Record>,
}

/// The rows as pretty JSON.
pub fn json(rows: &[Row], run: &Run) -> String {
    let doc = Document {
        run,
        rows: records(rows),
    };
    serde_json::to_string_pretty(&doc).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Outcome;

    fn lat(mech: Mech, placement: Placement, rust: u64, c: u64) -> Row {
        Row {
            key: Key {
                mech: Some(mech),
                test: Test::Latency,
                placement,
            },
            rust: Figure::from_outcome(Outcome::Latency(vec![rust; 10])),
            c: Figure::from_outcome(Outcome::Latency(vec![c; 10])),
        }
    }

    fn bulk(mech: Mech, rust_mib: u64, c_mib: u64) -> Row {
        let fig = |m: u64| Figure::Throughput {
            bytes: m << 20,
            ns: 1_000_000_000,
        };
        Row {
            key: Key {
                mech: Some(mech),
                test: Test::Throughput(65536),
                placement: Placement::CrossCpu,
            },
            rust: fig(rust_mib),
            c: fig(c_mib),
        }
    }

    fn refused() -> Row {
        Row {
            key: Key {
                mech: Some(Mech::SysvMq),
                test: Test::Throughput(65536),
                placement: Placement::CrossCpu,
            },
            rust: Figure::Failed("msgsnd queue 7 (65536 bytes): Invalid argument".into()),
            c: Figure::Failed("msgsnd: Invalid argument".into()),
        }
    }

    /// A full run of an optimised (or not) build on `machine`.
    fn run_on<'a>(machine: &'a Machine, opt_level: &'static str) -> Run<'a> {
        Run {
            command: "ipc-bench",
            machine,
            build: Build::with_opt_level(opt_level),
            quick: false,
        }
    }

    fn sample() -> Vec<Row> {
        vec![
            // Below 2048 ns a 3-digit histogram is exact, so the tests can compare numbers.
            lat(Mech::Pipe, Placement::CrossCpu, 1200, 1100),
            lat(Mech::Futex, Placement::CrossCpu, 900, 910),
            lat(Mech::Shm, Placement::CrossCpu, 400, 300),
            lat(Mech::Shm, Placement::SameCpu, 3_000_000, 3_000_000),
            bulk(Mech::Pipe, 900, 1000),
            bulk(Mech::UnixStream, 2000, 2500),
            refused(),
        ]
    }

    #[test]
    fn latency_ranking_is_fastest_first_per_placement() {
        let rows = sample();
        let ranked = rank_latency(&rows, Placement::CrossCpu);
        let labels: Vec<_> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(labels, ["shared memory, busy-poll", "futex", "pipe"]);
        assert_eq!(rank_latency(&rows, Placement::SameCpu).len(), 1);
    }

    #[test]
    fn bandwidth_ranking_skips_refused_rows() {
        let rows = sample();
        let ranked = rank_bandwidth(&rows, Placement::CrossCpu, 65536);
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].0, "Unix stream");
        assert!((ranked[0].1 - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn goals_count_and_name_the_misses() {
        let g = Goals::of(&sample());
        assert_eq!(g.p50, (3, 4));
        assert_eq!(g.p50_missed, ["shared memory, busy-poll, 2 CPUs, 1.33×"]);
        assert_eq!(g.bulk, (1, 2));
        assert_eq!(g.bulk_missed, ["Unix stream, 2 CPUs, 0.80×"]);
    }

    #[test]
    fn table_has_both_sides_ratios_and_refusals() {
        let machine = Machine {
            cpu: "Test CPU".into(),
            cpus: 2,
            kernel: "6.1".into(),
            load: "0.00".into(),
        };
        let run = Run {
            command: "ipc-bench --quick",
            quick: true,
            ..run_on(&machine, "3")
        };
        let md = markdown(&sample(), &run);
        assert!(
            md.contains("`ipc-bench --quick` on Test CPU, 2 CPUs usable"),
            "{md}"
        );
        assert!(md.contains("| pipe | 2 CPUs | 1.20 µs |"), "{md}");
        assert!(md.contains("| 1.09× |"), "{md}");
        assert!(
            md.contains(
                "| SysV mq | 2 CPUs | 64 KiB | msgsnd queue 7 (65536 bytes): Invalid argument |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| pipe | 2 CPUs | 64 KiB | 900 | 1000 | 0.90× |"),
            "{md}"
        );
        assert!(md.contains("bimodal"), "{md}");
        // One side failing is named as such.
        let mut one_sided = lat(Mech::Eventfd, Placement::SameCpu, 900, 900);
        one_sided.c = Figure::Failed("no result within 20 s".into());
        let md1 = markdown(&[one_sided], &run_on(&machine, "3"));
        assert!(
            md1.contains("| eventfd | 1 CPU | C: no result within 20 s |"),
            "{md1}"
        );
        assert!(md.contains("1. shared memory, busy-poll: 400 ns"), "{md}");
        // A quick run says what it is good for; a full run has no such line.
        assert!(md.contains("A quick run: the full run's rounds"), "{md}");
        assert!(!md1.contains("A quick run"), "{md1}");
        // Every table line has the same number of cells as its header.
        for table in md.split("\n\n").filter(|t| t.starts_with("| mechanism")) {
            let cells: Vec<_> = table.lines().map(|l| l.matches('|').count()).collect();
            assert!(cells.iter().all(|&c| c == cells[0]), "{table}");
        }
    }

    #[test]
    fn durations_read_at_a_glance() {
        let f = |v| ns(Some(v));
        assert_eq!(f(321), "321 ns");
        assert_eq!(f(4475), "4.47 µs");
        assert_eq!(f(16_900), "16.9 µs");
        assert_eq!(f(2_041_900), "2.04 ms");
        assert_eq!(f(20_300_000), "20.3 ms");
        assert_eq!(ns(None), "—");
    }

    #[test]
    fn csv_quotes_fields_and_keeps_columns() {
        let text = csv(&sample());
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert_eq!(header, CSV_HEADER);
        let columns = header.split(',').count();
        let body: Vec<_> = lines.collect();
        assert_eq!(body.len(), 7);
        for line in &body[..6] {
            assert_eq!(line.split(',').count(), columns, "{line}");
        }
        // The error message has no comma, but the refused row's ratio columns are empty.
        assert!(body[6].starts_with("sysv-mq,throughput,cross-cpu,65536,refused,"));
        assert!(body[6].ends_with(",,,"));
        assert_eq!(field("a,b \"c\""), "\"a,b \"\"c\"\"\"");
        assert!(
            body[0].starts_with("pipe,latency,cross-cpu,1,ok,10,1200,"),
            "{}",
            body[0]
        );
    }

    #[test]
    fn json_parses_back() {
        let machine = Machine::probe(2);
        let text = json(&sample(), &run_on(&machine, "3"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[0]["mechanism"], "pipe");
        assert_eq!(rows[0]["rust"]["p50_ns"], 1200);
        assert_eq!(rows[4]["throughput_ratio"], 0.9);
        assert_eq!(rows[6]["c"]["status"], "refused");
        assert_eq!(v["machine"]["cpus"], 2);
        assert_eq!(v["command"], "ipc-bench");
        assert_eq!(v["build"]["opt_level"], "3");
        assert_eq!(v["build"]["optimized"], true);
    }

    #[test]
    fn an_unoptimised_build_says_so_in_the_table_and_the_json() {
        let machine = Machine::probe(2);
        let debug = run_on(&machine, "0");
        let md = markdown(&sample(), &debug);
        assert!(
            md.contains("**Warning: built without optimisations (opt-level 0): the Rust figures"),
            "{md}"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&sample(), &debug)).unwrap();
        assert_eq!(v["build"]["opt_level"], "0");
        assert_eq!(v["build"]["optimized"], false);
        // Optimised at any level: no warning.
        for level in ["1", "2", "3", "s", "z"] {
            let run = run_on(&machine, level);
            assert_eq!(run.build.warning(), None, "{level}");
            assert!(!markdown(&sample(), &run).contains("Warning"), "{level}");
        }
    }
}
