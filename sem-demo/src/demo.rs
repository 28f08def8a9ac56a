//! The scenario played by `sem-demo` with no arguments, with real processes:
//!
//! 1. the counter: N `update` processes × M read-modify-write updates of one number in a
//!    file, under a POSIX semaphore, then a SysV one (exactly N×M both times), then with no
//!    lock (the lost updates are counted and shown);
//! 2. the bridge: a counting semaphore with K permits, N `car` processes, the timeline, and
//!    the check that no more than K cars were ever on it (POSIX, then SysV);
//! 3. a holder killed with SIGKILL: `sem-demo run -- sh -c 'echo held; exec sleep 600'` takes
//!    the only permit and is killed. With SysV + SEM_UNDO the next `run` gets the permit as
//!    soon as the killed `run`'s command has died too (of its death signal); with a POSIX
//!    named semaphore it times out (nobody owns a POSIX semaphore, so nothing gives the
//!    permit back), until a `sem-demo post` repairs it;
//! 4. check that nothing is left: no `/dev/shm/sem.*` or `/dev/shm/*` object of this run and
//!    no SysV set at any of the keys it used.
//!
//! Every object is named after one unique tag and removed by a guard, on Ctrl-C too.

use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::child::{Ended, RoleCommand};
use common::cleanup::Shutdown;
use common::{Context, Error, Result, names, say};
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};

use crate::bridge;
use crate::cli::DemoArgs;
use crate::counter;
use crate::creation::Creation;
use crate::procs::DEADLINE;
use crate::sem::{Flavor, Remove, Sem};

/// Run the scenario; the last stdout line is `ok: ...`, `FAILED: ...`, or, after a stop
/// signal, `interrupted by SIGINT before the check was done` (exit 128+N).
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    crate::stale::sweep()?;
    let tag = names::unique("sem-demo");
    let mut sysv_names = Vec::new();
    let outcome = play(args, &tag, &mut sysv_names, &shutdown);
    // Every guard has run by now: look for anything of ours that is left.
    let leftovers = leftovers(&tag, &sysv_names);
    let outcome = match outcome {
        Ok(_) if !leftovers.is_empty() => {
            Ok(format!("FAILED: left behind: {}", leftovers.join(", ")))
        }
        Ok(verdict) => shutdown.err_if_requested().and_then(|()| {
            say!(
                "4. nothing left: no /dev/shm/*{}-{tag}-*, no SysV set at the {} keys used",
                names::PREFIX,
                sysv_names.len()
            )
            .map(|()| verdict)
        }),
        Err(e) => {
            if !leftovers.is_empty() {
                eprintln!("sem-demo: left behind: {}", leftovers.join(", "));
            }
            Err(e)
        }
    };
    common::out::verdict(outcome)
}

fn play(
    args: &DemoArgs,
    tag: &str,
    sysv_names: &mut Vec<String>,
    shutdown: &Shutdown,
) -> Result<String> {
    let (n, m) = (args.procs, args.iters);
    let mut failures = Vec::new();

    // 1. The counter.
    say!("1. counter: {n} processes x {m} read-modify-write updates of one number in a file")?;
    for flavor in [Flavor::Posix, Flavor::Sysv] {
        let name = format!("{tag}-counter-{}", flavor.name().to_lowercase());
        sysv_names.push(name.clone());
        let out = counter::play(&name, n, m, Some(flavor), shutdown)?;
        say!(
            "   {} semaphore: expected {}, got {} {}",
            flavor.name(),
            out.expected,
            out.actual,
            if out.lost() == 0 && out.actual == out.expected {
                "(exact)"
            } else {
                "WRONG"
            }
        )?;
        if out.actual != out.expected {
            failures.push(format!(
                "counter {}: {}/{}",
                flavor.name(),
                out.actual,
                out.expected
            ));
        }
        shutdown.err_if_requested()?;
    }
    let race = counter::play(&format!("{tag}-counter-nolock"), n, m, None, shutdown)?;
    say!(
        "   no lock: expected {}, got {}: {} updates lost (two processes read the same value, \
         both wrote value+1)",
        race.expected,
        race.actual,
        race.lost()
    )?;
    shutdown.err_if_requested()?;

    // 2. The bridge.
    let (cars, lanes) = (args.cars, args.lanes);
    say!(
        "2. bridge: {cars} car processes, {lanes} lane{} (a counting semaphore with {lanes} \
         permit{})",
        plural(lanes.into()),
        plural(lanes.into())
    )?;
    for (flavor, timeline) in [(Flavor::Posix, true), (Flavor::Sysv, false)] {
        let name = format!("{tag}-bridge-{}", flavor.name().to_lowercase());
        sysv_names.push(name.clone());
        let out = bridge::play(&name, cars, lanes, 5, flavor, timeline, shutdown)?;
        say!("   {}", out.verdict)?;
        if !out.ok {
            failures.push(format!("bridge {}: {}", flavor.name(), out.verdict));
        }
        shutdown.err_if_requested()?;
    }

    // 3. A holder killed with SIGKILL.
    say!("3. a `sem-demo run` holding the only permit is killed with SIGKILL")?;
    let name = format!("{tag}-held-sysv");
    sysv_names.push(name.clone());
    killed_holder(&name, Flavor::Sysv, &mut failures, shutdown)?;
    shutdown.err_if_requested()?;
    killed_holder(
        &format!("{tag}-held-posix"),
        Flavor::Posix,
        &mut failures,
        shutdown,
    )?;

    if !failures.is_empty() {
        return Ok(format!("FAILED: {}", failures.join("; ")));
    }
    Ok(format!(
        "ok: counter {}/{} with a POSIX and a SysV lock, {} lost without; bridge never above \
         {lanes}/{lanes} lanes over {cars} cars (POSIX, SysV); SIGKILLed holder: SysV proceeded \
         at once, POSIX timed out until repaired; nothing left",
        race.expected,
        race.expected,
        race.lost()
    ))
}

/// Step 3 for one flavor. Pushes what went wrong onto `failures`.
fn killed_holder(
    name: &str,
    flavor: Flavor,
    failures: &mut Vec<String>,
    shutdown: &Shutdown,
) -> Result<()> {
    let (sem, _) = Sem::open(flavor, name, Creation::IfAbsent { value: 1, limit: 1 })?;
    let _guard = Remove(&sem);
    let mut holder = RoleCommand::new("holder", DEADLINE)?;
    holder.args(["run", "--name", name]);
    if flavor == Flavor::Posix {
        holder.arg("--posix");
    }
    // Tied to us (SIGTERM if we are killed with -9 meanwhile): the holder, and through its
    // own death signal its command, go too, instead of holding the permit for the ten minutes
    // it sleeps.
    let holder = holder
        .args(["--", "sh", "-c", "echo held; exec sleep 600"])
        .spawn()?;
    let mut lines = holder
        .stdout_lines()
        .ok_or_else(|| Error::msg("holder: no stdout pipe"))?;
    lines.wait_for_or_stop(|l| l == "held", DEADLINE, shutdown)?;
    let held = sem.value()?;
    // Only `run` itself, not its group: the command dies of PR_SET_PDEATHSIG. It shares the
    // permit (SysV), which comes back once it has died too: at the end of its output.
    kill(holder.pid(), Signal::SIGKILL).ctx("kill", holder.pid())?;
    let status = holder.wait_timeout(DEADLINE)?;
    lines.rest(DEADLINE)?;
    let value = sem.value()?;
    say!(
        "   {}: holder pid {} took the permit (value {held}), killed -> {}; value now {value}",
        flavor.name(),
        holder.pid(),
        Ended::from(status)
    )?;
    if held != 0 {
        failures.push(format!("{}: value {held} while held", flavor.name()));
    }

    let next = |timeout: &str| -> Result<(ExitStatus, String, Duration)> {
        let mut next = RoleCommand::new("next run", DEADLINE)?;
        next.args(["run", "--name", name, "--timeout", timeout]);
        if flavor == Flavor::Posix {
            next.arg("--posix");
        }
        let start = Instant::now();
        let next = next
            .args(["--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stderr = next
            .stderr_lines()
            .ok_or_else(|| Error::msg("next run: no stderr pipe"))?;
        let status = next.wait_or_stop(DEADLINE, shutdown)?;
        let took = start.elapsed();
        // Its narration (with -v) goes on to our stderr; its own message is kept to show.
        let (trace, said): (Vec<String>, Vec<String>) = stderr
            .rest(DEADLINE)?
            .into_iter()
            .partition(|l| l.starts_with("[pid "));
        for line in trace {
            eprintln!("{line}");
        }
        Ok((status, said.join(" "), took))
    };
    match flavor {
        Flavor::Sysv => {
            let (status, said, took) = next("10")?;
            say!(
                "   SysV: the next run -> {} after {:.1} ms: SEM_UNDO, the kernel gave the \
                 permit back once the holder and its command were dead",
                Ended::from(status),
                took.as_secs_f64() * 1000.0
            )?;
            if !status.success() || value != 1 {
                failures.push(format!(
                    "SysV: the next run {}, value {value}: {said}",
                    Ended::from(status)
                ));
            }
        }
        Flavor::Posix => {
            let (status, said, _) = next("0.5")?;
            say!("   POSIX: the next run -> {}: {said}", Ended::from(status))?;
            say!(
                "          a POSIX semaphore has no owner: nothing knew the dead holder had a \
                 permit"
            )?;
            let timed_out = status.code() == Some(1) && said.contains("timed out after 0.5 s");
            sem.post(false)?;
            let (after, _, took) = next("10")?;
            say!(
                "   POSIX: repaired with `sem-demo post {name}`; the next run -> {} after {:.1} ms",
                Ended::from(after),
                took.as_secs_f64() * 1000.0
            )?;
            if !timed_out || value != 0 || !after.success() {
                failures.push(format!(
                    "POSIX: expected a timeout, then success after the post; got value {value}, \
                     {said}, then {}",
                    Ended::from(after)
                ));
            }
        }
    }
    Ok(())
}

/// Names of this run's objects still in /dev/shm, and SysV keys still in use.
fn leftovers(tag: &str, sysv_names: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let needle = format!("{}-{tag}", names::PREFIX);
    if let Ok(dir) = std::fs::read_dir("/dev/shm") {
        for entry in dir.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.contains(&needle) {
                left.push(format!("/dev/shm/{file}"));
            }
        }
    }
    for name in sysv_names {
        let key = common::sysv_key::key_for(name);
        // SAFETY: semget takes plain integers and touches no memory of ours.
        let id = unsafe { libc::semget(key, 0, 0) };
        if id >= 0 || Errno::last() != Errno::ENOENT {
            left.push(format!("SysV set {key:#010x} ({name})"));
        }
    }
    left
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
