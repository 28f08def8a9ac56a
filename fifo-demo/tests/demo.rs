//! The scenario as a user runs it: `fifo-demo` / `fifo-demo demo`.

mod support;

use common::testkit::{self, Sandbox};
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

#[test]
fn ctrl_c_stops_every_role_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let mut cmd = fifo_demo(&sb);
    cmd.args(["demo", "--writers", "8", "--lines", "300000"]);
    let demo = testkit::spawn(&mut cmd);
    let mut stdout = demo.stdout_lines().unwrap();
    stdout
        .wait_for(|l| l.starts_with("2. 8 writers"), support::WAIT)
        .unwrap();
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
    demo.signal(nix::sys::signal::Signal::SIGINT).unwrap();
    let status = demo.wait_timeout(support::WAIT).unwrap();
    assert_eq!(status.code(), Some(1));
    let rest = stdout.rest(support::WAIT).unwrap();
    let last = rest.last().expect("a final line");
    assert!(last.starts_with("FAILED: "), "{last}");
    assert_runtime_dir_empty(&sb);
}

/// A second signal makes the demo exit at once, without unwinding: its daemon and writers
/// must still not outlive it. The two signals are sent while the demo is frozen, so both are
/// pending when it runs again and the second always arrives during the first one's shutdown.
#[test]
fn a_second_signal_leaves_no_daemon_or_writer_running() {
    use nix::sys::signal::Signal;
    let sb = Sandbox::new();
    let mut cmd = fifo_demo(&sb);
    cmd.args(["demo", "--writers", "4", "--lines", "300000"]);
    let demo = testkit::spawn(&mut cmd);
    let mut stdout = demo.stdout_lines().unwrap();
    let first = stdout
        .wait_for(|l| l.starts_with("1. daemon (pid "), support::WAIT)
        .unwrap();
    let daemon: i32 = first["1. daemon (pid ".len()..]
        .split(')')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the daemon's pid");
    let second = stdout
        .wait_for(|l| l.starts_with("2. 4 writers"), support::WAIT)
        .unwrap();
    let mut pids: Vec<i32> = second
        .split("(pids ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the writers' pids")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    pids.push(daemon);
    {
        let _frozen = testkit::freeze(demo.pid());
        demo.signal(Signal::SIGINT).unwrap();
        demo.signal(Signal::SIGTERM).unwrap();
    }
    let status = demo.wait_timeout(support::WAIT).unwrap();
    // The kernel delivers the two pending signals in an order of its choosing; whichever
    // comes second exits at once with 128 + its number. The unwinding exit would be 1.
    assert!(
        matches!(status.code(), Some(130 | 143)),
        "the second signal exits at once: {status:?}"
    );
    for pid in pids {
        let pid = nix::unistd::Pid::from_raw(pid);
        support::wait_until(&format!("pid {pid} to end with the demo"), || {
            testkit::not_running(pid)
        });
    }
    // The daemon got SIGTERM, so it removed its FIFO and pid file as usual.
    let left: Vec<_> = std::fs::read_dir(sb.runtime_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".fifo") || n.ends_with(".pid"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
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
