//! 10 000 tasks, 8 workers, a worker SIGKILLed every 200 ms: none lost, each reported once.

mod support;

use std::time::Duration;

use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, kill};
use support::*;

const TASKS: usize = 10_000;
const WORKERS: &str = "8";
/// The kill cadence is the scenario itself, not a synchronisation: the only sleep here.
const KILL_EVERY: Duration = Duration::from_millis(200);

#[test]
fn ten_thousand_tasks_survive_a_kill_every_200ms() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", WORKERS]);
    sup.workers(8);
    // Every other task sleeps 5 ms: the run lasts a few seconds (about 15 kills, not the 5
    // that 1 ms tasks gave), and a kill usually finds a task in hand.
    let input: String = (0..TASKS)
        .map(|i| {
            if i % 2 == 0 {
                format!("echo task {i}\n")
            } else {
                "sleep 5\n".to_owned()
            }
        })
        .collect();
    let mut submit = mq(&sb, &q, &["submit", "--wait"]);
    submit.stdin(std::process::Stdio::piped());
    // Generous: a loaded 2-core machine in debug mode; the work itself takes seconds.
    let producer = testkit::spawn_with_deadline(&mut submit, Duration::from_secs(600));
    let mut stdin = producer.take_stdin().unwrap();
    let feeder =
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let out = producer.stdout_lines().unwrap();
    let collector = std::thread::spawn(move || {
        let mut out = out;
        out.rest(Duration::from_secs(600)).unwrap()
    });

    let mut kills = 0;
    let mut n = 0usize;
    while producer.try_wait().unwrap().is_none() {
        std::thread::sleep(KILL_EVERY);
        let workers = children(sup.child.pid());
        if let Some(&victim) = workers.get(n % workers.len().max(1)) {
            // The supervisor reaps a worker only after its pidfd reports the death, and we
            // kill one at a time, so the pid is still that worker's (or already a zombie).
            if kill(victim, Signal::SIGKILL).is_ok() {
                kills += 1;
            }
        }
        n += 1;
    }
    feeder.join().unwrap().unwrap();
    assert!(producer.wait_timeout(WAIT).unwrap().success());
    let lines = collector.join().unwrap();

    assert_each_id_once(&lines, TASKS);
    let stopped = sup.stop();
    assert!(
        stopped.contains("0 left queued") && stopped.contains("0 dead-lettered"),
        "{stopped}"
    );
    assert!(kills > 0, "no worker was killed");
    // At least one kill took a task from a worker's hands, which then went out again with
    // the next attempt: the path this test is about, not only idle workers dying.
    let retried: u64 = stopped
        .split(", ")
        .find_map(|part| part.strip_suffix(" retried"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retried count in {stopped}"));
    assert!(retried > 0, "no kill hit a task in hand: {stopped}");
    eprintln!("{kills} workers killed; {stopped}");
}

/// Each `submit --wait` makes its own reply queue, which the supervisor opens to deliver the
/// results. Kept open once the client is gone, the descriptor kept the unlinked queue alive and
/// charged to the user's RLIMIT_MSGQUEUE: the 69th `submit --wait` in a row (and any new
/// supervisor of that user) failed with "Too many open files". 1000 in a row, and the
/// supervisor's descriptors stay flat: at most the 8 reply queues it keeps open a moment after
/// their last result (run/outbox.rs, MAX_IDLE). Checked every 20, so that without the fix the test
/// stops long before the limit, which every test of this user shares.
#[test]
fn a_thousand_submit_waits_leave_no_descriptor_open() {
    const IDLE_QUEUES: usize = 8;
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let fd_dir = format!("/proc/{}/fd", sup.child.pid());
    let open_fds = || std::fs::read_dir(&fd_dir).unwrap().count();
    let submit_wait = |i: usize| {
        let out = run(&sb, &q, &["submit", "--wait", &format!("echo {i}")], b"");
        assert!(out.status.success(), "submit {i}: {}", stderr(&out));
    };
    submit_wait(0);
    let first = open_fds();
    for i in 1..=1000 {
        submit_wait(i);
        if i % 20 == 0 {
            let now = open_fds();
            assert!(
                now <= first + IDLE_QUEUES,
                "after {i} more submit --wait the supervisor has {now} descriptors open, \
                 {first} after the first"
            );
        }
    }
    sup.stop();
}
