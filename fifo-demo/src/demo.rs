//! The scenario played by `fifo-demo` with no arguments, with real processes:
//!
//! 1. start `fifo-demo daemon` as a child on a FIFO with a unique name in the runtime
//!    directory, and wait for its "ready" line;
//! 2. start N `fifo-demo log` writer processes; each gets `writer=<i> seq=<j>` lines on its
//!    stdin, j = 1..M, and sends one record per line, all of them at the same time;
//! 3. midway — after the first half of every writer's lines has been handed over and the
//!    daemon has logged a quarter of all records — rotate the log: `rename(log, log.1)` and
//!    SIGHUP, while records are still in flight; then hand over the second halves;
//! 4. when the writers are done, SIGTERM the daemon, which drains the pipe and removes its
//!    FIFO and pid file;
//! 5. check: exactly N×M records across both files, none torn, every writer's sequence
//!    complete and in order, the FIFO gone.
//!
//! The two log files are removed at the end unless `--keep` is given or the check failed
//! (then their paths are printed, to look at).
//!
//! # Interrupted
//!
//! Ctrl-C, SIGTERM or SIGHUP at any step, the check included, stops the run: every wait also
//! watches the shutdown's self-pipe, the logs are removed at once (before the roles are
//! stopped, which takes a moment: the daemon drains), then the roles are stopped, and the run
//! exits with 128 + the signal's number, never with a verdict. A second signal exits at once
//! without unwinding (see `common::cleanup`); so does SIGKILL. For those, every run holds
//! `<tag>.pid` locked while it lives: the next `fifo-demo demo`, `fifo-demo cleanup` and
//! `make clean-ipc` find a run whose lock is free and remove what it left (see
//! [`crate::cleanup::sweep_dead_runs`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::child::{Ended, RoleCommand, Supervised};
use common::cleanup::{Shutdown, Unlink, spawn_helper};
use common::names;
use common::pidfile::PidFile;
use common::{Context, Error, Result, say};
use nix::sys::signal::Signal;

use crate::cli::DemoArgs;
use crate::protocol;

/// How long any child may run, and how long we wait for any one step.
const DEADLINE: Duration = Duration::from_secs(300);

/// Run the scenario and print its steps; the last stdout line is `ok: ...` or `FAILED: ...`,
/// or, for a run stopped by a signal, `interrupted by SIG... before the check was done`
/// (status 128 + its number; see `common::error`, "Exit status").
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // Ctrl-C or SIGTERM ends the scenario at once, whatever step it is at (see
    // "Interrupted"). SIGHUP too: a closed terminal stops us cleanly instead of killing us
    // mid-way.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    let dir = names::runtime_dir()?;
    let swept = crate::cleanup::sweep_dead_runs(&dir)?;
    if !swept.is_empty() {
        say!("{}", crate::cleanup::swept_line(&swept))?;
    }
    let tag = names::unique("fifo-demo");
    let files = Files {
        fifo: dir.join(format!("{tag}.fifo")),
        log: dir.join(format!("{tag}.log")),
        rotated: dir.join(format!("{tag}.log.1")),
    };
    // Locked for as long as this run lives, and removed last: the mark by which a sweep tells
    // a dead run's logs from a live run's (and from logs kept on purpose, which have none).
    let _run = PidFile::create(&crate::cleanup::run_lock(&dir, &tag))?;
    // The guards remove the log files however we leave; disarmed below to keep them.
    let guards = [Unlink::path(&files.log), Unlink::path(&files.rotated)];
    let mut roles = Roles::default();
    let outcome = play(args, &files, &shutdown, &mut roles);
    if let Some(sig) = shutdown.signal() {
        // The logs first: stopping the roles takes a moment (the daemon drains), and a second
        // Ctrl-C meanwhile exits at once. The guards then remove anything the daemon made
        // since (a log it reopened for a SIGHUP already sent).
        for log in &guards {
            if let Err(e) = log.object().unlink() {
                eprintln!("warning: {e}");
            }
        }
        drop(roles);
        drop(guards);
        // Said if stdout takes it: the status (128 + N) tells the same either way.
        let _ = say!("stopped every role and removed the logs");
        return common::out::verdict(Err(Error::Interrupted(sig)));
    }
    // Writers first, then the daemon (see Roles): the daemon's drain then finds no writer.
    drop(roles);
    // A failed check keeps the logs as evidence; an error does not.
    let keep = args.keep || matches!(outcome, Ok(ref s) if !s.starts_with("ok"));
    if keep {
        let _kept = guards.map(Unlink::keep);
        say!(
            "logs kept: {} {}",
            files.rotated.display(),
            files.log.display()
        )?;
    }
    common::out::verdict(outcome)
}

struct Files {
    fifo: PathBuf,
    log: PathBuf,
    rotated: PathBuf,
}

/// The processes a run has started, stopped when dropped (each handle sends SIGTERM to its
/// process group, then SIGKILL): the writers first (fields drop in order), then the daemon,
/// whose drain then ends at once.
#[derive(Default)]
struct Roles {
    writers: Vec<Supervised>,
    daemon: Option<Supervised>,
}

/// Play the scenario with the roles kept in `roles`, so that the caller decides when they
/// are stopped.
fn play(args: &DemoArgs, files: &Files, shutdown: &Shutdown, roles: &mut Roles) -> Result<String> {
    let Roles { writers, daemon } = roles;
    let (n, m) = (args.writers, args.lines);

    // 1. The daemon. Its stdout comes to us so we can wait for its "ready" line (see
    //    common::lifecycle); its stderr too, and a thread passes every line of it on to our
    //    stderr as it arrives. A role child (common::child::RoleCommand) in a process group
    //    of its own: a Ctrl-C at the terminal reaches only us, and we stop the roles with one
    //    SIGTERM each as their handles drop (a daemon that got the terminal's SIGINT too
    //    would take that SIGTERM as a second signal and exit at once, leaving its FIFO
    //    behind). If we die without unwinding (a second Ctrl-C exits at once, or SIGKILL),
    //    the kernel sends it the SIGTERM our handle would have: it drains and removes its
    //    FIFO.
    let daemon: &Supervised = daemon.insert(
        RoleCommand::new("daemon", DEADLINE)?
            .arg("daemon")
            .arg("--fifo")
            .arg(&files.fifo)
            .arg("--log")
            .arg(&files.log)
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let mut lines = daemon
        .stderr_lines()
        .ok_or_else(|| Error::msg("daemon: no stderr pipe"))?;
    let mut stdout = daemon
        .stdout_lines()
        .ok_or_else(|| Error::msg("daemon: no stdout pipe"))?;
    let ready = stdout.wait_for_or_stop(|l| l.starts_with("ready: "), DEADLINE, shutdown);
    if let Err(e @ Error::Interrupted(_)) = ready {
        return Err(e);
    }
    if let Err(e) = ready {
        let status = daemon
            .wait_timeout(Duration::from_secs(5))
            .map(|s| Ended::from(s).to_string());
        // Its own error, if it gave one, is on its stderr.
        let said = lines.rest(Duration::from_secs(5)).unwrap_or_default();
        return Err(Error::msg(format!(
            "the daemon did not start ({}): {}",
            status.unwrap_or_else(|e| e.to_string()),
            said.last().map_or_else(|| e.to_string(), Clone::clone)
        )));
    }
    for line in lines.seen() {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    // The thread also tells step 3 when the daemon says it has reopened its log.
    let (reopened, reopen_seen) = mpsc::channel::<()>();
    // A helper thread: the demo's signals go to the main thread (common::cleanup::spawn_helper).
    spawn_helper(move || {
        while let Ok(Some(line)) = lines.next_line(DEADLINE) {
            let _ = writeln!(std::io::stderr(), "{line}");
            if line.contains("SIGHUP: reopened") {
                let _ = reopened.send(());
            }
        }
    });
    say!(
        "1. daemon (pid {}) reads {} and logs to {}",
        daemon.pid(),
        files.fifo.display(),
        files.log.display()
    )?;

    // 2. The writers, fed by one thread each, which pauses at the halfway mark until the
    //    rotation has been done.
    let mut resume = Vec::new();
    for w in 0..n {
        let child = RoleCommand::new(&format!("writer {w}"), DEADLINE)?
            .arg("log")
            .arg("--fifo")
            .arg(&files.fifo)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stdin = child
            .take_stdin()
            .ok_or_else(|| Error::msg("writer: no stdin pipe"))?;
        let (go, wait) = mpsc::channel::<()>();
        spawn_helper(move || feed(stdin, w, m, &wait));
        writers.push(child);
        resume.push(go);
    }
    let pids: Vec<String> = writers.iter().map(|w| w.pid().to_string()).collect();
    say!(
        "2. {n} writers (pids {}) send {m} numbered lines each, concurrently",
        pids.join(" ")
    )?;

    // 3. Rotate once, midway, while records are in flight.
    let total = u64::from(n) * u64::from(m);
    // At least one: with a single writer of 2 lines a quarter is 0, and a rotation before
    // the first record leaves nothing in the rotated file.
    let logged = wait_for_lines(&files.log, (total / 4).max(1), shutdown)?;
    std::fs::rename(&files.log, &files.rotated)
        .ctx("rename", format!("{} -> .1", files.log.display()))?;
    daemon.signal(Signal::SIGHUP)?;
    // The second halves go out only once the daemon has reopened: sent earlier, they could
    // all be read before the daemon looks at its SIGHUP, and land in the rotated file.
    let end = Instant::now() + DEADLINE;
    loop {
        match reopen_seen.recv_timeout(Duration::from_millis(50)) {
            Ok(()) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => {}
            Err(_) => return Err(Error::msg("the daemon did not reopen its log after SIGHUP")),
        }
        shutdown.err_if_requested()?;
    }
    say!(
        "3. rotated after {logged} lines: mv {} {}; kill -HUP {}",
        name(&files.log),
        name(&files.rotated),
        daemon.pid()
    )?;
    for go in resume {
        // A feeder whose writer already died has gone; its writer's status tells.
        let _ = go.send(());
    }
    let mut failed = Vec::new();
    for w in writers.iter() {
        // Or a stop signal, whichever comes first: a writer that never finishes (stopped,
        // stuck) must not make Ctrl-C wait for it.
        let status = w.wait_or_stop(DEADLINE, shutdown)?;
        if !status.success() {
            failed.push(format!("{} {}", w.label(), Ended::from(status)));
        }
    }
    shutdown.err_if_requested()?;
    if !failed.is_empty() {
        return Ok(format!("FAILED: writers failed: {}", failed.join(", ")));
    }

    // 4. Stop the daemon; it drains the pipe first.
    shutdown.err_if_requested()?;
    daemon.signal(Signal::SIGTERM)?;
    let status = daemon.wait_or_stop(DEADLINE, shutdown)?;
    say!(
        "4. writers done; kill -TERM {} -> daemon {}",
        daemon.pid(),
        Ended::from(status)
    )?;
    if !status.success() {
        return Ok(format!("FAILED: daemon {}", Ended::from(status)));
    }

    // 5. Check.
    let pid_of: Vec<u32> = writers.iter().map(|w| w.pid().as_raw() as u32).collect();
    let mut check = Check::new(&pid_of, m);
    let before = check.file(&files.rotated)?;
    shutdown.err_if_requested()?;
    let after = check.file(&files.log)?;
    let fifo_left = files.fifo.exists() || crate::fifo::pid_path_for(&files.fifo).exists();
    say!(
        "5. {} has {before} lines, {} has {after}",
        name(&files.rotated),
        name(&files.log)
    )?;
    // A verdict only for a run that was not interrupted, up to this very line.
    shutdown.err_if_requested()?;
    Ok(check.verdict(total, (before, after), fifo_left))
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into())
}

/// Write `writer=<w> seq=<j>` lines to a writer's stdin: the first half, then wait for the
/// go-ahead, then the rest. Stops quietly if the writer has gone (its status reports why).
fn feed(mut stdin: std::process::ChildStdin, w: u32, m: u32, resume: &mpsc::Receiver<()>) {
    let half = m / 2;
    let chunk = |from: u32, to: u32| {
        let mut text = String::new();
        for j in from..=to {
            text.push_str(&format!("writer={w} seq={j}\n"));
        }
        text
    };
    if stdin.write_all(chunk(1, half).as_bytes()).is_err() {
        return;
    }
    if stdin.flush().is_err() || resume.recv().is_err() {
        return;
    }
    let _ = stdin.write_all(chunk(half + 1, m).as_bytes());
    // Dropping stdin closes the pipe: the writer sees EOF and exits.
}

/// Wait until the file at `path` holds at least `want` complete lines; returns the count.
///
/// This polls the file every few milliseconds: there is no event to wait for when another
/// process appends to a file (short of inotify), and the deadline bounds it.
fn wait_for_lines(path: &Path, want: u64, shutdown: &Shutdown) -> Result<u64> {
    let timeout = DEADLINE;
    let end = Instant::now() + timeout;
    let mut file: Option<File> = None;
    let mut count = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if file.is_none() {
            file = match File::open(path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).ctx("open", path.display()),
            };
        }
        if let Some(f) = file.as_mut() {
            loop {
                let got = f.read(&mut buf).ctx("read", path.display())?;
                if got == 0 {
                    break;
                }
                count += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
            }
        }
        if count >= want {
            return Ok(count);
        }
        shutdown.err_if_requested()?;
        if Instant::now() >= end {
            return Err(Error::msg(format!(
                "{}: only {count} of {want} lines after {timeout:?}",
                path.display()
            )));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// The check over both log files.
struct Check {
    /// Writer index by pid.
    writer_of: HashMap<u32, usize>,
    /// The next sequence number expected from each writer.
    next: Vec<u32>,
    lines: u32,
    records: u64,
    torn: u64,
    out_of_order: u64,
    strangers: u64,
    first_problem: Option<String>,
}

impl Check {
    fn new(pids: &[u32], lines: u32) -> Self {
        Check {
            writer_of: pids.iter().enumerate().map(|(i, &p)| (p, i)).collect(),
            next: vec![1; pids.len()],
            lines,
            records: 0,
            torn: 0,
            out_of_order: 0,
            strangers: 0,
            first_problem: None,
        }
    }

    /// Check one file (older first); returns its line count.
    fn file(&mut self, path: &Path) -> Result<u64> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).ctx("read", path.display()),
        };
        let text = String::from_utf8_lossy(&text);
        let mut count = 0;
        for line in text.lines() {
            count += 1;
            self.line(line);
        }
        Ok(count)
    }

    fn problem(&mut self, what: String) {
        self.first_problem.get_or_insert(what);
    }

    fn line(&mut self, line: &str) {
        self.records += 1;
        let Some(parsed) = protocol::parse_log_line(line) else {
            self.torn += 1;
            return self.problem(format!("torn line: {line:?}"));
        };
        let fields = parsed
            .message
            .strip_prefix("writer=")
            .and_then(|r| r.split_once(" seq="))
            .and_then(|(w, s)| Some((w.parse::<usize>().ok()?, s.parse::<u32>().ok()?)));
        let Some((w, seq)) = fields else {
            self.torn += 1;
            return self.problem(format!("torn line: {line:?}"));
        };
        match parsed.pid.and_then(|p| self.writer_of.get(&p)) {
            Some(&i) if i == w => {}
            _ => {
                self.strangers += 1;
                return self.problem(format!("writer {w} logged under the wrong pid: {line:?}"));
            }
        }
        if seq != self.next[w] {
            self.out_of_order += 1;
            let want = self.next[w];
            self.problem(format!("writer {w}: seq {seq} where {want} was due"));
        }
        self.next[w] = seq + 1;
    }

    /// The summary line. `split` is the line count of the rotated file and of the new log:
    /// the rotation happened only if both hold records (together they hold them all, which the
    /// record count checks).
    fn verdict(&self, total: u64, split: (u64, u64), fifo_left: bool) -> String {
        let complete = self.next.iter().filter(|&&n| n == self.lines + 1).count();
        let n = self.next.len();
        let rotated = split.0 > 0 && split.1 > 0;
        let ok = self.records == total
            && self.torn == 0
            && self.out_of_order == 0
            && self.strangers == 0
            && complete == n
            && rotated
            && !fifo_left;
        let rotation = if rotated {
            "rotated once".to_owned()
        } else {
            format!(
                "NOT rotated ({} lines before the rotation, {} after)",
                split.0, split.1
            )
        };
        let mut summary = format!(
            "{}/{total} records, {} torn, {complete}/{n} writers complete and in order, \
             {rotation}, {}",
            self.records,
            self.torn,
            if fifo_left {
                "FIFO left behind"
            } else {
                "no FIFO left"
            }
        );
        if let Some(p) = &self.first_problem {
            summary.push_str(&format!(" (first problem: {p})"));
        }
        if ok {
            format!("ok: {summary}")
        } else {
            format!("FAILED: {summary}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Check;

    /// One writer (pid 7), two lines, all present and in order.
    fn checked() -> Check {
        let mut check = Check::new(&[7], 2);
        check.line("2026-11-26T03:20:50.123456Z pid=7 writer=0 seq=1");
        check.line("2026-11-26T03:20:50.123457Z pid=7 writer=0 seq=2");
        check
    }

    #[test]
    fn a_rotation_with_records_on_both_sides_is_ok() {
        assert_eq!(
            checked().verdict(2, (1, 1), false),
            "ok: 2/2 records, 0 torn, 1/1 writers complete and in order, rotated once, \
             no FIFO left"
        );
    }

    #[test]
    fn all_records_in_one_file_is_not_a_rotation() {
        for split in [(2, 0), (0, 2)] {
            let verdict = checked().verdict(2, split, false);
            assert_eq!(
                verdict,
                format!(
                    "FAILED: 2/2 records, 0 torn, 1/1 writers complete and in order, \
                     NOT rotated ({} lines before the rotation, {} after), no FIFO left",
                    split.0, split.1
                )
            );
        }
    }
}
