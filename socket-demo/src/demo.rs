//! `socket-demo` (no arguments) = `socket-demo demo`: the whole scenario, played with real
//! child processes and checked.
//!
//! 1. Start the server (this binary, `server --unix <unique path> --tcp 127.0.0.1:0`) and wait
//!    for its `ready:` line (`ready: pid N socket PATH tcp ADDR`).
//! 2. Start 8 worker processes. Each, for 250 rounds, pipelines SET/GET of a private key, INCR
//!    of a private counter and INCR of one shared counter, and checks every reply.
//! 3. Check the shared counter equals 8 x 250, reading it with a `client` process over the
//!    Unix socket and with another over TCP (the same store behind both).
//! 4. A datagram round trip: a `dgram-server` process and two `dgram-client` processes, whose
//!    bound sockets must be gone when they exit; then SIGTERM to the `dgram-server`.
//! 5. fd passing: `pass-fd` (which starts its own receiver process).
//! 6. SIGTERM to the stream server.
//!
//! Each server must exit 0 on SIGTERM, and its socket file must be gone. A SIGINT/SIGTERM to
//! the demo itself ends it between steps with `FAILED: interrupted`, its children stopped.
//!
//! Every object name is unique to this run (`common::names::unique`), so the demo never
//! meets a server a user started by hand, nor a parallel test.
//!
//! # System calls, in order
//!
//! For each child: `fork` + `prctl(PR_SET_PDEATHSIG, SIGTERM)` + `setpgid` + `execve`
//! (through `std::process::Command`), `read` of its stdout pipe, `waitpid`; for a server,
//! `kill(SIGTERM)` at the end.
//!
//! # Pitfalls
//!
//! - A Ctrl-C at the terminal goes to the whole foreground process group: each child is in a
//!   group of its own, so only the demo hears it and stops the children in order.
//! - A demo killed with SIGKILL cannot stop its children: the kernel sends each one SIGTERM
//!   (PR_SET_PDEATHSIG, set from the main thread, which lives as long as the process).
//! - Every child's stdout is read to its end by the demo; stderr is passed through, never a
//!   pipe nobody drains.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use common::child::{Lines, Options, Supervised, die_with_supervisor};
use common::cleanup::Shutdown;
use common::{Context, Error, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::cli::{DemoArgs, WorkerArgs};
use crate::client::Connection;
use crate::kv::protocol::Reply;
use crate::sock::Target;

const WORKERS: u32 = 8;
const ROUNDS: u32 = 250;
const DEADLINE: Duration = Duration::from_secs(60);

/// Where the scenario is: the signal that may end it, and the steps announced so far.
struct Steps<'a> {
    shutdown: &'a Shutdown,
    done: u32,
    /// A test's `--wait-for-signal-before-step`.
    wait_before: Option<u32>,
}

impl Steps<'_> {
    /// Announce the next step, unless a signal asked us to stop.
    fn next(&mut self, text: std::fmt::Arguments<'_>) -> Result<()> {
        self.done += 1;
        if self.wait_before == Some(self.done) {
            self.wait_for_signal()?;
        }
        if self.shutdown.requested() {
            return Err(Error::msg(format!(
                "interrupted by {}",
                self.shutdown
                    .signal()
                    .map_or("a signal", |sig| sig.as_str())
            )));
        }
        common::out::line(text)
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
}

fn spawn(label: &str, args: &[&str]) -> Result<Supervised> {
    let exe = std::env::current_exe().ctx("current_exe", "")?;
    let mut cmd = Command::new(exe);
    // stdout is the child's answer, read by the demo. stderr is passed through to ours: it
    // carries the `-v` narration of every process, and a child's own error message, which
    // belong on the user's terminal; a pipe for them would only hide them.
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // If we die without unwinding (SIGKILL, or a second Ctrl-C, which exits at once), the
    // kernel sends each child the SIGTERM its handle would have: a server stops and removes
    // its socket file. Every child is spawned from the main thread, which lives as long as
    // we do (see `die_with_supervisor`).
    die_with_supervisor(&mut cmd, Signal::SIGTERM);
    // Each child in a process group of its own: a Ctrl-C at the terminal reaches only the
    // demo, which then stops its children one by one (SIGTERM, a grace period, SIGKILL). Had
    // the server received the terminal's SIGINT as well, the demo's own SIGTERM would be its
    // second signal, which exits at once, without removing the socket file.
    Supervised::spawn(
        label,
        &mut cmd,
        Options {
            deadline: Some(DEADLINE),
            own_group: true,
        },
    )
}

/// Run a child to its end; its stdout lines, or an error if it failed (its own message is
/// on stderr, just above).
fn finish(child: Supervised) -> Result<Vec<String>> {
    let mut out = child
        .stdout_lines()
        .ok_or_else(|| Error::msg("no stdout"))?;
    let lines = out.rest(DEADLINE)?;
    let status = child.wait_timeout(DEADLINE)?;
    if !status.success() {
        return Err(Error::Check(format!(
            "{} failed ({}); its error is on stderr",
            child.label(),
            common::child::Ended::from(status),
        )));
    }
    Ok(lines)
}

fn client_output(label: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["client"];
    full.extend_from_slice(args);
    Ok(finish(spawn(label, &full)?)?.join("\n"))
}

/// Stop a server with SIGTERM, and check that it exits 0 and its socket file is gone.
fn stop(server: Supervised, lines: &mut Lines, path: &Path) -> Result<String> {
    server.signal(Signal::SIGTERM)?;
    let last = lines.wait_for(|l| l.starts_with("shutting down"), DEADLINE)?;
    let status = server.wait_timeout(DEADLINE)?;
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

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

/// Play the scenario; the last stdout line is `ok: ...` or `FAILED: ...`.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // SIGINT/SIGTERM/SIGHUP end the scenario between steps, through the normal return path, so the
    // child handles are dropped and the children (servers included) are stopped and reaped
    // rather than orphaned with their sockets.
    // SIGHUP too: if the terminal closes, the demo must still live long enough to stop its
    // children, which sit in process groups of their own and would not hear it.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    let mut steps = Steps {
        shutdown: &shutdown,
        done: 0,
        wait_before: args.wait_for_signal_before_step,
    };
    common::out::verdict(scenario(&mut steps).map(|summary| format!("ok: {summary}")))
}

fn scenario(steps: &mut Steps<'_>) -> Result<String> {
    let dir = common::names::runtime_dir()?;
    let tag = common::names::unique("demo");
    let sock: PathBuf = dir.join(format!("{tag}-kv.sock"));
    let dgram: PathBuf = dir.join(format!("{tag}-dgram.sock"));
    let sock_s = sock.display().to_string();

    steps.next(format_args!(
        "1. server: {sock_s} and TCP on 127.0.0.1 (a free port)"
    ))?;
    let server = spawn(
        "server",
        &["server", "--unix", &sock_s, "--tcp", "127.0.0.1:0"],
    )?;
    let mut slog = server
        .stdout_lines()
        .ok_or_else(|| Error::msg("no stdout"))?;
    let ready = slog.wait_for(|l| l.starts_with("ready: "), DEADLINE)?;
    let tcp = ready
        .split_once(" tcp ")
        .map(|(_, addr)| addr.trim().to_owned())
        .ok_or_else(|| Error::msg(format!("server: no TCP address in {ready:?}")))?;
    let meta = std::fs::symlink_metadata(&sock).ctx("stat", &sock_s)?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
    check(mode == 0o600, || {
        format!("{sock_s} has mode {mode:o}, not 600")
    })?;
    common::out::line(format_args!(
        "   server pid {}, socket mode 0600, TCP {tcp}",
        server.pid()
    ))?;

    let counter = format!("{tag}:shared-counter");
    steps.next(
        format_args!(
            "2. {WORKERS} client processes x {ROUNDS} rounds of pipelined SET/GET/INCR (private and shared keys)"
        ),
    )?;
    let mut workers = Vec::new();
    for id in 0..WORKERS {
        workers.push(spawn(
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
        let lines = finish(w)?;
        let last = lines.last().cloned().unwrap_or_default();
        let n: u64 = last
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::Check(format!("unexpected worker output {last:?}")))?;
        checked += n;
    }
    common::out::line(format_args!(
        "   every worker exited 0; {checked} replies checked"
    ))?;

    let total = u64::from(WORKERS * ROUNDS);
    steps.next(format_args!(
        "3. the shared counter, read by a client process"
    ))?;
    let via_unix = client_output("client (unix)", &["--unix", &sock_s, "GET", &counter])?;
    // The client's stdout is a pipe, so it prints the value raw, as redis-cli would.
    check(via_unix == total.to_string(), || {
        format!("shared counter read {via_unix:?} over Unix, expected \"{total}\"")
    })?;
    common::out::line(format_args!("   over {sock_s}: {via_unix}"))?;
    let via_tcp = client_output("client (tcp)", &["--tcp", &tcp, "GET", &counter])?;
    check(via_tcp == total.to_string(), || {
        format!("shared counter read {via_tcp:?} over TCP, expected \"{total}\"")
    })?;
    common::out::line(format_args!("   over TCP {tcp}: {via_tcp}"))?;

    let dgram_s = dgram.display().to_string();
    steps.next(format_args!("4. datagram round trip on {dgram_s}"))?;
    let dserver = spawn("dgram-server", &["dgram-server", "--path", &dgram_s])?;
    let mut dlog = dserver
        .stdout_lines()
        .ok_or_else(|| Error::msg("no stdout"))?;
    dlog.wait_for(|l| l.starts_with("ready: "), DEADLINE)?;
    let set = finish(spawn(
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
    let get = finish(spawn(
        "dgram-client",
        &["dgram-client", "--path", &dgram_s, "GET", "dgram-key"],
    )?)?
    .join("\n");
    check(set == "OK" && get == "hi there", || {
        format!("datagram SET/GET replied {set:?} / {get:?}")
    })?;
    common::out::line(format_args!("   SET -> {set}, GET -> {get}"))?;
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .ctx("opendir", dir.display())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("dgram-client-"))
        .collect();
    check(leftovers.is_empty(), || {
        format!("dgram clients left their sockets behind: {leftovers:?}")
    })?;
    stop(dserver, &mut dlog, &dgram)?;
    common::out::line(format_args!(
        "   clients removed their bound sockets; dgram-server stopped, {dgram_s} removed"
    ))?;

    steps.next(format_args!(
        "5. fd passing: pass-fd sends an unlinked file's fd to a receiver process"
    ))?;
    let passed = finish(spawn("pass-fd", &["pass-fd"])?)?;
    for l in passed
        .iter()
        .filter(|l| l.contains("receiver") && !l.starts_with("ok:"))
    {
        common::out::line(format_args!("   {}", l.trim()))?;
    }
    check(passed.last().is_some_and(|l| l.starts_with("ok:")), || {
        format!("pass-fd said: {}", passed.join(" / "))
    })?;

    steps.next(format_args!("6. SIGTERM to the server"))?;
    let last = stop(server, &mut slog, &sock)?;
    common::out::line(format_args!(
        "   server said {last:?}; exit 0; {sock_s} removed"
    ))?;
    Ok(format!(
        "{WORKERS} clients x {ROUNDS} rounds, {checked} replies right, shared counter {total}; \
         unix+tcp+datagram round trips, fd passed, sockets removed"
    ))
}

/// One of the demo's clients: rounds of pipelined commands, every reply checked.
pub fn worker(args: &WorkerArgs) -> Result<ExitCode> {
    let (id, rounds, counter) = (args.id, args.rounds, args.counter.as_str());
    let target = Target::from_flags(args.unix.as_deref(), args.tcp.as_deref())?;
    let mut conn = Connection::open(&target, None)?;
    let key = format!("{counter}:worker-{id}:value");
    let own_counter = format!("{counter}:worker-{id}:count");
    let mut last_shared = 0i64;
    let mut checked = 0u64;
    for round in 1..=rounds {
        let value = format!("worker {id} round {round}");
        // Four requests in one write: the server must parse a pipelined batch.
        conn.queue(&["SET", &key, &value]);
        conn.queue(&["INCR", counter]);
        conn.queue(&["GET", &key]);
        conn.queue(&["INCR", &own_counter]);
        conn.send()?;
        let replies = [conn.reply()?, conn.reply()?, conn.reply()?, conn.reply()?];
        let bad = |what: &str, got: &Reply| {
            Error::Check(format!(
                "worker {id} round {round}: {what}: got {}",
                crate::client::format_reply(got).trim_end()
            ))
        };
        if replies[0] != Reply::Status("OK".into()) {
            return Err(bad("SET", &replies[0]));
        }
        match replies[1] {
            // Others increment too, so the counter only has to move forward.
            Reply::Integer(n) if n > last_shared => last_shared = n,
            ref r => return Err(bad("INCR shared", r)),
        }
        if replies[2] != Reply::Bulk(Some(value.into_bytes())) {
            return Err(bad("GET", &replies[2]));
        }
        if replies[3] != Reply::Integer(i64::from(round)) {
            return Err(bad("INCR own", &replies[3]));
        }
        checked += 4;
    }
    let mut out = io::stdout().lock();
    writeln!(out, "worker {id}: {checked} replies right").ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}
