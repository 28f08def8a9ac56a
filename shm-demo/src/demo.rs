//! The scenario played by `shm-demo` with no arguments, with real processes:
//!
//! 1. start `shm-demo server` on a unique name and wait for its readiness line
//!    (`ready: pid N shm NAME`, see `common::lifecycle`);
//! 2. start N `shm-demo writer` processes (rounds of self-checking values to their own keys)
//!    and M `shm-demo reader` processes (random gets, every value's checksum checked), all at
//!    once, for `--duration-ms`;
//! 3. meanwhile, a `shm-demo put` stops itself (SIGSTOP, the test hook [`db::STOP_HOOK`] set
//!    in its environment) half-way through a write, holding the writers' mutex, and is killed
//!    with SIGKILL there;
//! 4. the next writer to lock gets EOWNERDEAD, restores the half-written record from the undo
//!    image, and marks the mutex consistent (it says so on stderr);
//! 5. a `shm-demo watch` process sleeping on the futex wakes when we put its key;
//! 6. when the workers are done: every key holds exactly what its writer last committed, the
//!    killed writer's key its value from before, no reader saw a bad checksum;
//! 7. stats, SIGTERM to the server, and nothing left in /dev/shm (or `ipcs -m`).

use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use common::child::{Ended, Lines, RoleCommand, STOP_CHECK, Supervised};
use common::cleanup::{Shutdown, spawn_helper};
use common::out::escape;
use common::{Context, Error, Result, names, say};
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};

use crate::cli::{DbArgs, DemoArgs};
use crate::db::{self, Db};
use crate::segment;
use crate::stats;
use crate::workload::{key_for, value_for};

/// How long any child may run, and how long we wait for any one step.
const DEADLINE: Duration = Duration::from_secs(300);
/// Keys per writer.
const KEYS: u32 = 32;
/// The key the killed writer was writing, and the value it had before.
const VICTIM: &str = "victim";
const VICTIM_OLD: &[u8] = b"committed before the crash";

/// Run the scenario and print its steps; the last stdout line is `ok: ...` or `FAILED: ...`,
/// or, after a stop signal, `interrupted by SIGINT before the check was done` (exit 128+N).
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // Ctrl-C, SIGTERM or SIGHUP (a closed terminal) ends the scenario at the step or wait it
    // is in: the error unwinds `play`, whose children's handles stop them as they drop (the
    // server removes the segment), and only then does `verdict` say so.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    let db_args = DbArgs {
        name: names::posix_name(&names::unique("demo")),
        sysv: args.sysv,
    };
    common::out::verdict(play(args, &db_args, &shutdown))
}

/// Spawn `shm-demo ARGS --name NAME [--sysv]` in a process group of its own (a Ctrl-C at the
/// terminal reaches only us; we stop the children as their handles drop).
///
/// If we die without unwinding (kill -9, or a second Ctrl-C that exits at once), the handles
/// never drop: the kernel then sends each child `on_our_death` instead (PR_SET_PDEATHSIG):
/// SIGTERM, on which the server removes the segment and the workers end, or SIGKILL for the
/// writer stopped in its critical section, which a SIGTERM would leave stopped (and holding
/// the mutex) for ever. Spawned from the main thread, which lives as long as we do (see
/// `RoleCommand`).
fn spawn(label: &str, args: &[&str], db: &DbArgs, on_our_death: Signal) -> Result<Supervised> {
    spawn_with(label, args, db, on_our_death, &[])
}

/// [`spawn`], with these environment variables set for the role.
fn spawn_with(
    label: &str,
    args: &[&str],
    db: &DbArgs,
    on_our_death: Signal,
    env: &[(&str, &str)],
) -> Result<Supervised> {
    let mut role = RoleCommand::new(label, DEADLINE)?;
    role.args(args).arg("--name").arg(&db.name);
    for (key, value) in env {
        role.env(key, value);
    }
    if db.sysv {
        role.arg("--sysv");
    }
    role.stderr(Stdio::piped())
        .on_supervisor_death(Some(on_our_death))
        .spawn()
}

/// Pass a child's stderr on to ours, and report every line that announces a mutex recovery.
fn forward_stderr(child: &Supervised, recovered: &mpsc::Sender<String>) {
    let Some(mut lines) = child.stderr_lines() else {
        return;
    };
    let tag = format!("{} (pid {})", child.label(), child.pid());
    let recovered = recovered.clone();
    spawn_helper(move || {
        while let Ok(Some(line)) = lines.next_line(DEADLINE) {
            let _ = writeln!(std::io::stderr(), "{line}");
            if line.contains("recovered the writers' mutex") {
                let _ = recovered.send(tag.clone());
            }
        }
    });
}

/// The `done: ...` line of a worker, as numbers by name.
///
/// The workers run for `--duration-ms`, which may be minutes: a Ctrl-C or SIGTERM ends the
/// wait at once (the handles then stop the children), rather than when the workers are done.
fn done_line(
    child: &Supervised,
    mut out: Lines,
    shutdown: &Shutdown,
) -> Result<Vec<(String, u64)>> {
    let line = out
        .wait_for_or_stop(|l| l.starts_with("done:"), DEADLINE, shutdown)
        .map_err(|e| match e {
            Error::Interrupted(_) => e,
            e => Error::msg(format!(
                "{} (pid {}) gave no done: line: {e}",
                child.label(),
                child.pid()
            )),
        })?;
    let status = child.wait_or_stop(DEADLINE, shutdown)?;
    if !status.success() {
        return Err(Error::msg(format!(
            "{} (pid {}) {}",
            child.label(),
            child.pid(),
            Ended::from(status)
        )));
    }
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    // "done: rounds 12 puts 384" -> [("rounds", 12), ("puts", 384)]; multi-word names
    // ("checksum failures 0") keep their last word.
    let mut pairs = Vec::new();
    for w in words.windows(2) {
        if let Ok(n) = w[1].parse::<u64>() {
            pairs.push((w[0].to_owned(), n));
        }
    }
    Ok(pairs)
}

fn field(pairs: &[(String, u64)], name: &str) -> u64 {
    pairs.iter().find(|(k, _)| k == name).map_or(0, |(_, v)| *v)
}

fn play(args: &DemoArgs, db_args: &DbArgs, shutdown: &Shutdown) -> Result<String> {
    let (recovered_tx, recovered_rx) = mpsc::channel();
    let target = db_args.target()?;
    let label = target.label();

    // 1. The server.
    let server = spawn(
        "server",
        &["server", "--slots", "1024"],
        db_args,
        Signal::SIGTERM,
    )?;
    forward_stderr(&server, &recovered_tx);
    let mut server_out = server
        .stdout_lines()
        .ok_or_else(|| Error::msg("server: no stdout pipe"))?;
    match server_out.wait_for_or_stop(|l| l.starts_with("ready: "), DEADLINE, shutdown) {
        Ok(_) => {}
        Err(e @ Error::Interrupted(_)) => return Err(e),
        Err(e) => {
            let status = server
                .wait_timeout(Duration::from_secs(5))
                .map(|s| Ended::from(s).to_string());
            return Err(Error::msg(format!(
                "the server did not start ({}): {e}",
                status.unwrap_or_else(|e| e.to_string())
            )));
        }
    }
    say!("1. server (pid {}) created {label}", server.pid())?;
    // We are a client too: the demo maps the segment for its own puts and the final check.
    let db = Db::open(&target)?;
    db.lock()?.put(VICTIM.as_bytes(), VICTIM_OLD)?;

    // 2. Writers and readers, all at once.
    let ms = args.duration_ms.to_string();
    let keys = KEYS.to_string();
    let nw = args.writers.to_string();
    // A worker: its stderr passed on (watching for the recovery line), its stdout kept for
    // its closing `done:` line.
    let worker = |label: String, role: &[&str]| -> Result<(Supervised, Lines)> {
        let mut argv = role.to_vec();
        argv.extend(["--keys", &keys, "--duration-ms", &ms]);
        let child = spawn(&label, &argv, db_args, Signal::SIGTERM)?;
        forward_stderr(&child, &recovered_tx);
        let out = child
            .stdout_lines()
            .ok_or_else(|| Error::msg("no stdout pipe"))?;
        Ok((child, out))
    };
    let writers = (0..args.writers)
        .map(|i| worker(format!("writer {i}"), &["writer", "--id", &i.to_string()]))
        .collect::<Result<Vec<_>>>()?;
    let readers = (0..args.readers)
        .map(|i| worker(format!("reader {i}"), &["reader", "--writers", &nw]))
        .collect::<Result<Vec<_>>>()?;
    say!(
        "2. {} writers and {} readers map {label} and work in it for {} ms; no lock for readers",
        args.writers,
        args.readers,
        args.duration_ms
    )?;

    // 3. A writer stopped inside the critical section, then killed there.
    let victim = spawn_with(
        "put (killed)",
        &["put", VICTIM, "this write never commits"],
        db_args,
        Signal::SIGKILL,
        &[(db::STOP_HOOK, "1")],
    )?;
    forward_stderr(&victim, &recovered_tx);
    // waitid(WSTOPPED|WNOWAIT) returns once it has stopped itself, leaving its status for
    // its handle to reap later.
    let flags = WaitPidFlag::WSTOPPED | WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(victim.pid()), flags).ctx("waitid", victim.pid())? {
        WaitStatus::Stopped(..) | WaitStatus::PtraceEvent(..) => {}
        other => {
            return Err(Error::msg(format!(
                "the writer to kill did not stop in its critical section: {other:?}"
            )));
        }
    }
    victim.signal(Signal::SIGKILL)?;
    victim.wait_or_stop(DEADLINE, shutdown)?;
    say!(
        "3. writer pid {} stopped half-way through a put of {VICTIM:?}, holding the mutex: kill -9",
        victim.pid()
    )?;
    shutdown.err_if_requested()?;

    // 4. The next writer recovers; we wait for its line (a writer locks within microseconds,
    //    unless the writers are already done: then our own put below is the next one).
    let give_up = Instant::now() + Duration::from_secs(10);
    let recovered_by = loop {
        shutdown.err_if_requested()?;
        match recovered_rx.recv_timeout(STOP_CHECK) {
            Ok(who) => break who,
            Err(RecvTimeoutError::Timeout) if Instant::now() < give_up => {}
            Err(_) => {
                db.lock()?.put(b"after-the-crash", b"1")?;
                break "the demo itself".to_owned();
            }
        }
    };
    say!("4. {recovered_by} got EOWNERDEAD, restored the record and made the mutex consistent")?;

    // 5. Watch: a process asleep on the futex, woken by our put.
    let watch = spawn(
        "watch",
        &["watch", "greeting", "--count", "1"],
        db_args,
        Signal::SIGTERM,
    )?;
    let mut watch_err = watch
        .stderr_lines()
        .ok_or_else(|| Error::msg("watch: no stderr pipe"))?;
    let mut watch_out = watch
        .stdout_lines()
        .ok_or_else(|| Error::msg("watch: no stdout pipe"))?;
    watch_err.wait_for_or_stop(|l| l.contains("watching"), DEADLINE, shutdown)?;
    spawn_helper(move || {
        for line in watch_err.seen() {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
        while let Ok(Some(line)) = watch_err.next_line(DEADLINE) {
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    });
    let greeting = format!("hello from pid {}", std::process::id());
    db.lock()?.put(b"greeting", greeting.as_bytes())?;
    let woke = watch_out.wait_for_or_stop(|_| true, DEADLINE, shutdown)?;
    let status = watch.wait_or_stop(DEADLINE, shutdown)?;
    say!(
        "5. watch (pid {}) slept on the futex and woke with {woke:?} ({})",
        watch.pid(),
        Ended::from(status)
    )?;

    // 6. The workers' results, then the table against what they committed.
    let mut rounds = Vec::new();
    let mut puts = 0;
    for (w, out) in writers {
        let pairs = done_line(&w, out, shutdown)?;
        rounds.push(field(&pairs, "rounds"));
        puts += field(&pairs, "puts");
    }
    let (mut gets, mut failures) = (0, 0);
    for (r, out) in readers {
        let pairs = done_line(&r, out, shutdown)?;
        gets += field(&pairs, "gets");
        failures += field(&pairs, "failures");
    }
    say!(
        "6. writers committed {puts} puts, readers made {gets} gets, {failures} checksum failures"
    )?;
    let mut wrong = Vec::new();
    let mut value = Vec::new();
    let mut checked = 0;
    for (i, &r) in rounds.iter().enumerate() {
        for j in 0..KEYS {
            let key = key_for(i as u32, j);
            checked += 1;
            let found = db.get(key.as_bytes(), &mut value)?;
            if !found || value != value_for(i as u32, j, r) {
                wrong.push(key);
            }
        }
    }
    let victim_ok = db.get(VICTIM.as_bytes(), &mut value)? && value == VICTIM_OLD;
    let greeting_ok = woke == escape(greeting.as_bytes());

    // 7. Stats, then stop the server and look for leftovers.
    let stats = stats::line(&db, &target);
    say!("7. stats: {stats}")?;
    drop(db);
    server.signal(Signal::SIGTERM)?;
    let status = server.wait_or_stop(DEADLINE, shutdown)?;
    let left = segment::exists(&target)?;
    let place = if args.sysv { "ipcs -m" } else { "/dev/shm" };
    let mut failed = Vec::new();
    if failures > 0 {
        failed.push(format!("{failures} checksum failures"));
    }
    if !wrong.is_empty() {
        failed.push(format!(
            "{} keys differ from what was committed: {}",
            wrong.len(),
            wrong.join(" ")
        ));
    }
    if !victim_ok {
        failed.push(format!(
            "{VICTIM} holds {:?}, not its committed value",
            escape(&value)
        ));
    }
    if !greeting_ok {
        failed.push(format!("watch printed {woke:?}, expected {greeting:?}"));
    }
    if !status.success() {
        failed.push(format!("server {}", Ended::from(status)));
    }
    if left {
        failed.push(format!("{label} left in {place}"));
    }
    // A verdict only for a run that was not cut short.
    shutdown.err_if_requested()?;
    Ok(if failed.is_empty() {
        format!(
            "ok: {} writers committed {puts} puts, {} readers made {gets} gets with 0 checksum \
             failures; a writer killed holding the mutex was recovered, its record kept its \
             committed value; watch woke; {checked}/{checked} keys as committed; nothing left \
             in {place}",
            args.writers, args.readers
        )
    } else {
        format!("FAILED: {}", failed.join("; "))
    })
}
