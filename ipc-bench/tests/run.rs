//! The real binary, run the way a user runs it: `--quick --only …`, with a deadline.
//! Nothing here asserts a speed; only that every output exists, parses and agrees, and that
//! Rust and its C twin, measured side by side in one run, come out within a wide band of
//! each other.

use std::process::Output;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;

const BIN: &str = env!("CARGO_BIN_EXE_ipc-bench");

/// Far above the ~20 s a whole quick run takes, for a loaded CI machine.
const DEADLINE: Duration = Duration::from_secs(240);

/// The opt-level this crate, and so the binary under test, was built at (from build.rs).
const OPT_LEVEL: &str = env!("IPC_BENCH_OPT_LEVEL");

/// The stderr line of a binary built without optimisations.
const DEBUG_WARNING: &str = "ipc-bench: warning: built without optimisations (opt-level 0)";

/// One measuring run at a time: every run pins its processes to the same two CPUs, so two
/// runs at once would measure each other, and the ratio check below would see it.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static MEASURING: Mutex<()> = Mutex::new(());
    // A test that failed while holding it leaves nothing to repair: the lock guards no data.
    MEASURING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run the binary with `args`, writing its files to `out` in the sandbox, with a deadline, and
/// check that it succeeded.
fn run_ok(sb: &Sandbox, args: &[&str]) -> Output {
    let out = testkit::run_with_deadline(
        sb.command(BIN).args(args).arg("--out").arg(sb.join("out")),
        b"",
        DEADLINE,
    );
    assert!(out.status.success(), "{args:?}: {}", testkit::stderr(&out));
    out
}

/// The JSON document a `--json` run printed.
fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("the JSON document on stdout")
}

#[test]
fn quick_pipe_run_writes_a_table_csv_json_and_chart() {
    let _one = one_at_a_time();
    let sb = Sandbox::new();
    let out_dir = sb.join("out");
    let stdout = testkit::stdout(&run_ok(&sb, &["--quick", "--only", "pipe"]));

    // The table: both placements of the pipe's round trip, its throughput, and the floor.
    for needle in [
        "| mechanism | CPUs | p50 | p99 | p99.9 | C p50 |",
        "| pipe | 1 CPU |",
        "| pipe, vmsplice → splice |",
        "| floor: system call (getppid) |",
        "bimodal",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in\n{stdout}");
    }

    // CSV: a header, then rows of as many columns, pipe rows only besides the floor.
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).expect("results.csv");
    let mut lines = csv.lines();
    let header = lines.next().expect("a header");
    let columns = header.split(',').count();
    let rows: Vec<&str> = lines.collect();
    // 4 floor rows; pipe: 2 placements x (latency + 3 sizes); its two variants: 2 x 3 each.
    assert_eq!(rows.len(), 4 + 8 + 12, "{csv}");
    for row in &rows {
        assert!(
            row.starts_with("floor,") || row.starts_with("pipe"),
            "{row}"
        );
        // No error text in these rows has a comma, so a plain split is exact.
        assert_eq!(row.split(',').count(), columns, "{row}");
    }

    // JSON: the same rows, and a pipe round trip measured on both sides with a ratio.
    let json = std::fs::read_to_string(out_dir.join("results.json")).expect("results.json");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("results.json parses");
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 24);
    let pipe_rt = rows
        .iter()
        .find(|r| r["mechanism"] == "pipe" && r["test"] == "latency")
        .expect("a pipe latency row");
    for side in ["rust", "c"] {
        let s = &pipe_rt[side];
        if s["status"] == "ok" {
            assert!(s["p50_ns"].as_u64().unwrap() <= s["p99_ns"].as_u64().unwrap());
            assert!(s["samples"].as_u64().unwrap() > 0);
        } else {
            // Refused is allowed (a busy or odd machine), but then it says why.
            assert!(s["error"].as_str().is_some_and(|e| !e.is_empty()), "{s}");
        }
    }
    assert!(doc["machine"]["cpus"].as_u64().unwrap() >= 1);

    let svg = std::fs::read_to_string(out_dir.join("latency.svg")).expect("latency.svg");
    assert!(
        svg.starts_with("<svg") && svg.contains("pipe"),
        "{svg:.200}"
    );
}

#[test]
fn json_flag_prints_the_document_and_named_objects_are_gone() {
    let _one = one_at_a_time();
    let sb = Sandbox::new();
    let doc = json_of(&run_ok(
        &sb,
        &["--quick", "--json", "--only", "fifo,posix-sem,shm"],
    ));
    let names: Vec<&str> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["mechanism"].as_str())
        .collect();
    for m in ["fifo", "posix-sem", "shm"] {
        assert!(names.contains(&m), "{m} missing from {names:?}");
    }
    // The FIFOs lived in the sandbox's runtime dir; the semaphores and the shared memory in
    // /dev/shm as /ipc-demo-bench-{posix-sem,shm}-…, names only this test's run makes.
    // None is left.
    let rt = sb.runtime_dir();
    let left: Vec<_> = std::fs::read_dir(&rt)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", rt.display());
    let shm_left: Vec<_> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.contains("ipc-demo-bench-posix-sem-") || n.contains("ipc-demo-bench-shm-")
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(shm_left.is_empty(), "left in /dev/shm: {shm_left:?}");
}

/// SysV message queues refuse a message above `kernel.msgmax` (8 KiB unless raised), root
/// included: the 64 KiB rows say why, and the other rows of the run are still measured.
#[test]
fn a_refused_size_is_reported_in_its_row_and_the_rest_still_run() {
    let _one = one_at_a_time();
    let msgmax: usize = std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .expect("/proc/sys/kernel/msgmax")
        .trim()
        .parse()
        .expect("msgmax is a number");
    let sb = Sandbox::new();
    let doc = json_of(&run_ok(&sb, &["--quick", "--json", "--only", "sysv-mq"]));
    let rows: Vec<&serde_json::Value> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mechanism"] == "sysv-mq")
        .collect();
    assert_eq!(rows.len(), 2 * 4, "{rows:?}");
    for row in rows {
        let big = row["size_bytes"].as_u64().unwrap() as usize > msgmax;
        for side in ["rust", "c"] {
            let s = &row[side];
            if big {
                assert_eq!(s["status"], "refused", "{row}");
                let why = s["error"].as_str().unwrap();
                assert!(
                    why.starts_with("msgsnd") && why.ends_with("Invalid argument"),
                    "{why}"
                );
            } else {
                // Measured; a row that fails here for another reason says so in the message.
                assert_eq!(s["status"], "ok", "{row}");
            }
        }
    }
}

/// Issue 28: a whole `--quick` run puts every round-trip row's p50 within 0.67-1.5x of its C
/// twin (but one, see `outside_the_band`). The band is wide on purpose: the same calls on both
/// sides, alternated round by round, do not leave it twice in a row on the same side, however
/// busy the machine. It catches a gross asymmetry (a side measured differently, a row broken on
/// one side), not a bias like the old quick run's on two CPUs (BENCHMARKS.md): that one stays
/// inside. What removed it, the full run's rounds, is pinned by the unit test
/// `quick_is_the_full_run_with_fewer_rounds`, and the agreement with the full run (within 1.1x)
/// is measured by `bench/quick-vs-full.sh`.
#[test]
fn quick_run_p50_ratios_stay_near_c() {
    let _one = one_at_a_time();
    let sb = Sandbox::new();
    let first = outside_the_band(&quick_ratios(&sb));
    if first.is_empty() {
        return;
    }
    // A row can leave the band by chance on a saturated machine: a quick row merges 16
    // rounds a side, and a round whose round trips were never held up by another tenant has
    // a hundred times the samples of one that waited out time slices, so one such round on
    // one side and none on the other decides the median (BENCHMARKS.md). Chance does not
    // pick the same row and the same side again; a method that favours one side does.
    eprintln!("outside 0.67-1.5x in a first run: {first:?}; measuring again");
    let second = outside_the_band(&quick_ratios(&sb));
    let again: Vec<_> = first
        .iter()
        .filter(|(mech, placement, r)| {
            second
                .iter()
                .any(|(m, p, r2)| (m, p) == (mech, placement) && (*r > 1.0) == (*r2 > 1.0))
        })
        .collect();
    assert!(
        again.is_empty(),
        "p50 ratio outside 0.67-1.5x on the same side in two runs: {again:?}\n\
         first run: {first:?}\nsecond run: {second:?}"
    );
}

/// A p50 ratio to C: mechanism, placement, ratio.
type Ratio = (String, String, f64);

/// A whole `--quick` run's p50 ratios, every row measured on both sides.
fn quick_ratios(sb: &Sandbox) -> Vec<Ratio> {
    let doc = json_of(&run_ok(sb, &["--quick", "--json"]));
    let ratios: Vec<Ratio> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            let ratio = r["p50_ratio"].as_f64()?;
            let name = |k: &str| r[k].as_str().map(str::to_owned);
            Some((name("mechanism")?, name("placement")?, ratio))
        })
        .collect();
    // The floor and 14 mechanisms on one CPU, and on two where there are two.
    let cpus = doc["machine"]["cpus"].as_u64().unwrap();
    let expected = 1 + 14 * if cpus >= 2 { 2 } else { 1 };
    assert_eq!(ratios.len(), expected, "{ratios:?}");
    ratios
}

/// The ratios outside 0.67-1.5x. Busy-polling on one CPU is left out: each of its round
/// trips lasts until the scheduler takes the CPU from the spinner, so its p50 is a time
/// slice, not a cost of either side's code, and a quick run gets one or two per round; on a
/// loaded machine the median of 16 slices lands anywhere (BENCHMARKS.md). It is measured on
/// both sides all the same (counted in `quick_ratios`).
fn outside_the_band(ratios: &[Ratio]) -> Vec<Ratio> {
    ratios
        .iter()
        .filter(|(mech, placement, _)| (mech.as_str(), placement.as_str()) != ("shm", "same-cpu"))
        .filter(|(_, _, r)| !(0.67..=1.5).contains(r))
        .cloned()
        .collect()
}

/// Issue 20, item 17: a binary built without optimisations says so on stderr before it
/// measures, in the table and in the JSON; an optimised one says nothing. Which of the two
/// the binary under test is, build.rs tells this test.
#[test]
fn an_unoptimised_build_says_so() {
    let _one = one_at_a_time();
    let debug = OPT_LEVEL == "0";
    let sb = Sandbox::new();
    let table = run_ok(&sb, &["--quick", "--only", "eventfd"]);
    let stderr = testkit::stderr(&table);
    assert_eq!(stderr.contains(DEBUG_WARNING), debug, "{stderr}");
    let stdout = testkit::stdout(&table);
    assert_eq!(
        stdout.contains("**Warning: built without optimisations (opt-level 0): the Rust figures"),
        debug,
        "{stdout}"
    );
    let doc = json_of(&run_ok(&sb, &["--quick", "--json", "--only", "eventfd"]));
    assert_eq!(doc["build"]["opt_level"], OPT_LEVEL);
    assert_eq!(doc["build"]["optimized"], !debug);
}

/// Ctrl-C (SIGINT), SIGTERM or a closed terminal (SIGHUP) in the middle of a measurement: the
/// run stops at once, says so, exits 128 + the signal's number (130, 143, 129), writes
/// nothing, and the SysV semaphore set it had just made is gone. The instant is made certain
/// by waiting for the `-v` line that reports the set's creation before sending the signal.
#[test]
fn a_stop_signal_mid_measurement_removes_what_it_made_and_exits_128_plus_n() {
    let _one = one_at_a_time();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let child = testkit::spawn_with_deadline(
            sb.command(BIN)
                .args(["-v", "--only", "sysv-sem", "--out"])
                .arg(sb.join("out")),
            DEADLINE,
        );
        let mut err = child.stderr_lines().expect("stderr is piped");
        let line = err
            .wait_for(|l| l.contains("semget(IPC_PRIVATE) -> "), DEADLINE)
            .unwrap_or_else(|e| panic!("{e}"));
        let id = line.rsplit(' ').next().unwrap().to_owned();
        // As a terminal does: the whole process group gets it.
        child.signal(sig).expect("signal");
        let status = child.wait_timeout(DEADLINE).expect("it exits");
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {status:?}");
        let rest = err.rest(DEADLINE).expect("stderr ends");
        assert!(
            rest.iter()
                .any(|l| l.contains("interrupted; nothing written")),
            "{sig}: {rest:?}"
        );
        assert_eq!(
            rest.last().map(String::as_str),
            Some(format!("ipc-bench: interrupted by {sig}").as_str()),
            "{sig}: {rest:?}"
        );
        // /proc/sysvipc/sem: key, semid, … per line; our set's id must no longer be listed.
        let sets = std::fs::read_to_string("/proc/sysvipc/sem").expect("/proc/sysvipc/sem");
        let ids: Vec<&str> = sets
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert!(
            !ids.contains(&id.as_str()),
            "{sig}: set {id} left behind: {sets}"
        );
        assert!(
            !sb.join("out").join("results.csv").exists(),
            "{sig}: nothing is written"
        );
        assert_eq!(sb.leftovers(), Vec::<String>::new(), "{sig}");
    }
}

#[test]
fn bad_flags_exit_2_with_a_clear_message() {
    let sb = Sandbox::new();
    for (args, needle) in [
        (&["--only", "pipe,pigeon"][..], "invalid value 'pigeon'"),
        (&["--fast"][..], "unexpected argument '--fast'"),
    ] {
        let out = testkit::run(sb.command(BIN).args(args), b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = testkit::stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}
