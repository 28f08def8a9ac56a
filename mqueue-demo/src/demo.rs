//! The default run: a supervisor with 4 workers, 2 producer processes submitting 2000 tasks of
//! mixed priority (one of them a poison task), a worker SIGKILLed midway; then every promise
//! is checked.
//!
//! The demo process is the results reader: it receives from `NAME-results` itself, waiting in
//! `poll` on the queue descriptor. It learns what the supervisor did from its stdout, read
//! through a pipe, and never sleeps to synchronise.
//!
//! The priority check needs no guessing: each producer prints, for every task, the
//! CLOCK_MONOTONIC time just after its `mq_send` returned, and the supervisor stamps each
//! result with the time just *before* the `mq_receive` that took the task. If an urgent task
//! was sent before a normal one was taken, it was in the queue at that moment, and the kernel
//! must have returned it (or another urgent one) first. A normal task taken while an urgent one
//! waited is an inversion, and fails the check.
//!
//! A stop signal (Ctrl-C, SIGTERM, SIGHUP) ends any step at once: the roles are stopped on the
//! way out (the supervisor removes its queues and record), then the last line says
//! `interrupted by SIGINT before the check was done`, and the exit status is 128 + N.

use std::collections::HashMap;
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::child::{Lines, RoleCommand, Supervised};
use common::cleanup::{self, Shutdown};
use common::{Context, Error, Result, say};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::cli::DemoArgs;
use crate::mq::{Access, Mq};
use crate::names::Names;
use crate::protocol::{self, Kind, MAX_ATTEMPTS, Message, Status, TaskResult};
use crate::queue::{self, Finder, Flavor, Which};
use crate::submit;

/// How long one step may take before the demo calls it failed. Generous: CI machines are busy.
const STEP: Duration = Duration::from_secs(120);
/// Every child is killed if it is still running after this long.
const DEADLINE: Duration = Duration::from_secs(600);
/// One task in this many is urgent (priority 9); the others have priority 0.
const URGENT_EVERY: u32 = 4;
const PRODUCERS: u32 = 2;

/// Play the scenario; print `ok: ...` or `FAILED: ...` as the last line.
pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // Ctrl-C ends the demo through its guards: the supervisor child is stopped with SIGTERM
    // and removes its queues.
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    common::out::verdict(scenario(args, &shutdown).map(|summary| format!("ok: {summary}")))
}

/// What the demo knows about one task.
#[derive(Default)]
struct Seen {
    prio: u32,
    sent_ns: u64,
    results: Vec<TaskResult>,
}

/// Start role `label` (this binary with `args`; a producer gets its stdin piped, and the
/// send times it prints for the priority check, `submit::STAMP_ENV`), its stdout piped to us.
/// RoleCommand's defaults fit: a group of its own, so a Ctrl-C at the terminal reaches only
/// the demo, which then stops the supervisor with one SIGTERM (a second signal would make it
/// exit without cleaning up); and SIGTERM if the demo dies without unwinding (kill -9, a
/// second Ctrl-C): a producer dies of it, the supervisor stops as asked, and the kernel's
/// repeats of that signal count as one request (`common::child::die_with_supervisor`). We
/// spawn from the main thread, which lives as long as we do, as PR_SET_PDEATHSIG needs.
fn spawn(label: &str, args: &[&str], producer: bool) -> Result<(Supervised, Lines)> {
    let mut role = RoleCommand::new(label, DEADLINE)?;
    role.args(args);
    if producer {
        role.stdin(Stdio::piped()).env(submit::STAMP_ENV, "1");
    }
    let child = role.spawn()?;
    let lines = child
        .stdout_lines()
        .ok_or_else(|| Error::msg(format!("{label}: stdout was not piped")))?;
    Ok((child, lines))
}

fn worker_pid(line: &str, what: &str) -> Option<Pid> {
    line.strip_prefix("worker pid ")?
        .strip_suffix(what)?
        .parse()
        .ok()
        .map(Pid::from_raw)
}

fn scenario(args: &DemoArgs, shutdown: &Shutdown) -> Result<String> {
    let base = common::names::posix_name(&common::names::unique("demo"));
    let names = Names::new(&base)?;
    let workers = args.workers.to_string();
    let flavor = args.flavor();
    let kind = flavor.args();

    // Step 1: the supervisor and its workers.
    let (sup, mut sup_lines) = spawn(
        "supervisor",
        &[&["run", "--queue", &base, "--workers", &workers], kind].concat(),
        false,
    )?;
    let ready = sup_lines.wait_for_or_stop(|l| l.starts_with("ready: "), STEP, shutdown)?;
    let mut pids = Vec::new();
    for _ in 0..args.workers {
        let started = |l: &str| worker_pid(l, " started").is_some();
        let l = sup_lines.wait_for_or_stop(started, STEP, shutdown)?;
        pids.extend(worker_pid(&l, " started"));
    }
    say!("1. supervisor pid {} {ready}", sup.pid())?;
    let finder = Finder::new(&names, flavor)?;
    let sysv_ids: Vec<(String, i32)> = if flavor == Flavor::Sysv {
        crate::sysv::read_ids(&names.tasks)?
            .1
            .iter()
            .zip(names.all())
            .map(|(&id, n)| (n.to_owned(), id))
            .collect()
    } else {
        Vec::new()
    };
    let results = finder.open(Which::Results, Access::Read, true)?;
    let mut tick = crate::sysv::Tick::new();

    // Step 2: two producers, each a `submit` process fed one task per stdin line.
    let total = args.tasks;
    let per = total / PRODUCERS;
    let mut producers = Vec::new();
    let mut feeders = Vec::new();
    for p in 0..PRODUCERS {
        let (child, lines) = spawn(
            &format!("producer {}", p + 1),
            &[&["submit", "--queue", &base], kind].concat(),
            true,
        )?;
        let count = if p + 1 == PRODUCERS {
            total - per * p
        } else {
            per
        };
        let mut text = String::new();
        for i in 0..count {
            if p == 0 && i == count / 2 {
                text += "fail poison\n";
            } else if i % URGENT_EVERY == 0 {
                text += &format!("!9 echo urgent {p}.{i}\n");
            } else {
                text += &format!("echo normal {p}.{i}\n");
            }
        }
        let stdin = child
            .take_stdin()
            .ok_or_else(|| Error::msg("producer stdin was not piped"))?;
        feeders.push(cleanup::spawn_helper(move || {
            let mut stdin = stdin;
            stdin.write_all(text.as_bytes())
        }));
        producers.push((child, lines));
    }
    say!(
        "2. {PRODUCERS} producers (pids {}) submit {total} tasks, 1 in {URGENT_EVERY} \
         urgent (priority 9), one poison task",
        producers
            .iter()
            .map(|(c, _)| c.pid().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;

    // Step 3: read results; halfway through, SIGKILL a worker.
    let mut seen: HashMap<u64, Seen> = HashMap::new();
    let mut got = 0u32;
    let mut killed: Option<Pid> = None;
    let mut buf = Vec::new();
    let end = Instant::now() + DEADLINE;
    while got < total {
        shutdown.err_if_requested()?;
        if Instant::now() > end {
            return Err(Error::Check(format!(
                "only {got} of {total} results in {DEADLINE:?}"
            )));
        }
        match results.receive(&mut buf) {
            Ok(_) => match protocol::decode(&buf) {
                Ok(Message::Result(r)) => {
                    let s = seen.entry(r.id).or_default();
                    if s.results.is_empty() {
                        got += 1;
                    }
                    s.results.push(r);
                }
                other => {
                    return Err(Error::Check(format!(
                        "unexpected in {}: {other:?}",
                        names.results
                    )));
                }
            },
            Err(Errno::EAGAIN | Errno::EINTR) => {
                let mut fds = vec![PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
                fds.extend(results.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
                // A second at most, to look at the deadline; System V's queue has no
                // descriptor and is looked at on the tick.
                let until = Some(Instant::now() + Duration::from_secs(1));
                match poll(
                    &mut fds,
                    queue::poll_timeout(flavor == Flavor::Sysv, &mut tick, until),
                ) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(Error::sys("poll", &names.results, e)),
                }
            }
            Err(e) => return Err(Error::sys(results.receive_call(), &names.results, e)),
        }
        if killed.is_none() && got >= total / 2 {
            let victim = pids[0];
            // Our grandchild, not yet reaped by the supervisor (it reaps only after its pidfd
            // says the process is gone), so the pid cannot have been recycled.
            nix::sys::signal::kill(victim, Signal::SIGKILL).ctx("kill", victim)?;
            killed = Some(victim);
            say!("3. {got} results in; SIGKILL worker pid {victim}")?;
        }
    }
    let Some(victim) = killed else {
        return Err(Error::Check("no worker was killed".into()));
    };
    let death = format!("worker pid {victim} ");
    let death = sup_lines.wait_for_or_stop(|l| l.starts_with(&death), STEP, shutdown)?;
    let started = |l: &str| worker_pid(l, " started").is_some();
    let replaced = sup_lines.wait_for_or_stop(started, STEP, shutdown)?;
    say!("4. supervisor: \"{death}\", then \"{replaced}\"")?;

    // Step 4: the producers' ids and send times.
    let mut poison = None;
    for (child, mut lines) in producers {
        let status = child.wait_or_stop(STEP, shutdown)?;
        if !status.success() {
            return Err(Error::Check(format!(
                "{} exited with {status}",
                child.label()
            )));
        }
        for line in lines.rest(STEP)? {
            let mut f = line.split(' ');
            let (Some(id), Some(prio), Some(sent)) = (
                f.next().and_then(protocol::parse_id),
                f.next().and_then(|p| p.parse().ok()),
                f.next().and_then(|s| s.parse().ok()),
            ) else {
                return Err(Error::Check(format!("producer printed {line:?}")));
            };
            let s = seen.entry(id).or_default();
            s.prio = prio;
            s.sent_ns = sent;
            if s.results.first().is_some_and(|r| r.status == Status::Dead) {
                poison = Some(id);
            }
        }
    }
    for f in feeders {
        f.join()
            .map_err(|_| Error::msg("feeder thread panicked"))?
            .ctx("write", "producer stdin")?;
    }

    // Step 5: the dead-letter queue holds the poison task, after its last attempt.
    let dead = finder.open(Which::Dead, Access::Read, true)?;
    let mut dead_tasks = Vec::new();
    while dead.receive(&mut buf).is_ok() {
        dead_tasks.push(protocol::decode(&buf));
    }
    let poison = poison.ok_or_else(|| Error::Check("no task was reported dead".into()))?;
    match dead_tasks.as_slice() {
        [Ok(Message::Task(t))]
            if t.id == poison && t.kind == Kind::Fail && t.attempt == MAX_ATTEMPTS => {}
        other => {
            return Err(Error::Check(format!(
                "{} should hold the poison task after {MAX_ATTEMPTS} attempts, holds {other:?}",
                names.dead
            )));
        }
    }
    say!(
        "5. {} holds task {} (fail, attempt {MAX_ATTEMPTS})",
        names.dead,
        protocol::show_id(poison)
    )?;
    drop(dead);
    drop(results);

    // Step 6: SIGTERM to the supervisor alone (not its group: it stops its workers itself,
    // and removes its queues). It is our unreaped child, so its pid is still its own.
    nix::sys::signal::kill(sup.pid(), Signal::SIGTERM).ctx("kill", sup.pid())?;
    let status = sup.wait_or_stop(STEP, shutdown)?;
    let rest = sup_lines.rest(STEP)?;
    let stopped = rest
        .iter()
        .find(|l| l.starts_with("stopped "))
        .ok_or_else(|| Error::Check(format!("no \"stopped\" line: {rest:?}")))?;
    if !status.success() || !stopped.contains(" 0 left queued") {
        return Err(Error::Check(format!("supervisor {status}: {stopped}")));
    }
    say!("6. SIGTERM: {stopped}")?;

    // The checks.
    let all_pids: Vec<Pid> = sup_lines
        .seen()
        .iter()
        .filter_map(|l| worker_pid(l, " started"))
        .collect();
    let leftovers = if flavor == Flavor::Sysv {
        leftover_sysv(&names, &sysv_ids)
    } else {
        leftover_queues(&names, &all_pids)
    };
    if !leftovers.is_empty() {
        return Err(Error::Check(format!("queues left behind: {leftovers:?}")));
    }
    check_results(&seen, total, poison)?;
    let (inversions, overtakes, urgent) = priority_order(&seen);
    if inversions > 0 {
        return Err(Error::Check(format!(
            "{inversions} normal tasks were taken while an urgent task waited in the queue"
        )));
    }
    // An ok only for a run that no stop signal interrupted.
    shutdown.err_if_requested()?;
    Ok(format!(
        "{total}/{total} tasks, each reported exactly once; worker pid {victim} SIGKILLed \
         midway, nothing lost, the worker replaced; poison task dead-lettered after \
         {MAX_ATTEMPTS} attempts; 0 priority inversions ({urgent} urgent tasks overtook \
         {overtakes} normal ones sent earlier); no queue left"
    ))
}

/// Every task has exactly one result; all are ok but the poison task, which is dead.
fn check_results(seen: &HashMap<u64, Seen>, total: u32, poison: u64) -> Result<()> {
    if seen.len() != total as usize {
        return Err(Error::Check(format!(
            "{} distinct ids between producers and results, expected {total}",
            seen.len()
        )));
    }
    for (id, s) in seen {
        let show = protocol::show_id(*id);
        match s.results.as_slice() {
            [] => return Err(Error::Check(format!("task {show}: no result (lost)"))),
            [r] if *id == poison && r.status == Status::Dead => {}
            [r] if *id != poison
                && r.status == Status::Ok
                && r.output.starts_with(b"urgent ") == (s.prio == 9) => {}
            [r] => {
                return Err(Error::Check(format!(
                    "task {show}: unexpected result {}",
                    crate::results::show_result(r)
                )));
            }
            more => {
                return Err(Error::Check(format!("task {show}: {} results", more.len())));
            }
        }
        if s.sent_ns == 0 {
            return Err(Error::Check(format!(
                "task {show}: a result, but no producer sent it"
            )));
        }
    }
    Ok(())
}

/// (inversions, overtakes, urgent tasks). An inversion: a normal task N taken at t_N although
/// an urgent task U sent before t_N was taken after it. An overtake: an urgent task taken
/// before a normal one that was sent earlier: proof that priorities did reorder the queue.
fn priority_order(seen: &HashMap<u64, Seen>) -> (usize, usize, usize) {
    let taken = |s: &Seen| s.results.first().map_or(0, |r| r.taken_ns);
    let urgent: Vec<&Seen> = seen.values().filter(|s| s.prio > 0).collect();
    let normal: Vec<&Seen> = seen.values().filter(|s| s.prio == 0).collect();
    let mut inversions = 0;
    let mut overtakes = 0;
    for n in &normal {
        let t_n = taken(n);
        if urgent.iter().any(|u| u.sent_ns < t_n && taken(u) > t_n) {
            inversions += 1;
        }
        if urgent
            .iter()
            .any(|u| n.sent_ns < u.sent_ns && taken(u) < t_n)
        {
            overtakes += 1;
        }
    }
    (inversions, overtakes, urgent.len())
}

/// `--sysv`: the ids file must be gone, and each of the four ids with it.
fn leftover_sysv(names: &Names, ids: &[(String, i32)]) -> Vec<String> {
    let mut left: Vec<String> = ids
        .iter()
        .filter(|(n, id)| crate::sysv::SysvQ::open(n, *id, 1).is_ok())
        .map(|(n, id)| format!("{n} (System V id {id})"))
        .collect();
    if let Ok(path) = crate::sysv::ids_file(&names.tasks) {
        if path.exists() {
            left.push(path.display().to_string());
        }
    }
    left
}

/// Queues of this run that still exist: from /dev/mqueue when it is mounted, otherwise by
/// trying to open each name the run used.
fn leftover_queues(names: &Names, worker_pids: &[Pid]) -> Vec<String> {
    let prefix = &names.tasks[1..];
    if let Some(dir) = common::names::mqueue_listing() {
        return dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|f| f.starts_with(prefix))
            .collect();
    }
    let mut all: Vec<String> = names.all().iter().map(|s| (*s).to_owned()).collect();
    all.extend(worker_pids.iter().map(|&p| names.inbox(p)));
    all.into_iter()
        .filter(|n| match Mq::open(n, Access::Read, true) {
            Err(e) => e.errno() != Some(Errno::ENOENT),
            Ok(_) => true,
        })
        .collect()
}
