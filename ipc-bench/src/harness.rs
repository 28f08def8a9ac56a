//! The harness: fork the two processes, pin them, run the timed loops, collect the result.
//!
//! One measurement, Rust side:
//! 1. the coordinator (this process, which outlives the measurement) sets the mechanism up
//!    ([`crate::mech::with_pair`]) and makes two pipes: *results* (children → coordinator)
//!    and *ack* (pong → ping, the end of a throughput run);
//! 2. it forks **pong** (which drops ping's end, pins itself, and echoes or receives), then
//!    **ping** (which is told pong's pid, pins itself, warms up, and times round trips or
//!    sends for the time budget), and closes its own copies of every end;
//! 3. it reads ping's result lines from the results pipe, with a deadline, and wakes at once
//!    on Ctrl-C ([`common::cleanup::Shutdown`]);
//! 4. it kills both children (pong echoes forever), reaps them, and removes what the set-up
//!    made (dropping the pair's guards).
//!
//! The C twin ([`crate::twin`]) does steps 1-4 itself, and prints the same result lines
//! ([`crate::results`]). The floor ([`crate::floor`]) is one forked process, measured through
//! the same results pipe.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::{Context, Error, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2, read, write};

use crate::mech::{Endpoint, MAX_MSG, Pair, PairRunner};
use crate::results::{Outcome, collect};

/// What one measurement measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Test {
    /// Round trips of a one-byte message (or a bare wake-up).
    Latency,
    /// Messages of this many bytes, one way, for the time budget.
    Throughput(usize),
    /// The floor: a bare system call (getppid), one process.
    Syscall,
    /// The floor: memcpy of this many bytes, one process.
    Memcpy(usize),
}

impl Test {
    /// The name in CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Test::Latency => "latency",
            Test::Throughput(_) => "throughput",
            Test::Syscall => "syscall",
            Test::Memcpy(_) => "memcpy",
        }
    }

    /// The message size, 0 for the tests without one.
    pub fn size(self) -> usize {
        match self {
            Test::Throughput(n) | Test::Memcpy(n) => n,
            Test::Latency => 1,
            Test::Syscall => 0,
        }
    }
}

/// Where the two processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placement {
    /// Both pinned to one CPU: every hand-over is a context switch on that CPU.
    SameCpu,
    /// Pinned to two different CPUs: every hand-over is a cross-CPU wake-up.
    CrossCpu,
    /// The floor: one process, pinned.
    OneProcess,
}

impl Placement {
    /// The name in CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Placement::SameCpu => "same-cpu",
            Placement::CrossCpu => "cross-cpu",
            Placement::OneProcess => "one-process",
        }
    }

    /// The words in the table.
    pub fn label(self) -> &'static str {
        match self {
            Placement::SameCpu => "1 CPU",
            Placement::CrossCpu => "2 CPUs",
            Placement::OneProcess => "—",
        }
    }
}

/// Everything one measurement needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// What to measure.
    pub test: Test,
    /// Ping's CPU and pong's CPU.
    pub cpus: (usize, usize),
    /// How long to time (after the warm-up).
    pub budget: Duration,
    /// How long to run round trips before timing them.
    pub warmup: Duration,
    /// The most round trips to record.
    pub max_samples: usize,
}

impl Spec {
    /// How long to wait for a result before declaring the run hung: generous, because the
    /// machine may be busy, and a healthy run ends long before.
    pub fn deadline(&self) -> Duration {
        self.budget * 4 + self.warmup * 4 + Duration::from_secs(20)
    }
}

/// The CPUs this process may run on (its affinity mask), in order.
pub fn usable_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).ctx("sched_getaffinity", "self")?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Pin this process to `cpu`.
pub fn pin(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).ctx("CpuSet::set", cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set).ctx("sched_setaffinity", format_args!("CPU {cpu}"))
}

/// The [`PairRunner`] that measures a pair under `spec`.
pub struct Measure<'a> {
    /// What to measure.
    pub spec: Spec,
    /// Wakes the wait for results on Ctrl-C.
    pub shutdown: &'a Shutdown,
}

impl PairRunner for Measure<'_> {
    type Output = Result<Outcome>;

    fn run<A: Endpoint, B: Endpoint>(self, pair: Pair<A, B>) -> Result<Outcome> {
        let Pair {
            mut ping,
            mut pong,
            guards,
        } = pair;
        let spec = self.spec;
        let (results_r, results_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "results")?;
        let (ack_r, ack_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "ack")?;

        // SAFETY: this process has one thread (the progress line does not tick on its own),
        // so the child is a complete copy; it leaves through `exit_with`, never returning.
        let pong_pid = match unsafe { fork() }.ctx("fork", "pong")? {
            ForkResult::Child => {
                // Ping's end must go: a pipe's reader sees EOF only when every write end is
                // closed, and pong holding ping's would keep it open.
                drop(ping);
                drop((results_r, ack_r));
                let outcome = pin(spec.cpus.1).and_then(|()| pong_main(&mut pong, &spec, ack_w));
                exit_with(outcome.map(|()| String::new()), &results_w)
            }
            ForkResult::Parent { child } => Reaped(child),
        };
        drop(pong);
        ping.set_peer(pong_pid.0);
        // SAFETY: as for pong.
        let ping_pid = match unsafe { fork() }.ctx("fork", "ping")? {
            ForkResult::Child => {
                // Only pong may hold the ack's write end: if pong dies, ping sees EOF.
                drop((results_r, ack_w));
                let outcome = pin(spec.cpus.0).and_then(|()| ping_main(&mut ping, &spec, ack_r));
                exit_with(outcome, &results_w)
            }
            ForkResult::Parent { child } => Reaped(child),
        };
        drop((ping, results_w, ack_r, ack_w));
        let report = collect(results_r.as_fd(), spec.deadline(), self.shutdown)?;
        drop((ping_pid, pong_pid));
        drop(guards);
        Ok(report.outcome())
    }
}

/// A child that is killed (if still running) and reaped when dropped.
pub struct Reaped(pub Pid);

impl Drop for Reaped {
    fn drop(&mut self) {
        // ESRCH cannot happen before waitpid (an exited child is a zombie until reaped).
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// End a child: write its result lines (or `err …`) to the coordinator, and exit without
/// running any destructor of the coordinator's state, such as the guards of named objects.
pub fn exit_with(outcome: Result<String>, results: &OwnedFd) -> ! {
    let (text, code) = match outcome {
        Ok(text) => (text, 0),
        Err(e) => (format!("err {e}\n"), 1),
    };
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match write(results, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    std::process::exit(code)
}

/// Pong: echo round trips forever (the coordinator kills it), or receive until the end
/// marker and acknowledge the byte count.
fn pong_main(end: &mut impl Endpoint, spec: &Spec, ack: OwnedFd) -> Result<()> {
    if spec.test == Test::Latency {
        loop {
            end.wait()?;
            end.post()?;
        }
    }
    let mut buf = PageBuf::new(MAX_MSG, 0);
    let buf = buf.as_mut_slice();
    let mut got: u64 = 0;
    loop {
        let n = end.recv(buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    write(&ack, &got.to_ne_bytes()).ctx("write", "ack")?;
    Ok(())
}

/// Ping: the timed side. Returns its result lines.
fn ping_main(end: &mut impl Endpoint, spec: &Spec, ack: OwnedFd) -> Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    match spec.test {
        Test::Latency => {
            for ns in round_trips(end, spec)? {
                let _ = writeln!(out, "lat {ns}");
            }
        }
        Test::Throughput(size) => {
            let (bytes, ns) = throughput(end, spec, size, &ack)?;
            let _ = writeln!(out, "tput {bytes} {ns}");
        }
        other => {
            return Err(Error::msg(format!(
                "{} is not a two-process test",
                other.name()
            )));
        }
    }
    out.push_str("done\n");
    Ok(out)
}

/// Warm up (caches, page faults, the scheduler's idea of both tasks), then time round trips
/// until the budget is spent.
fn round_trips(end: &mut impl Endpoint, spec: &Spec) -> Result<Vec<u64>> {
    let warm = Instant::now() + spec.warmup;
    while Instant::now() < warm {
        end.post()?;
        end.wait()?;
    }
    let mut samples = Vec::with_capacity(spec.max_samples.min(1 << 20));
    let stop = Instant::now() + spec.budget;
    while samples.len() < spec.max_samples {
        let t0 = Instant::now();
        end.post()?;
        end.wait()?;
        let t1 = Instant::now();
        samples.push(nanos(t1 - t0));
        if t1 >= stop {
            break;
        }
    }
    Ok(samples)
}

/// Send `size`-byte messages until the budget is spent, end the stream, and wait for pong to
/// acknowledge what it received. Returns (bytes, nanoseconds).
fn throughput(
    end: &mut impl Endpoint,
    spec: &Spec,
    size: usize,
    ack: &OwnedFd,
) -> Result<(u64, u64)> {
    // Filled once and never written again: vmsplice lends these very pages to the pipe.
    let mut msg = PageBuf::new(size, 0x5a);
    let msg = msg.as_mut_slice();
    let mut sent: u64 = 0;
    let t0 = Instant::now();
    let stop = t0 + spec.budget;
    loop {
        end.send(msg)?;
        sent += size as u64;
        if Instant::now() >= stop {
            break;
        }
    }
    end.end()?;
    let mut got = [0u8; 8];
    let n = read(ack, &mut got).ctx("read", "ack")?;
    let elapsed = nanos(t0.elapsed());
    if n != got.len() {
        return Err(Error::msg("the receiver died before acknowledging"));
    }
    let got = u64::from_ne_bytes(got);
    if got != sent {
        return Err(Error::msg(format!("received {got} of {sent} bytes")));
    }
    Ok((sent, elapsed))
}

/// A buffer that starts on a page boundary, like the C twin's static buffers: memcpy and the
/// kernel's copies to and from user memory run at different speeds at different alignments
/// (malloc's 16-byte offset splits every other 32-byte vector over two cache lines), and a
/// comparison with C must not measure that.
pub struct PageBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl PageBuf {
    /// The page size this aligns to.
    pub const PAGE: usize = 4096;

    /// `len` bytes, each `fill`, page-aligned.
    pub fn new(len: usize, fill: u8) -> PageBuf {
        let raw = vec![fill; len + Self::PAGE];
        let start = raw.as_ptr().align_offset(Self::PAGE);
        PageBuf { raw, start, len }
    }

    /// The aligned bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// A duration in nanoseconds (saturating: no run lasts 584 years).
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
