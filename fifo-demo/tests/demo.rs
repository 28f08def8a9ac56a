//! The scenario as a user runs it: `fifo-demo` / `fifo-demo demo`.

mod support;

use common::child::{Lines, Supervised};
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use support::fifo_demo;

/// Nothing may be left in the runtime dir: no FIFO, no pid file, no log files.
fn assert_runtime_dir_empty(sb: &Sandbox) {
    let left = sb.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn last_line(out: &std::process::Output) -> String {
    testkit::stdout(out).lines().last().unwrap_or("").to_owned()
}

#[test]
fn sixteen_writers_times_5000_lines_all_arrive_whole_and_in_order() {
    let sb = Sandbox::new();
    let out = testkit::run(
        fifo_demo(&sb).args(["demo", "--writers", "16", "--lines", "5000"]),
        b"",
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        testkit::stdout(&out),
        testkit::stderr(&out)
    );
    assert_eq!(
        last_line(&out),
        "ok: 80000/80000 records, 0 torn, 16/16 writers complete and in order, \
         rotated once, no FIFO left"
    );
    assert!(testkit::stdout(&out).contains("3. rotated after"));
    assert_runtime_dir_empty(&sb);
}

#[test]
fn no_arguments_plays_the_default_scenario() {
    let sb = Sandbox::new();
    let out = testkit::run(&mut fifo_demo(&sb), b"");
    assert!(
        out.status.success(),
        "{}\n{}",
        testkit::stdout(&out),
        testkit::stderr(&out)
    );
    assert!(
        last_line(&out).starts_with("ok: 8000/8000 records, 0 torn, 8/8 writers"),
        "{}",
        testkit::stdout(&out)
    );
    assert_runtime_dir_empty(&sb);
}

#[test]
fn keep_leaves_both_log_files_with_every_record() {
    let sb = Sandbox::new();
    let out = testkit::run(
        fifo_demo(&sb).args(["demo", "--writers", "2", "--lines", "10", "--keep"]),
        b"",
    );
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let stdout = testkit::stdout(&out);
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("logs kept: "))
        .expect("the kept files are named");
    let total: usize = kept
        .split(' ')
        .map(|p| support::lines_of(std::path::Path::new(p)).len())
        .sum();
    assert_eq!(total, 20);
    let names: Vec<_> = std::fs::read_dir(sb.runtime_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "only the two logs: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".log") || n.ends_with(".log.1"))
    );
}

/// What an interrupted run ends with: its last line and status 128 + the signal's number,
/// never a verdict, and nothing left in the runtime dir.
fn assert_interrupted(sb: &Sandbox, demo: &Supervised, stdout: &mut Lines, sig: Signal) {
    let status = demo.wait_timeout(support::WAIT).unwrap();
    let rest = stdout.rest(support::WAIT).unwrap();
    assert_eq!(
        status.code(),
        Some(128 + sig as i32),
        "{status:?}: {rest:?}"
    );
    assert!(
        !stdout.seen().iter().any(|l| l.starts_with("ok:")),
        "an interrupted run said ok: {:?}",
        stdout.seen()
    );
    let last_two: Vec<&str> = rest
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        last_two,
        [
            "stopped every role and removed the logs",
            &format!("interrupted by {sig} before the check was done"),
        ],
        "{rest:?}"
    );
    assert_runtime_dir_empty(sb);
}

/// The pid in `(pid N)` or `(pids N M …)` after `prefix` in `line`.
fn pids_after(line: &str, prefix: &str) -> Vec<i32> {
    line.split(prefix)
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no `{prefix}…)` in {line:?}"))
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Ctrl-C (SIGINT), SIGTERM and a closed terminal (SIGHUP) mid-run: each stops every role,
/// leaves nothing, and exits 128 + its number: 130, 143, 129.
#[test]
fn a_stop_signal_mid_run_stops_every_role_leaves_nothing_and_exits_128_plus_n() {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let mut cmd = fifo_demo(&sb);
        cmd.args(["demo", "--writers", "8", "--lines", "300000"]);
        let demo = testkit::spawn(&mut cmd);
        let mut stdout = demo.stdout_lines().unwrap();
        stdout
            .wait_for(|l| l.starts_with("2. 8 writers"), support::WAIT)
            .unwrap();
        // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
        demo.signal(sig).unwrap();
        assert_interrupted(&sb, &demo, &mut stdout, sig);
    }
}

/// A stop signal while the demo waits for its daemon to be ready: the wait ends at once, not
/// at its 300 s deadline. The daemon is frozen as soon as the demo says it started it, which
/// is almost always before it is ready (a start takes milliseconds: exec, the pid file, the
/// FIFO), so it never gets ready; on a machine slow enough for the daemon to win, the stop
/// finds a later wait instead, which must end at once just the same. A frozen daemon cannot
/// clean up either: the demo kills it (SIGKILL, after its grace period). What a killed daemon
/// leaves depends on how far it got (its FIFO and pid file, or nothing yet), and
/// `fifo-demo cleanup` removes it.
#[test]
fn a_stop_signal_while_the_daemon_starts_ends_the_wait_at_once() {
    let sb = Sandbox::new();
    let mut cmd = fifo_demo(&sb);
    // -v: the demo narrates the daemon's fork+execve before it waits for the ready line. The
    // run is long enough that it cannot be over before the daemon is frozen.
    cmd.args(["-v", "demo", "--writers", "1", "--lines", "300000"]);
    let demo = testkit::spawn(&mut cmd);
    let mut stdout = demo.stdout_lines().unwrap();
    let mut stderr = demo.stderr_lines().unwrap();
    let spawned = stderr
        .wait_for(
            |l| l.contains(" demo] fork() + execve(daemon) -> pid "),
            support::WAIT,
        )
        .unwrap();
    let daemon = Pid::from_raw(spawned.rsplit(' ').next().unwrap().parse().unwrap());
    let frozen = testkit::freeze(daemon);
    demo.signal(Signal::SIGTERM).unwrap();
    let status = demo.wait_timeout(support::WAIT).unwrap();
    let rest = stdout.rest(support::WAIT).unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}: {rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("interrupted by SIGTERM before the check was done"),
        "{rest:?}"
    );
    // The demo killed and reaped the frozen daemon: its pid may be anyone's now, so no
    // SIGCONT goes to it.
    std::mem::forget(frozen);
    let tag = format!("fifo-demo-{}-", demo.pid());
    for name in sb.leftovers() {
        let fifo = name.strip_suffix(".pid").unwrap_or(&name);
        assert!(
            fifo.starts_with(&tag) && fifo.ends_with(".fifo"),
            "not the killed daemon's: {name}"
        );
        let out = testkit::run(
            fifo_demo(&sb)
                .arg("cleanup")
                .arg("--fifo")
                .arg(sb.runtime_dir().join(fifo)),
            b"",
        );
        assert!(out.status.success(), "{}", testkit::stderr(&out));
    }
    assert_runtime_dir_empty(&sb);
}

/// A writer that never finishes (here stopped) must not make Ctrl-C wait for it: the demo
/// stops at once, not at its 300 s deadline (beyond this test's own).
#[test]
fn ctrl_c_while_a_writer_is_stopped_ends_the_demo_at_once() {
    let sb = Sandbox::new();
    let mut cmd = fifo_demo(&sb);
    cmd.args(["demo", "--writers", "2", "--lines", "1000"]);
    let demo = testkit::spawn(&mut cmd);
    let mut stdout = demo.stdout_lines().unwrap();
    let second = stdout
        .wait_for(|l| l.starts_with("2. 2 writers"), support::WAIT)
        .unwrap();
    let writer = Pid::from_raw(pids_after(&second, "(pids ")[0]);
    let frozen = testkit::freeze(writer);
    stdout
        .wait_for(|l| l.starts_with("3. rotated"), support::WAIT)
        .unwrap();
    demo.signal(Signal::SIGINT).unwrap();
    assert_interrupted(&sb, &demo, &mut stdout, Signal::SIGINT);
    drop(frozen);
}

/// The check phase: the writers are done and the demo has sent the daemon SIGTERM and waits
/// for it to drain. Ctrl-C there must stop the run, not be ignored and end in `ok:`. The
/// daemon is stopped first, so the demo is certainly still waiting for it when SIGINT comes.
/// The daemon is frozen once the rotation is announced; a run quick enough to be over by then
/// (a loaded machine can delay the test that long) is played again.
#[test]
fn ctrl_c_in_the_check_phase_is_not_an_ok() {
    for _attempt in 0..5 {
        let sb = Sandbox::new();
        let mut cmd = fifo_demo(&sb);
        // -v: the demo narrates its kill(daemon, SIGTERM), which tells the test that step 4
        // began.
        cmd.args(["-v", "demo", "--writers", "2", "--lines", "100"]);
        let demo = testkit::spawn(&mut cmd);
        let mut stdout = demo.stdout_lines().unwrap();
        let mut stderr = demo.stderr_lines().unwrap();
        let first = stdout
            .wait_for(|l| l.starts_with("1. daemon (pid "), support::WAIT)
            .unwrap();
        let daemon = pids_after(&first, "(pid ")[0];
        stdout
            .wait_for(|l| l.starts_with("3. rotated"), support::WAIT)
            .unwrap();
        // 200 records fit in the pipe: the writers finish without the daemon.
        let Some(frozen) = testkit::try_freeze(Pid::from_raw(daemon)) else {
            // Over already: the daemon drained and exited before it could be frozen.
            assert!(demo.wait_timeout(support::WAIT).unwrap().success());
            continue;
        };
        stderr
            .wait_for(
                |l| l.ends_with(&format!(" demo] kill({daemon}, SIGTERM)")),
                support::WAIT,
            )
            .unwrap();
        demo.signal(Signal::SIGINT).unwrap();
        drop(frozen);
        assert_interrupted(&sb, &demo, &mut stdout, Signal::SIGINT);
        return;
    }
    panic!("five runs in a row were over before the test could freeze the daemon");
}

/// A second signal makes the demo exit at once, without unwinding. The two signals are sent
/// while the demo is frozen, so both are pending when it runs again and the second always
/// arrives during the first one's shutdown. Returns the names of what the run left: its
/// daemon and writers die with it, and the daemon removes its FIFO and pid file, but the
/// logs and the run's lock stay, for a sweep to find.
fn leave_a_dead_run(sb: &Sandbox) -> Vec<String> {
    let mut cmd = fifo_demo(sb);
    cmd.args(["demo", "--writers", "4", "--lines", "300000"]);
    let demo = testkit::spawn(&mut cmd);
    let mut stdout = demo.stdout_lines().unwrap();
    let first = stdout
        .wait_for(|l| l.starts_with("1. daemon (pid "), support::WAIT)
        .unwrap();
    let second = stdout
        .wait_for(|l| l.starts_with("2. 4 writers"), support::WAIT)
        .unwrap();
    let mut pids = pids_after(&second, "(pids ");
    pids.extend(pids_after(&first, "(pid "));
    {
        let _frozen = testkit::freeze(demo.pid());
        demo.signal(Signal::SIGINT).unwrap();
        demo.signal(Signal::SIGTERM).unwrap();
    }
    let status = demo.wait_timeout(support::WAIT).unwrap();
    // The kernel delivers the two pending signals in an order of its choosing; whichever
    // comes second exits at once with 128 + its number.
    assert!(
        matches!(status.code(), Some(130 | 143)),
        "the second signal exits at once: {status:?}"
    );
    for pid in pids {
        let pid = Pid::from_raw(pid);
        support::wait_until(&format!("pid {pid} to end with the demo"), || {
            testkit::not_running(pid)
        });
    }
    let tag = format!("fifo-demo-{}-", demo.pid());
    let left = sb.leftovers();
    let run: Vec<&String> = left.iter().filter(|n| n.ends_with(".pid")).collect();
    assert_eq!(
        run.len(),
        1,
        "the run's lock, and no daemon pid file: {left:?}"
    );
    let run = run[0].strip_suffix(".pid").unwrap();
    assert!(run.starts_with(&tag), "{left:?}");
    // The rotation may or may not have come before the freeze: the rotated log with it.
    for name in &left {
        assert!(
            [".pid", ".log", ".log.1"]
                .iter()
                .any(|ext| *name == format!("{run}{ext}")),
            "{name}: not the run's lock or one of its logs: {left:?}"
        );
    }
    assert!(left.contains(&format!("{run}.log")), "{left:?}");
    left
}

#[test]
fn a_second_signal_leaves_no_process_and_cleanup_removes_what_it_left() {
    let sb = Sandbox::new();
    let left = leave_a_dead_run(&sb);
    let out = testkit::run(fifo_demo(&sb).arg("cleanup"), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let said = testkit::stdout(&out);
    let swept = said
        .lines()
        .find_map(|l| l.strip_prefix("removed what a demo run that died before cleaning up left: "))
        .unwrap_or_else(|| panic!("no sweep line: {said}"));
    assert_eq!(swept.split(' ').count(), left.len(), "{said}");
    assert_runtime_dir_empty(&sb);
}

#[test]
fn the_next_demo_removes_what_a_dead_run_left() {
    let sb = Sandbox::new();
    leave_a_dead_run(&sb);
    let out = testkit::run(
        fifo_demo(&sb).args(["demo", "--writers", "1", "--lines", "2"]),
        b"",
    );
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let said = testkit::stdout(&out);
    assert!(
        said.starts_with("removed what a demo run that died before cleaning up left: "),
        "{said}"
    );
    assert_runtime_dir_empty(&sb);
}

/// Logs kept on purpose (`--keep`) belong to nobody's run any more: no sweep touches them.
#[test]
fn kept_logs_are_not_swept() {
    let sb = Sandbox::new();
    let keep = testkit::run(
        fifo_demo(&sb).args(["demo", "--writers", "1", "--lines", "2", "--keep"]),
        b"",
    );
    assert!(keep.status.success(), "{}", testkit::stderr(&keep));
    let kept = sb.leftovers();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let out = testkit::run(fifo_demo(&sb).arg("cleanup"), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    assert_eq!(sb.leftovers(), kept);
}

/// `fifo-demo -v`: the default scenario with every role narrating its calls. The trace of
/// thousands of records must not stall any role (a child's stream that nobody drains fills
/// its pipe and blocks it), and the scenario must still pass.
#[test]
fn trace_narrates_every_role_and_the_scenario_still_passes() {
    let sb = Sandbox::new();
    let out = testkit::run(fifo_demo(&sb).arg("-v"), b"");
    let stderr = testkit::stderr(&out);
    assert!(out.status.success(), "{}\n{stderr}", testkit::stdout(&out));
    assert!(
        last_line(&out).starts_with("ok: 8000/8000 records, 0 torn, 8/8 writers"),
        "{}",
        testkit::stdout(&out)
    );
    for (role, call) in [
        ("demo", "fork() + execve(daemon) -> pid "),
        ("daemon", "mkfifo("),
        ("daemon", "read(fifo) -> "),
        ("log", "open("),
        ("log", "write("),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("[pid ") && l.contains(&format!(" {role}] {call}"))),
            "no `{role}] {call}` line in the trace"
        );
    }
    assert_runtime_dir_empty(&sb);
}
