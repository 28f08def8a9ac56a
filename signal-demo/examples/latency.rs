//! Signal delivery latency and reload time of the `signal-demo` daemon, beside a pipe round
//! trip. A benchmark, not part of the demo: the demo binary carries neither this code nor its
//! histogram crate. Run it through `bench/latency.sh`, which builds it:
//!
//! ```sh
//! bash signal-demo/bench/latency.sh [SAMPLES] [RELOADS]
//! # or by hand:
//! cargo build --release -p signal-demo --bin signal-demo --example latency
//! target/release/examples/latency --daemon target/release/signal-demo --samples 10000
//! ```
//!
//! It starts a daemon child whose stdout is a pipe we read ourselves, and times round trips
//! with CLOCK_MONOTONIC: from just before the signal is sent to the moment the daemon's line
//! saying it acted has been read back. That is what a user of signals as notifications pays:
//! the kernel queueing the signal, waking the daemon's poll, the signalfd read, the daemon's
//! work and its write, and our wake-up on the pipe.
//!
//! The peer is the same round trip with the notification carried by a pipe instead of a
//! signal: one line written to `cat`, which echoes it back. Both paths end with the same
//! pipe read, so the ratio shows what a signal costs compared with a byte on a pipe.
//!
//! One sample at a time, never a burst: a signal sent while the previous one is still pending
//! would merge with it (standard) or queue behind it, and the timing would be of the queue.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;
use hdrhistogram::Histogram;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::time::{ClockId, clock_gettime};

use common::child::{Options, Supervised};
use common::cleanup::Unlink;
use common::say;
use common::{Context, Error, Result};

// The demo's own kill(2)/sigqueue(3) code, compiled in rather than copied: the benchmark must
// send exactly as `signal-demo send` does, and a binary crate has no library to import from.
#[allow(dead_code)]
#[path = "../src/signals.rs"]
mod signals;

use signals::Sig;

/// Measure signal delivery latency and reload time against a signal-demo daemon child.
#[derive(Parser, Debug)]
#[command(name = "latency")]
struct Args {
    /// The signal-demo binary to start as the daemon (default: `signal-demo` beside the
    /// directory this example lives in, i.e. target/<profile>/signal-demo).
    #[arg(long, value_name = "PATH")]
    daemon: Option<PathBuf>,
    /// Round trips per measurement.
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    samples: u32,
    /// Reloads to time.
    #[arg(
        long,
        default_value_t = 2_000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    reloads: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::narrate::init("bench", false);
    common::error::finish("latency", run(&args))
}

/// The signal-demo binary: `--daemon`, or target/<profile>/signal-demo for
/// target/<profile>/examples/latency.
fn daemon_binary(args: &Args) -> Result<PathBuf> {
    if let Some(p) = &args.daemon {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().ctx("current_exe", "")?;
    let guess = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("signal-demo"))
        .filter(|p| p.is_file());
    guess.ok_or_else(|| {
        Error::Usage(format!(
            "no signal-demo binary beside {}; build it or pass --daemon PATH",
            exe.display()
        ))
    })
}

/// Write the config atomically (a sibling renamed over it), so a reload never reads half a
/// file. Both names are in our private runtime dir (mode 0700), where nobody else can plant
/// or read a file.
fn replace_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, text).ctx("write", tmp.display())?;
    std::fs::rename(&tmp, path).ctx("rename", tmp.display())
}

const DEADLINE: Duration = Duration::from_secs(900);

/// Nanoseconds on CLOCK_MONOTONIC (immune to wall-clock changes).
fn now_ns() -> Result<u64> {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).ctx("clock_gettime", "CLOCK_MONOTONIC")?;
    Ok(u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
        + u64::try_from(t.tv_nsec()).unwrap_or(0))
}

/// A child whose stdin and stdout are pipes we hold directly (no reader thread in between,
/// which would add its own wake-up to every sample).
struct Piped {
    child: Supervised,
    input: File,
    output: BufReader<File>,
}

impl Piped {
    /// Takes `cmd` by value: a Command keeps its copies of the pipe ends until it is dropped,
    /// and a write end left open in our process would keep us from ever seeing EOF.
    fn spawn(label: &str, mut cmd: Command) -> Result<Piped> {
        // O_CLOEXEC on all four ends: the child gets its two through dup2 onto 0 and 1 (which
        // clears the flag on the copies), and no other child inherits any of them.
        let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe2", label)?;
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe2", label)?;
        cmd.stdin(Stdio::from(in_r)).stdout(Stdio::from(out_w));
        let opts = Options {
            deadline: Some(DEADLINE),
            own_group: true,
        };
        let child = Supervised::spawn(label, &mut cmd, opts)?;
        drop(cmd);
        Ok(Piped {
            child,
            input: File::from(in_w),
            output: BufReader::new(File::from(out_r)),
        })
    }

    /// Read lines until one starts with `prefix`; an error at end of output.
    fn expect(&mut self, prefix: &str, line: &mut String) -> Result<()> {
        loop {
            line.clear();
            let n = self
                .output
                .read_line(line)
                .ctx("read", self.child.label())?;
            if n == 0 {
                return Err(Error::msg(format!(
                    "{} ended before a line starting with {prefix:?}",
                    self.child.label()
                )));
            }
            if line.starts_with(prefix) {
                return Ok(());
            }
        }
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| Error::msg(format!("histogram: {e}")))
}

fn record(h: &mut Histogram<u64>, start: u64) -> Result<()> {
    let ns = now_ns()?.saturating_sub(start).max(1);
    h.record(ns)
        .map_err(|e| Error::msg(format!("histogram: {e}")))
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Run every measurement and print the table.
fn run(args: &Args) -> Result<ExitCode> {
    let (samples, reloads) = (args.samples, args.reloads);
    let dir = common::names::runtime_dir()?;
    let tag = common::names::unique("signal-bench");
    let cfg = dir.join(format!("{tag}.toml"));
    // An interval of an hour: no tick line gets between a signal and its answer.
    let config_a = "message = \"a\"\ninterval_ms = 3600000\n";
    let config_b = "message = \"b\"\ninterval_ms = 3600000\n";
    let _guard = Unlink::path(&cfg);
    replace_file(&cfg, config_a)?;

    let mut cmd = Command::new(daemon_binary(args)?);
    cmd.arg("daemon").arg("--config").arg(&cfg);
    let mut daemon = Piped::spawn("daemon", cmd)?;
    let pid = daemon.child.pid();
    let mut line = String::new();
    daemon.expect("ready: pid ", &mut line)?;

    let mut cat = Piped::spawn("cat", Command::new("cat"))?;

    // The rows are measured interleaved, one sample of each in turn, so that every row sees
    // the same machine: on a small busy box the wake-up cost swings with where the scheduler
    // puts the two processes (same CPU or not), and rows measured one after the other would
    // compare different moments rather than different mechanisms.
    let rt = Sig::rtmin();
    let (mut h_rt, mut h_usr1, mut h_reload, mut h_pipe) =
        (histogram()?, histogram()?, histogram()?, histogram()?);
    let reload_every = (samples / reloads.min(samples)).max(1);
    let mut reloaded = 0;
    for i in 0..samples {
        let value = i as i32;
        let t0 = now_ns()?;
        signals::sigqueue(pid, rt, value)?;
        daemon.expect("rt signal value=", &mut line)?;
        record(&mut h_rt, t0)?;
        if line.trim_end() != format!("rt signal value={value}") {
            return Err(Error::msg(format!("expected value {value}, got {line:?}")));
        }

        let t0 = now_ns()?;
        signals::kill(pid, Sig::std(Signal::SIGUSR1))?;
        daemon.expect("status: ", &mut line)?;
        record(&mut h_usr1, t0)?;

        let t0 = now_ns()?;
        cat.input.write_all(b"x\n").ctx("write", "cat stdin")?;
        cat.expect("x", &mut line)?;
        record(&mut h_pipe, t0)?;

        if i % reload_every == 0 && reloaded < reloads {
            // Alternate the file so every reload really changes something; the rewrite is
            // outside the timing.
            let text = if reloaded % 2 == 0 {
                config_b
            } else {
                config_a
            };
            replace_file(&cfg, text)?;
            let t0 = now_ns()?;
            signals::kill(pid, Sig::std(Signal::SIGHUP))?;
            daemon.expect("reloaded config", &mut line)?;
            record(&mut h_reload, t0)?;
            reloaded += 1;
        }
    }
    drop(cat);
    signals::kill(pid, Sig::std(Signal::SIGTERM))?;
    daemon.expect("stopped", &mut line)?;
    daemon.child.wait_timeout(Duration::from_secs(30))?;

    say!(
        "round trip: send -> receiver acts -> its line read back through a pipe \
         (CLOCK_MONOTONIC, {samples} samples, {reloaded} reloads, interleaved)"
    )?;
    say!("{:<46} {:>12} {:>12}", "what", "median (us)", "p99 (us)")?;
    let rows = [
        ("sigqueue(SIGRTMIN) -> daemon prints value", &h_rt),
        ("kill(SIGUSR1) -> daemon prints status", &h_usr1),
        ("kill(SIGHUP) -> daemon reloads config", &h_reload),
        ("peer: write(pipe) -> cat echoes the line", &h_pipe),
    ];
    for (what, h) in rows {
        say!(
            "{what:<46} {:>12.1} {:>12.1}",
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.99))
        )?;
    }
    let ratio = h_rt.value_at_quantile(0.5) as f64 / h_pipe.value_at_quantile(0.5).max(1) as f64;
    let reload_extra = h_reload
        .value_at_quantile(0.5)
        .saturating_sub(h_usr1.value_at_quantile(0.5));
    say!("ratio signal/pipe (median, sigqueue vs cat): {ratio:.2}x")?;
    say!(
        "reload cost beyond a plain signal (median): {:.1} us",
        us(reload_extra)
    )?;
    Ok(ExitCode::SUCCESS)
}
