//! The default run (`demo`): the whole scenario against a daemon child, each step checked.
//!
//! What it shows: a daemon steered by signals alone, and the two ways signals are counted by
//! the kernel (standard ones coalesce, realtime ones queue). The steps and their calls:
//!
//! ```text
//! 1. open(cfg, O_CREAT|O_EXCL, 0600); write          the config, owner-only
//! 2. fork + execve(signal-demo daemon), stdout on a pipe; wait for its first ticks
//! 3. rename(cfg.new, cfg); kill(daemon, SIGHUP)      reload, atomically replaced
//! 4. rename(bad cfg); kill(SIGHUP)                   refused; the old config kept
//! 5. kill(SIGSTOP); waitid(WSTOPPED|WNOWAIT)         the daemon stopped: it reads nothing
//!    kill(SIGUSR2) x100; kill(SIGCONT); kill(SIGUSR1)  100 sent, exactly 1 arrives
//! 6. kill(SIGSTOP); sigqueue(SIGRTMIN, 1..=100); kill(SIGCONT)   all 100 queued, in order
//! 7. kill(SIGTERM); waitpid                          graceful stop: exit 0, pid file gone
//! ```
//!
//! The demo process sends every signal itself, with real kill(2) and sigqueue(3) calls, and
//! learns what the daemon did only from its stdout, read through a pipe. It never sleeps to
//! synchronise: each step waits for the line that proves it, with a deadline.
//!
//! # Pitfalls
//!
//! - **A recycled pid.** Signalling a pid read from somewhere can hit an unrelated process
//!   that got the number after the daemon died. The daemon is our unreaped child here: its pid
//!   cannot be reused until we `waitpid` it.
//! - **A Ctrl-C meant for the demo** would reach the daemon too if it shared our process
//!   group, and the demo's own SIGTERM would then be its second stop signal (exit without
//!   finishing the tick). The daemon runs in a group of its own.
//! - **How many SIGUSR2 of a burst arrive depends on scheduling** when the receiver runs: it may
//!   read some before the rest are sent (any count from 1 to 100). The demo stops the daemon
//!   while it sends, so that every signal of the burst is pending at once and the count shows
//!   the kernel's rule, not the scheduler's luck: exactly 1.

use std::process::ExitCode;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::cli::DemoArgs;
use crate::config;
use crate::signals::{self, Sig};
use common::child::{Ended, Lines, RoleCommand};
use common::cleanup::{Shutdown, Unlink};
use common::say;
use common::{Error, Result};

/// How long one step may take before the demo calls it failed. Generous: CI machines are busy.
const STEP: Duration = Duration::from_secs(30);
/// The daemon child is killed if it is still running after this long.
const DEADLINE: Duration = Duration::from_secs(120);
/// Signals per burst.
const BURST: u32 = 100;

const MSG1: &str = "hello from generation 1";
const MSG2: &str = "hello from generation 2";

/// Play the scenario; print `ok: ...` or `FAILED: ...` as the last line, or, for a run
/// stopped by a signal, `interrupted by SIG... before the check was done` (status 128 + its
/// number; see `common::error`, "Exit status").
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let interval_ms = args.interval_ms;
    // Ctrl-C or SIGTERM ends the demo through its guards (config file removed, daemon
    // stopped) instead of killing it on the spot.
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    // The scenario returns once its guards have run: the verdict comes after the cleanup.
    let outcome = scenario(&shutdown, interval_ms);
    common::out::verdict(outcome.map(|summary| format!("ok: {summary}")))
}

fn scenario(shutdown: &Shutdown, interval_ms: u64) -> Result<String> {
    // The reload in step 3 halves the interval, so the reload line shows a change.
    let (first, second) = (interval_ms, interval_ms / 2);
    let dir = common::names::runtime_dir()?;
    let tag = common::names::unique("signal-demo");
    let cfg = dir.join(format!("{tag}.toml"));
    let pid_file = dir.join(format!("{tag}.pid"));

    // Step 1: the config file, created exclusively (never over someone else's file), owner-only.
    let good1 = format!("message = \"{MSG1}\"\ninterval_ms = {first}\n");
    let _cfg_guard = config::create_file(&cfg, &good1)?;
    // If the daemon were killed before it could remove its pid file, this removes the leftover.
    let _pid_guard = Unlink::path(&pid_file);
    say!(
        "1. wrote {} (interval_ms {first}, message {MSG1:?})",
        cfg.display()
    )?;

    // Step 2: start the daemon and wait for its first ticks. A role child
    // (common::child::RoleCommand): in a group of its own, so a Ctrl-C at the terminal
    // reaches only the demo, which then stops the daemon with one SIGTERM (a daemon that got
    // the Ctrl-C too would take that SIGTERM as a second signal and exit without finishing
    // its tick); and tied to us, so that if the demo dies without unwinding (SIGKILL, a
    // second Ctrl-C) the daemon gets SIGTERM and stops gracefully instead of ticking on.
    let daemon = RoleCommand::new("daemon", DEADLINE)?
        .arg("daemon")
        .arg("--config")
        .arg(&cfg)
        .arg("--pid-file")
        .arg(&pid_file)
        .spawn()?;
    let lines = daemon
        .stdout_lines()
        .ok_or_else(|| Error::msg("daemon stdout was not piped"))?;
    let mut w = Watch { lines, shutdown };
    w.wait("daemon ready", |l| l.starts_with("ready: pid "))?;
    let held_by = common::pidfile::read(&pid_file)?;
    if held_by != daemon.pid() {
        return Err(Error::Check(format!(
            "pid file names pid {held_by}, the daemon is {}",
            daemon.pid()
        )));
    }
    let t2 = w.wait("tick 2", |l| l.starts_with("tick 2: "))?;
    say!(
        "2. daemon pid {} runs, pid file {} locked; saw \"{t2}\"",
        daemon.pid(),
        pid_file.display()
    )?;

    // Step 3: edit the config (atomically: write a new file, rename it over the old one, so a
    // SIGHUP can never read half a file) and send SIGHUP.
    let good2 = format!("message = \"{MSG2}\"\ninterval_ms = {second}\n");
    config::replace_file(&cfg, &good2)?;
    signals::kill(daemon.pid(), Sig::std(Signal::SIGHUP))?;
    let reload = w.wait("reloaded config", |l| l.starts_with("reloaded config"))?;
    let want = format!("reloaded config (generation 2): interval_ms {first} -> {second}");
    if !reload.starts_with(&want) {
        return Err(Error::Check(format!(
            "expected \"{want}...\", got \"{reload}\""
        )));
    }
    let tick = w.wait("a tick with the new message", |l| {
        l.starts_with("tick ") && l.ends_with(MSG2)
    })?;
    say!("3. edited the config, sent SIGHUP: \"{reload}\"; then \"{tick}\"")?;

    // Step 4: an invalid config (a misspelt key on line 3) and SIGHUP: the daemon must refuse
    // it and keep ticking with generation 2.
    config::replace_file(
        &cfg,
        &format!("message = \"broken\"\ninterval_ms = {second}\ncolour = \"red\"\n"),
    )?;
    signals::kill(daemon.pid(), Sig::std(Signal::SIGHUP))?;
    let failed = w.wait("reload failed", |l| l.starts_with("reload failed"))?;
    let want = ":3: unknown key 'colour'; keeping generation 2";
    if !failed.ends_with(want) {
        return Err(Error::Check(format!(
            "expected \"...{want}\", got \"{failed}\""
        )));
    }
    let tick = w.wait("a tick after the failed reload", |l| l.starts_with("tick "))?;
    if !tick.ends_with(MSG2) {
        return Err(Error::Check(format!(
            "after a failed reload the tick should keep {MSG2:?}: \"{tick}\""
        )));
    }
    say!("4. wrote an invalid config, sent SIGHUP: \"{failed}\"; ticks go on: \"{tick}\"")?;

    // Step 5: a burst of standard signals, sent while the daemon is stopped, so that it cannot
    // read one of them before the last is sent. Each kill() only sets SIGUSR2 pending; while it
    // is pending, further ones are merged into it: 100 sent, exactly 1 arrives.
    let stopped = Stopped::new(daemon.pid())?;
    for _ in 0..BURST {
        signals::kill(daemon.pid(), Sig::std(Signal::SIGUSR2))?;
    }
    drop(stopped);
    signals::kill(daemon.pid(), Sig::std(Signal::SIGUSR1))?;
    let status = w.wait("status", |l| l.starts_with("status: "))?;
    let usr2 = count_in(&status, "USR2")?;
    if usr2 != 1 {
        return Err(Error::Check(format!(
            "{usr2} SIGUSR2 counted; 100 sent to a stopped process coalesce into 1"
        )));
    }
    say!(
        "5. stopped the daemon (SIGSTOP), sent {BURST} SIGUSR2, continued it (SIGCONT), \
         then SIGUSR1; {usr2}/{BURST} arrived (standard signals coalesce while pending)"
    )?;

    // Step 6: a burst of realtime signals with values 1..=100, sent while the daemon is
    // stopped too: each sigqueue() queues one, and all 100 wait, in order, with their values.
    let rt = Sig::rtmin();
    let stopped = Stopped::new(daemon.pid())?;
    for value in 1..=BURST {
        signals::sigqueue(daemon.pid(), rt, value as i32)?;
    }
    drop(stopped);
    signals::kill(daemon.pid(), Sig::std(Signal::SIGUSR1))?;
    let mut values = Vec::new();
    let status = w.wait("status after the realtime burst", |l| {
        l.starts_with("status: ")
    })?;
    for l in w.lines.seen() {
        if let Some(v) = l.strip_prefix("rt signal value=") {
            values.push(v.parse::<u32>().unwrap_or(0));
        }
    }
    let expected: Vec<u32> = (1..=BURST).collect();
    if values != expected {
        return Err(Error::Check(format!(
            "realtime values arrived as {values:?}; expected 1..={BURST} in order"
        )));
    }
    let rtmin = count_in(&status, "RTMIN")?;
    say!(
        "6. stopped the daemon, sent {BURST} SIGRTMIN (={}) with sigqueue, values \
         1..={BURST}, continued it, then SIGUSR1; {rtmin}/{BURST} arrived, in order (realtime \
         signals queue)",
        rt.raw()
    )?;
    say!("   {status}")?;

    // Step 7: SIGTERM: "shutting down", exit 0, pid file gone.
    signals::kill(daemon.pid(), Sig::std(Signal::SIGTERM))?;
    w.wait("shutting down", |l| l == "shutting down")?;
    let exit = daemon.wait_or_stop(STEP, shutdown)?;
    if exit.code() != Some(0) {
        return Err(Error::Check(format!(
            "daemon ended with {}, expected exit 0",
            Ended::from(exit)
        )));
    }
    if pid_file.exists() {
        return Err(Error::Check(format!(
            "the daemon left its pid file {} behind",
            pid_file.display()
        )));
    }
    say!("7. sent SIGTERM: \"shutting down\", exit 0, pid file removed")?;
    // A verdict only for a run that was not interrupted, up to this very line.
    shutdown.err_if_requested()?;

    Ok(format!(
        "reload applied (generation 2), bad config refused at line 3 with ticks kept, \
         SIGUSR2 {usr2}/{BURST} arrived (coalesced), SIGRTMIN {rtmin}/{BURST} in order, \
         graceful exit 0, pid file removed"
    ))
}

/// The daemon's output, waited on line by line, giving up on Ctrl-C or after [`STEP`].
/// The daemon stopped with SIGSTOP until dropped (SIGCONT). A stopped process runs no code, so
/// it reads no signal: every signal of a burst sent now is pending at once, and what arrives
/// shows how the kernel keeps pending signals, whatever the scheduler would have done.
struct Stopped {
    pid: Pid,
}

impl Stopped {
    /// Stop `pid` (our child) and return once it *is* stopped: kill(2) returns before the
    /// target stops, waitid(WSTOPPED) once it has. WNOWAIT leaves the state unconsumed, and
    /// the supervisor's own waits never ask for stops.
    fn new(pid: Pid) -> Result<Self> {
        signals::kill(pid, Sig::std(Signal::SIGSTOP))?;
        // From here on, a drop continues it, on every way out (an error, Ctrl-C).
        let stopped = Stopped { pid };
        let flags = WaitPidFlag::WSTOPPED | WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        loop {
            match waitid(Id::Pid(pid), flags) {
                Ok(WaitStatus::Stopped(..)) => break,
                Ok(other) => {
                    return Err(Error::Check(format!("daemon did not stop: {other:?}")));
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("waitid", pid, e)),
            }
        }
        common::trace!("waitid({pid}, WSTOPPED|WNOWAIT) -> stopped");
        Ok(stopped)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = signals::kill(self.pid, Sig::std(Signal::SIGCONT));
    }
}

struct Watch<'a> {
    lines: Lines,
    shutdown: &'a Shutdown,
}

impl Watch<'_> {
    /// The next line that satisfies `want`, waited for at most [`STEP`]; the error that says
    /// what did not come, or `Error::Interrupted` at once on Ctrl-C.
    fn wait(&mut self, what: &str, want: impl Fn(&str) -> bool) -> Result<String> {
        match self.lines.wait_for_or_stop(want, STEP, self.shutdown) {
            Err(e @ Error::Interrupted(_)) => Err(e),
            Err(e) => {
                // "no output line within 30s" or "output ended without the expected line".
                let why = e.to_string();
                let why = why.split(';').next().unwrap_or_default();
                Err(Error::Check(format!(
                    "no \"{what}\" line from the daemon ({why}); last lines: {:?}",
                    tail(self.lines.seen())
                )))
            }
            ok => ok,
        }
    }
}

fn tail(lines: &[String]) -> &[String] {
    &lines[lines.len().saturating_sub(5)..]
}

/// `... USR2=37 ...` -> 37.
fn count_in(status: &str, key: &str) -> Result<u64> {
    status
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .ok_or_else(|| Error::Check(format!("no {key}= in the status line \"{status}\"")))
}
