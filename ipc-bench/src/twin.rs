//! The C twin: `c/twin.c`, compiled by `build.rs` with the system C compiler, run once per
//! measurement with the same parameters as the Rust side. It forks its own ping and pong
//! and prints the same result lines (see [`crate::harness`]).
//!
//! It runs in a process group of its own, so that a Ctrl-C on the terminal reaches only us:
//! we kill the whole group (the twin and its two children) and remove its objects, whatever
//! state it is in.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cleanup::Shutdown;
use common::{Context, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::harness::{self, Spec, Test};
use crate::mech::{Mech, Names};
use crate::results;
use crate::results::Outcome;

/// How long a twin that printed `done` may take to reap its children and exit.
const TWIN_EXIT: Duration = Duration::from_secs(10);

/// Where build.rs put the C twin.
pub const PATH: &str = env!("IPC_BENCH_C_TWIN");

/// Run the C twin for `mech` (None: the floor) under `spec`.
pub fn measure(
    mech: Option<Mech>,
    spec: &Spec,
    names: &Names,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    if !Path::new(PATH).exists() {
        return Ok(Outcome::Refused(format!(
            "C twin {PATH} is missing; rebuild ipc-bench"
        )));
    }
    let test = match spec.test {
        Test::Latency => "lat",
        Test::Throughput(_) => "tput",
        Test::Syscall => "syscall",
        Test::Memcpy(_) => "memcpy",
    };
    let mut cmd = Command::new(PATH);
    cmd.args([
        mech.map_or("floor", Mech::name),
        test,
        &spec.test.size().to_string(),
        &spec.cpus.0.to_string(),
        &spec.cpus.1.to_string(),
        &harness::nanos(spec.budget).to_string(),
        &harness::nanos(spec.warmup).to_string(),
        &spec.max_samples.to_string(),
        &names.a,
        &names.b,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .process_group(0);
    let mut child = cmd.spawn().ctx("spawn", PATH)?;
    let group = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits in pid_t"));
    let stdout = child.stdout.take().expect("stdout was piped");
    let fd = std::os::fd::AsFd::as_fd(&stdout);
    let report = results::collect(fd, spec.deadline(), shutdown);
    // A twin that is done reaps its own ping and pong and removes what it made: wait for
    // that (its stdout reaches EOF when all three are gone). One that failed may have a
    // child stuck waiting for a dead peer, and one that hung or was interrupted will not
    // finish: kill the whole group, which leaves the orphans to init to reap.
    let finished = match &report {
        Ok(r) if r.is_done() => results::wait_eof(fd, TWIN_EXIT, shutdown)?,
        _ => false,
    };
    if !finished {
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = child.wait();
    let report = report?;
    // The report's SysV guards remove what a killed twin could not (IPC_RMID) on drop.
    Ok(report.outcome())
}
