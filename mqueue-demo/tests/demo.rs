//! The default run plays the whole scenario and says `ok`.

mod support;

use common::testkit::{self, Sandbox};
use support::*;

#[test]
fn default_run_is_ok() {
    let sb = Sandbox::new();
    let out = testkit::run(&mut sb.command(BIN), b"");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("ok: 2000/2000 tasks, each reported exactly once;"),
        "{text}"
    );
    assert!(
        last.contains("0 priority inversions") && last.ends_with("no queue left"),
        "{last}"
    );
}

#[test]
fn demo_narrates_with_v() {
    let sb = Sandbox::new();
    let out = testkit::run(
        sb.command(BIN)
            .args(["-v", "demo", "--tasks", "20", "--workers", "2"]),
        b"",
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    for want in [
        " run] mq_open(",
        "O_CREAT|O_EXCL",
        " worker] mq_receive(",
        " submit] mq_send(",
        " run] mq_unlink(",
    ] {
        assert!(err.contains(want), "no {want:?} in the trace");
    }
}

/// The demo killed with -9 mid-run (it cannot unwind): its supervisor, the workers and the
/// producers all stop, and the supervisor still removes its queues.
#[test]
fn nothing_outlives_a_killed_demo() {
    let sb = Sandbox::new();
    let demo =
        testkit::spawn(
            sb.command(BIN)
                .args(["demo", "--tasks", "1000000", "--workers", "2"]),
        );
    let mut out = demo.stdout_lines().unwrap();
    let step1 = out.wait_for(|l| l.starts_with("1. "), WAIT).unwrap();
    let sup: i32 = step1.split(' ').nth(3).unwrap().parse().unwrap();
    let queue = step1
        .split(' ')
        .find(|w| w.starts_with("/ipc-demo-"))
        .unwrap()
        .to_owned();
    let step2 = out.wait_for(|l| l.starts_with("2. "), WAIT).unwrap();
    let (_, pids) = step2.split_once("(pids ").unwrap();
    let mut all: Vec<i32> = pids
        .split(')')
        .next()
        .unwrap()
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    // The supervisor's children: its workers.
    let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
    all.extend(
        children
            .split_whitespace()
            .map(|p| p.parse::<i32>().unwrap()),
    );
    all.push(sup);
    assert!(all.len() >= 5, "{all:?}");
    demo.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    for pid in all {
        let pid = nix::unistd::Pid::from_raw(pid);
        assert!(wait_gone(pid), "pid {pid} outlived the demo");
    }
    // The supervisor's own account, on the stderr it inherited from the demo.
    let err = demo.stderr_lines().unwrap().rest(WAIT).unwrap();
    assert!(err.is_empty(), "{err:?}");
    assert_no_queues(&queue);
}
