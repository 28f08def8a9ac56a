//! `socket-demo demo` (what `socket-demo` alone runs): the whole scenario, played with real
//! child processes and checked.
//!
//! 1. Start the server (this binary, `server --unix <unique path> --tcp 127.0.0.1:0`) and wait
//!    for its `ready:` line (`ready: pid N socket PATH tcp ADDR`).
//! 2. Start 8 worker processes (see [`crate::worker`]). Each, for 250 rounds, pipelines
//!    SET/GET of a private key, INCR of a private counter and INCR of one shared counter, and
//!    checks every reply.
//! 3. Check the shared counter equals 8 x 250, reading it with a `client` process over the
//!    Unix socket and with another over TCP (the same store behind both).
//! 4. A datagram round trip: a `dgram-server` process and two `dgram-client` processes, whose
//!    bound sockets must be gone when they exit; then SIGTERM to the `dgram-server`.
//! 5. fd passing: `pass-fd` (which starts its own receiver process).
//! 6. SIGTERM to the stream server.
//!
//! Each server must exit 0 on SIGTERM, and its socket file must be gone. A SIGINT, SIGTERM or
//! SIGHUP to the demo itself ends it at once, in a step or between two: its children are
//! stopped and their sockets removed, then it says `interrupted by SIGINT before the check
//! was done` and exits 128 + the signal's number (130 for Ctrl-C).
//!
//! Every object name is unique to this run (`common::names::unique`), so the demo never
//! meets a server a user started by hand, nor a parallel test.
//!
//! # System calls, in order
//!
//! For each child: `fork` + `prctl(PR_SET_PDEATHSIG, SIGTERM)` + `setpgid` + `execve`
//! (through [`common::child::RoleCommand`]), `read` of its stdout pipe, `pidfd_open` +
//! `poll` (its pidfd beside the shutdown self-pipe) + `waitpid`; for a server, `kill(SIGTERM)`
//! at the end.
//!
//! # Pitfalls
//!
//! - A Ctrl-C at the terminal goes to the whole foreground process group: each child is in a
//!   group of its own, so only the demo hears it and stops the children in order.
//! - A demo killed with SIGKILL cannot stop its children: the kernel sends each one SIGTERM
//!   (PR_SET_PDEATHSIG, set from the main thread, which lives as long as the process).
//! - A stop signal must end every wait, not only the gaps between steps: each wait for a
//!   child's line or exit watches the shutdown too ([`Run::finish`], [`Run::ready`]).
//! - Every child's stdout is read to its end by the demo; stderr is passed through, never a
//!   pipe nobody drains.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use common::child::{Lines, RoleCommand, Supervised};
use common::cleanup::Shutdown;
use common::{Context, Error, Result, say};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::cli::DemoArgs;

const WORKERS: u32 = 8;
const ROUNDS: u32 = 250;
const DEADLINE: Duration = Duration::from_secs(60);

/// Play the scenario; the last stdout line is `ok: ...`, `FAILED: ...`, or `interrupted by
/// SIGINT before the check was done`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // SIGINT, SIGTERM and SIGHUP end the scenario through the normal return path, so the
    // child handles are dropped and the children (servers included) are stopped and reaped
    // rather than orphaned with their sockets. SIGHUP too: if the terminal closes, the demo
    // must still live long enough to stop its children, which sit in process groups of their
    // own and would not hear it.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    let mut run = Run {
        shutdown: &shutdown,
        done: 0,
        wait_before: args.wait_for_signal_before_step,
    };
    // The children are gone when `scenario` returns (their handles stop them), before the
    // verdict says so.
    common::out::verdict(scenario(&mut run).map(|summary| format!("ok: {summary}")))
}

/// The scenario under way: the stop signals it heeds, and the steps announced so far.
struct Run<'a> {
    shutdown: &'a Shutdown,
    done: u32,
    /// The test hook `--wait-for-signal-before-step` (see [`crate::cli`]).
    wait_before: Option<u32>,
}

impl Run<'_> {
    /// Announce the next step, unless a signal has asked us to stop.
    fn step(&mut self, text: fmt::Arguments<'_>) -> Result<()> {
        self.done += 1;
        if self.wait_before == Some(self.done) {
            self.wait_for_signal()?;
        }
        self.shutdown.err_if_requested()?;
        say!("{text}")
    }

    /// Sleep until a signal asks us to stop: on the shutdown self-pipe, which the handler
    /// writes after setting the flag, so the flag is set when this returns.
    fn wait_for_signal(&self) -> Result<()> {
        while !self.shutdown.requested() {
            let mut fds = [PollFd::new(self.shutdown.wake_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", "shutdown pipe", e)),
            }
        }
        Ok(())
    }

    /// Start this binary as the child `label` with `args`: its stdout is the child's answer,
    /// read by the demo; its stderr, with the `-v` narration and any error message, is ours.
    /// It dies with us if we cannot stop it (PR_SET_PDEATHSIG), and sits in a process group
    /// of its own: a Ctrl-C at the terminal reaches only the demo, which then stops its
    /// children one by one (had the server heard the terminal's SIGINT too, the demo's SIGTERM
    /// would be its second signal, which exits at once, without removing the socket file).
    fn spawn(&self, label: &str, args: &[&str]) -> Result<Supervised> {
        RoleCommand::new(label, DEADLINE)?.args(args).spawn()
    }

    /// [`Run::spawn`] for the test hook `worker`, which the parser accepts only with
    /// [`crate::cli::TEST_HOOKS`] set.
    fn spawn_worker(&self, label: &str, args: &[&str]) -> Result<Supervised> {
        RoleCommand::new(label, DEADLINE)?
            .args(args)
            .env(crate::cli::TEST_HOOKS, "1")
            .spawn()
    }

    /// Run a child to its end; its stdout lines, or an error if it failed (its own message is
    /// on stderr, just above).
    fn finish(&self, child: Supervised) -> Result<Vec<String>> {
        let mut out = child
            .stdout_lines()
            .ok_or_else(|| Error::msg("no stdout"))?;
        let status = child.wait_or_stop(DEADLINE, self.shutdown)?;
        let lines = out.rest(DEADLINE)?;
        if !status.success() {
            return Err(Error::Check(format!(
                "{} failed ({}); its error is on stderr",
                child.label(),
                common::child::Ended::from(status),
            )));
        }
        Ok(lines)
    }

    /// A `client` process's answer to `args`, its lines joined.
    fn client_output(&self, label: &str, args: &[&str]) -> Result<String> {
        let mut full = vec!["client"];
        full.extend_from_slice(args);
        Ok(self.finish(self.spawn(label, &full)?)?.join("\n"))
    }

    /// A server's `ready:` line.
    fn ready(&self, lines: &mut Lines) -> Result<String> {
        lines.wait_for_or_stop(|l| l.starts_with("ready: "), DEADLINE, self.shutdown)
    }

    /// Stop a server with SIGTERM, and check that it exits 0 and its socket file is gone.
    fn stop(&self, server: Supervised, lines: &mut Lines, path: &Path) -> Result<String> {
        server.signal(Signal::SIGTERM)?;
        let last =
            lines.wait_for_or_stop(|l| l.starts_with("shutting down"), DEADLINE, self.shutdown)?;
        let status = server.wait_or_stop(DEADLINE, self.shutdown)?;
        if !status.success() {
            return Err(Error::Check(format!(
                "{} exited with {} after SIGTERM",
                server.label(),
                common::child::Ended::from(status)
            )));
        }
        if path.exists() {
            return Err(Error::Check(format!(
                "{} is still there after the server exited",
                path.display()
            )));
        }
        Ok(last)
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

fn scenario(run: &mut Run<'_>) -> Result<String> {
    let dir = common::names::runtime_dir()?;
    let tag = common::names::unique("demo");
    let sock: PathBuf = dir.join(format!("{tag}-kv.sock"));
    let dgram: PathBuf = dir.join(format!("{tag}-dgram.sock"));
    let sock_s = sock.display().to_string();

    run.step(format_args!(
        "1. server: {sock_s} and TCP on 127.0.0.1 (a free port)"
    ))?;
    let server = run.spawn(
        "server",
        &["server", "--unix", &sock_s, "--tcp", "127.0.0.1:0"],
    )?;
    let mut slog = server
        .stdout_lines()
        .ok_or_else(|| Error::msg("no stdout"))?;
    let ready = run.ready(&mut slog)?;
    let tcp = ready
        .split_once(" tcp ")
        .map(|(_, addr)| addr.trim().to_owned())
        .ok_or_else(|| Error::msg(format!("server: no TCP address in {ready:?}")))?;
    let meta = std::fs::symlink_metadata(&sock).ctx("stat", &sock_s)?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    check(mode == 0o600, || {
        format!("{sock_s} has mode {mode:o}, not 600")
    })?;
    say!(
        "   server pid {}, socket mode 0600, TCP {tcp}",
        server.pid()
    )?;

    let counter = format!("{tag}:shared-counter");
    run.step(format_args!(
        "2. {WORKERS} client processes x {ROUNDS} rounds of pipelined SET/GET/INCR \
         (private and shared keys)"
    ))?;
    let mut workers = Vec::new();
    for id in 0..WORKERS {
        workers.push(run.spawn_worker(
            &format!("worker {id}"),
            &[
                "worker",
                "--unix",
                &sock_s,
                "--id",
                &id.to_string(),
                "--rounds",
                &ROUNDS.to_string(),
                "--counter",
                &counter,
            ],
        )?);
    }
    let mut checked = 0u64;
    for w in workers {
        let lines = run.finish(w)?;
        let last = lines.last().cloned().unwrap_or_default();
        let n: u64 = last
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::Check(format!("unexpected worker output {last:?}")))?;
        checked += n;
    }
    say!("   every worker exited 0; {checked} replies checked")?;

    let total = u64::from(WORKERS * ROUNDS);
    run.step(format_args!(
        "3. the shared counter, read by a client process"
    ))?;
    let via_unix = run.client_output("client (unix)", &["--unix", &sock_s, "GET", &counter])?;
    // The client's stdout is a pipe, so it prints the value raw, as redis-cli would.
    check(via_unix == total.to_string(), || {
        format!("shared counter read {via_unix:?} over Unix, expected \"{total}\"")
    })?;
    say!("   over {sock_s}: {via_unix}")?;
    let via_tcp = run.client_output("client (tcp)", &["--tcp", &tcp, "GET", &counter])?;
    check(via_tcp == total.to_string(), || {
        format!("shared counter read {via_tcp:?} over TCP, expected \"{total}\"")
    })?;
    say!("   over TCP {tcp}: {via_tcp}")?;

    let dgram_s = dgram.display().to_string();
    run.step(format_args!("4. datagram round trip on {dgram_s}"))?;
    let dserver = run.spawn("dgram-server", &["dgram-server", "--path", &dgram_s])?;
    let mut dlog = dserver
        .stdout_lines()
        .ok_or_else(|| Error::msg("no stdout"))?;
    run.ready(&mut dlog)?;
    let set = run
        .finish(run.spawn(
            "dgram-client",
            &[
                "dgram-client",
                "--path",
                &dgram_s,
                "SET",
                "dgram-key",
                "hi there",
            ],
        )?)?
        .join("\n");
    let get = run
        .finish(run.spawn(
            "dgram-client",
            &["dgram-client", "--path", &dgram_s, "GET", "dgram-key"],
        )?)?
        .join("\n");
    check(set == "OK" && get == "hi there", || {
        format!("datagram SET/GET replied {set:?} / {get:?}")
    })?;
    say!("   SET -> {set}, GET -> {get}")?;
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .ctx("opendir", dir.display())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dgram-client-"))
        .collect();
    check(leftovers.is_empty(), || {
        format!("dgram clients left their sockets behind: {leftovers:?}")
    })?;
    run.stop(dserver, &mut dlog, &dgram)?;
    say!("   clients removed their bound sockets; dgram-server stopped, {dgram_s} removed")?;

    run.step(format_args!(
        "5. fd passing: pass-fd sends an unlinked file's fd to a receiver process"
    ))?;
    let passed = run.finish(run.spawn("pass-fd", &["pass-fd"])?)?;
    for l in passed
        .iter()
        .filter(|l| l.contains("receiver") && !l.starts_with("ok:"))
    {
        say!("   {}", l.trim())?;
    }
    check(passed.last().is_some_and(|l| l.starts_with("ok:")), || {
        format!("pass-fd said: {}", passed.join(" / "))
    })?;

    run.step(format_args!("6. SIGTERM to the server"))?;
    let last = run.stop(server, &mut slog, &sock)?;
    say!("   server said {last:?}; exit 0; {sock_s} removed")?;
    Ok(format!(
        "{WORKERS} clients x {ROUNDS} rounds, {checked} replies right, shared counter {total}; \
         unix+tcp+datagram round trips, fd passed, sockets removed"
    ))
}
