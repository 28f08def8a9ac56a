//! Each role on its own and the supervisor's promises, with the unlucky instants made certain.

mod support;

use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, kill};
use support::tracer::Tracer;
use support::*;

#[test]
fn submit_wait_runs_each_kind() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "2"]);
    let out = run(
        &sb,
        &q,
        &[
            "submit",
            "--wait",
            "echo hello world",
            "fib 90",
            "sha256 abc",
            "sleep 5",
        ],
        b"",
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let results: Vec<&str> = text.lines().filter(|l| l.contains(" ok ")).collect();
    assert_eq!(results.len(), 4, "{text}");
    for want in [
        "hello world",
        "2880067194370816120",
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "slept 5 ms",
    ] {
        assert!(
            results.iter().any(|l| l.ends_with(want)),
            "{want} not in {text}"
        );
    }
    sup.stop();
}

#[test]
fn urgent_task_runs_first() {
    let sb = Sandbox::new();
    let q = queue();
    // No workers: the tasks wait in the kernel's queue, sorted by priority.
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    for t in ["echo normal 1", "echo normal 2", "echo normal 3"] {
        assert!(run(&sb, &q, &["submit", t], b"").status.success());
    }
    let out = run(&sb, &q, &["submit", "--priority", "9", "echo urgent"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(depth(&sb, &q, &q), 4);
    // One worker that takes one task: it must get the urgent one, sent last.
    let out = run(&sb, &q, &["worker", "--max-tasks", "1"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ran 1 tasks"), "{}", stdout(&out));
    sup.wait_for(|l| l.ends_with(" joined"));
    // --follow: the worker has exited, but the supervisor may not have forwarded its result yet.
    let out = run(&sb, &q, &["results", "--follow", "--count", "1"], b"");
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(" ok attempt=1 ") && lines[0].ends_with(" urgent"),
        "{lines:?}"
    );
    assert_eq!(depth(&sb, &q, &q), 3);
    let stopped = sup.stop();
    assert!(stopped.contains("3 left queued"), "{stopped}");
}

#[test]
fn poison_task_is_dead_lettered_after_five_attempts() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "2"]);
    let out = run(&sb, &q, &["submit", "--wait", "fail boom"], b"");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains(" dead attempt=5 "), "{text}");
    assert!(text.contains("dead-lettered after 5 attempts"), "{text}");
    sup.wait_for(|l| l.contains("dead-lettered to ") && l.contains("after 5 attempts"));
    assert_eq!(depth(&sb, &q, &format!("{q}-dead")), 1);
    // purge empties it.
    let out = run(&sb, &q, &["purge"], b"");
    assert!(
        stdout(&out).contains(&format!("purged 1 messages from {q}-dead")),
        "{}",
        stdout(&out)
    );
    assert_eq!(depth(&sb, &q, &format!("{q}-dead")), 0);
    sup.stop();
}

/// SIGKILL the worker after it has received its task (its own trace line says so), five
/// times over: each replacement gets the task again with the next attempt number, and after
/// the fifth death it is dead-lettered and reported once, as dead.
#[test]
fn worker_killed_holding_a_task_loses_nothing() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let mut worker = sup.workers(1)[0];
    let mut submit = mq(&sb, &q, &["submit", "--wait", "sleep 60000"]);
    let submitter = testkit::spawn(&mut submit);
    let mut results = submitter.stdout_lines().unwrap();
    for attempt in 1..=5 {
        // The worker's own trace: the task is in its hands.
        let held = format!("[pid {worker} worker] task ");
        let line = sup.wait_trace(|l| l.starts_with(&held));
        assert!(
            line.ends_with(&format!("(sleep attempt {attempt})")),
            "{line}"
        );
        kill(worker, Signal::SIGKILL).unwrap();
        let line = sup.wait_for(|l| l.starts_with(&format!("worker pid {worker} ")));
        assert!(
            line.contains("was killed by SIGKILL holding task"),
            "{line}"
        );
        worker = sup.workers(1)[0];
    }
    let line = results.wait_for(|l| l.contains(" dead "), WAIT).unwrap();
    assert!(line.contains("attempt=5"), "{line}");
    assert!(line.contains("which was killed by SIGKILL"), "{line}");
    assert_eq!(submitter.wait_timeout(WAIT).unwrap().code(), Some(1));
    let stopped = sup.stop();
    assert!(
        stopped.contains("1 dead-lettered") && stopped.contains("5 worker deaths"),
        "{stopped}"
    );
}

/// A worker frozen before it can receive the task handed to it, then SIGKILLed: the task is
/// still in its inbox, so it goes out again with the same attempt number.
#[test]
fn task_in_a_dead_workers_inbox_is_given_out_again() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let pid = sup.workers(1)[0];
    // Its hello, received by the supervisor: from now on it is idle and gets the next task.
    sup.wait_trace(|l| l.contains(&format!("mq_open({q}-w{pid}, O_RDWR)")));
    let frozen = testkit::freeze(pid);
    let mut submit = mq(&sb, &q, &["submit", "--wait", "echo survived"]);
    let submitter = testkit::spawn(&mut submit);
    sup.wait_trace(|l| l.contains(&format!("record: worker pid {pid} holds task")));
    kill(pid, Signal::SIGKILL).unwrap();
    drop(frozen);
    let line = sup.wait_for(|l| l.starts_with(&format!("worker pid {pid} ")));
    assert!(line.contains("before it received task"), "{line}");
    let mut results = submitter.stdout_lines().unwrap();
    let line = results.wait_for(|l| l.contains(" ok "), WAIT).unwrap();
    assert!(
        line.contains("attempt=1") && line.ends_with("survived"),
        "{line}"
    );
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    sup.stop();
}

/// SIGTERM while a worker holds a task: the task finishes and its result is delivered, the
/// task still queued is reported, the queues are removed, exit 0.
#[test]
fn sigterm_lets_workers_finish_what_they_hold() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let pid = sup.workers(1)[0];
    let mut submit = mq(
        &sb,
        &q,
        &["submit", "--wait", "sleep 300", "echo never run"],
    );
    let submitter = testkit::spawn(&mut submit);
    sup.wait_trace(|l| l.starts_with(&format!("[pid {pid} worker] task ")));
    kill(sup.child.pid(), Signal::SIGTERM).unwrap();
    let line = sup.wait_for(|l| l.starts_with("stopping: "));
    assert!(line.contains("waiting for 1 workers"), "{line}");
    let stopped = sup.finish_unchecked();
    assert!(stopped.contains("1 left queued"), "{stopped}");
    let mut out = submitter.stdout_lines().unwrap();
    let line = out.wait_for(|l| l.contains(" ok "), WAIT).unwrap();
    assert!(line.ends_with("slept 300 ms"), "{line}");
    let status = submitter.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(1));
    let err = submitter
        .stderr_lines()
        .unwrap()
        .rest(WAIT)
        .unwrap()
        .join("\n");
    assert!(
        err.contains("stopped: 0 tasks not sent, 1 results will not come"),
        "{err}"
    );
}

#[test]
fn results_follow_uses_mq_notify() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let mut follow = mq(&sb, &q, &["-v", "results", "--follow", "--count", "3"]);
    let follower = testkit::spawn(&mut follow);
    let mut trace = follower.stderr_lines().unwrap();
    trace
        .wait_for(
            |l| l.contains("mq_notify(") && l.contains("registered"),
            WAIT,
        )
        .unwrap();
    // A second follower is refused: one registration per queue.
    let out = run(&sb, &q, &["results", "--follow"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another process is registered"),
        "{}",
        stderr(&out)
    );
    for i in 0..3 {
        assert!(
            run(&sb, &q, &["submit", &format!("echo r{i}")], b"")
                .status
                .success()
        );
    }
    let lines = follower.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for i in 0..3 {
        assert!(
            lines.iter().any(|l| l.ends_with(&format!(" r{i}"))),
            "{lines:?}"
        );
    }
    assert!(follower.wait_timeout(WAIT).unwrap().success());
    sup.stop();
}

/// A SIGUSR1 that is not a notification (sent with kill: si_code SI_USER) wakes the follower,
/// but its registration is still in place: it must not register again (EBUSY) and must go on
/// printing results as they come.
#[test]
fn results_follow_ignores_a_sigusr1_that_is_no_notification() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let follower = testkit::spawn(&mut mq(
        &sb,
        &q,
        &["-v", "results", "--follow", "--count", "1"],
    ));
    let mut trace = follower.stderr_lines().unwrap();
    trace
        .wait_for(
            |l| l.contains("mq_notify(") && l.ends_with("registered"),
            WAIT,
        )
        .unwrap();
    kill(follower.pid(), Signal::SIGUSR1).unwrap();
    let line = trace
        .wait_for(|l| l.contains("not from mq_notify"), WAIT)
        .unwrap();
    assert!(line.contains("still registered"), "{line}");
    assert!(
        run(&sb, &q, &["submit", "echo after the stray signal"], b"")
            .status
            .success()
    );
    let status = follower.wait_timeout(WAIT).unwrap();
    let err = trace.rest(WAIT).unwrap().join("\n");
    assert!(status.success(), "{status:?}: {err}");
    let out = follower.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].ends_with(" after the stray signal"), "{out:?}");
    sup.stop();
}

/// A supervisor killed with -9 leaves its queues; the tasks in them are not lost: the next
/// supervisor takes the queues over and runs them.
#[test]
fn next_supervisor_takes_over_after_kill_9() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    assert!(
        run(&sb, &q, &["submit", "echo kept 1", "echo kept 2"], b"")
            .status
            .success()
    );
    kill(sup.child.pid(), Signal::SIGKILL).unwrap();
    sup.child.wait_timeout(WAIT).unwrap();
    // No supervisor now: submit refuses at once, and names the cure.
    let out = run(&sb, &q, &["submit", "echo x"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("no supervisor serves {q}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(depth(&sb, &q, &q), 2);
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let taking_over = format!("taking over {q}, left by a supervisor that was killed (2 messages");
    assert!(
        sup.stdout
            .seen()
            .iter()
            .any(|l| l.starts_with(&taking_over)),
        "{:?}",
        sup.stdout.seen()
    );
    let out = testkit::run(
        &mut mq(&sb, &q, &["results", "--follow", "--count", "2"]),
        b"",
    );
    let text = stdout(&out);
    assert!(
        text.contains(" kept 1") && text.contains(" kept 2"),
        "{text}"
    );
    sup.stop();
}

#[test]
fn unlink_removes_a_dead_supervisors_queues_and_refuses_a_live_one() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    let out = run(&sb, &q, &["unlink"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a supervisor (pid "),
        "{}",
        stderr(&out)
    );
    kill(sup.child.pid(), Signal::SIGKILL).unwrap();
    sup.child.wait_timeout(WAIT).unwrap();
    let pid_file = sb.runtime_dir().join(format!("{}.pid", &q[1..]));
    assert!(pid_file.exists(), "the killed supervisor's pid file");
    let out = run(&sb, &q, &["unlink"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("4 queues removed"), "{text}");
    assert!(
        text.contains(&format!("removed {}", pid_file.display())),
        "{text}"
    );
    assert_no_queues(&q);
    assert_eq!(sb.leftovers(), Vec::<String>::new(), "the pid file is gone");
}

#[test]
fn a_second_supervisor_is_refused() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    let out = run(&sb, &q, &["run", "--workers", "0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already serves"), "{}", stderr(&out));
    sup.stop();
}

/// POSIX queue names are machine-wide, so the live supervisor is found through its record's
/// lock (`NAME-held` in /dev/shm), not through a pid file in one runtime dir: a second
/// supervisor started with another runtime dir, or with XDG_RUNTIME_DIR unset, is refused and
/// told the live one's pid (taking its queues over, both would drop each other's results);
/// `unlink` from there is refused the same way (it would remove the live one's queues); a
/// producer from there reaches the live supervisor.
#[test]
fn a_supervisor_is_found_from_any_runtime_dir() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let pid = sup.child.pid();
    let elsewhere = |args: &[&str], unset: bool| {
        let mut cmd = mq(&other, &q, args);
        if unset {
            cmd.env_remove("XDG_RUNTIME_DIR");
        }
        testkit::run(&mut cmd, b"")
    };
    for unset in [false, true] {
        let out = elsewhere(&["run", "--workers", "0", "--msgsize", "256"], unset);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let want = format!("a supervisor (pid {pid}) already serves {q}; refusing");
        assert!(stderr(&out).contains(&want), "{}", stderr(&out));
        let out = elsewhere(&["unlink"], unset);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let want = format!("a supervisor (pid {pid}) serves {q}; stop it");
        assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    }
    let out = elsewhere(&["submit", "--wait", "echo from elsewhere"], false);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains(" ok attempt=1 ") && text.trim_end().ends_with(" from elsewhere"),
        "{text}"
    );
    assert_eq!(other.leftovers(), Vec::<String>::new());
    sup.stop();
}

/// A worker started by hand, whose supervisor is then killed with -9: no supervisor will ever
/// send to its inbox again (the next one knows nothing of it), so it stops at once, says why,
/// and removes its inbox.
#[test]
fn a_worker_stops_when_its_supervisor_is_killed() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    let worker = testkit::spawn(&mut mq(&sb, &q, &["worker"]));
    sup.wait_for(|l| l.ends_with(" joined"));
    let sup_pid = sup.child.pid();
    kill(sup_pid, Signal::SIGKILL).unwrap();
    let status = worker.wait_timeout(WAIT).unwrap();
    let err = worker
        .stderr_lines()
        .unwrap()
        .rest(WAIT)
        .unwrap()
        .join("\n");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("the supervisor (pid {sup_pid}) of {q} is gone")),
        "{err}"
    );
    unlink_leftovers(&sb, &q);
}

/// The same for the workers the supervisor started: a supervisor killed with -9 leaves none
/// running (PR_SET_PDEATHSIG, and each watches the supervisor's pidfd).
#[test]
fn workers_do_not_outlive_a_killed_supervisor() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "2"]);
    let pids = sup.workers(2);
    kill(sup.child.pid(), Signal::SIGKILL).unwrap();
    for p in pids {
        assert!(wait_gone(p), "worker pid {p} outlived its supervisor");
    }
    unlink_leftovers(&sb, &q);
}

/// The supervisor's stdout is a pipe nobody reads. The test fills it to the last byte itself
/// (non-blocking writes through its own open of the pipe until even one byte is refused), so
/// the supervisor's next line finds no room for certain; then it gets more to say (garbage
/// in `NAME`, one line each) and a SIGTERM. It must still stop: exit 0, queues removed. Its
/// lines are dropped, never waited for.
#[test]
fn a_stalled_stdout_never_blocks_a_stop() {
    use nix::fcntl::OFlag;
    use nix::mqueue::{MQ_OFlag, mq_open, mq_send};
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    let sb = Sandbox::new();
    let q = queue();
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let sup = {
        let mut cmd = mq(&sb, &q, &["run", "--workers", "1", "--msgsize", "256"]);
        cmd.stdout(std::process::Stdio::from(wr.try_clone().unwrap()))
            .stderr(std::process::Stdio::piped());
        let opts = common::child::Options {
            deadline: Some(WAIT),
            own_group: true,
        };
        common::child::Supervised::spawn("supervisor", &mut cmd, opts).unwrap()
    };
    let mut reader = std::io::BufReader::new(std::fs::File::from(rd));
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("ready: "), "{first:?}");
    // From now on nobody reads the pipe. Fill it through an open file description of our own
    // (O_NONBLOCK on `wr` itself would be shared with the supervisor's stdout).
    let mut filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", wr.as_raw_fd()))
        .unwrap();
    drop(wr);
    for chunk in [4096, 1] {
        let bytes = vec![b'.'; chunk];
        loop {
            match filler.write(&bytes) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
    }
    // Something to say: each garbage task is a line ("malformed message: ...").
    let tasks = mq_open(
        q.as_str(),
        MQ_OFlag::O_WRONLY | MQ_OFlag::O_NONBLOCK | MQ_OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .unwrap();
    for _ in 0..10 {
        match mq_send(&tasks, b"\xff garbage", 0) {
            Ok(()) => {}
            // Full: the supervisor is not taking them (it would be, asleep in a blocking write).
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("mq_send: {e}"),
        }
    }
    nix::mqueue::mq_close(tasks).unwrap();
    kill(sup.pid(), Signal::SIGTERM).unwrap();
    let status = sup.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert_no_queues(&q);
    drop(reader);
}

/// The supervisor follows the workspace's daemon lifecycle (common::lifecycle): the test plays
/// a service manager, and hears READY=1 once a producer can submit, STOPPING=1 on SIGTERM.
#[test]
fn a_service_manager_hears_ready_and_stopping() {
    let sb = Sandbox::new();
    let q = queue();
    let manager = testkit::ServiceManager::bind(&sb);
    let mut cmd = mq(&sb, &q, &["run", "--workers", "1", "--msgsize", "256"]);
    cmd.env("NOTIFY_SOCKET", manager.path());
    let sup = testkit::spawn(&mut cmd);
    let pid = sup.pid();
    let what = format!("mqueue {q}");
    manager.expect_ready(pid, &what);
    // At that moment a producer succeeds.
    let out = run(&sb, &q, &["submit", "echo hi"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    testkit::expect_ready_line(&mut sup.stdout_lines().unwrap(), pid, &what);
    kill(pid, Signal::SIGTERM).unwrap();
    manager.expect_stopping();
    assert!(sup.wait_timeout(WAIT).unwrap().success());
    assert_no_queues(&q);
}

/// A worker started by hand that is killed right after its hello, before the supervisor
/// could watch it (made certain here: the hello names a pid that has exited, and its inbox
/// exists, as a killed worker leaves them): the supervisor removes the inbox it left.
#[test]
fn a_worker_dead_before_it_is_watched_leaves_no_inbox() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    // A pid that no longer runs: the one of a child we have reaped. (Recycled at once only on
    // a machine with pid_max reached; then the test fails loudly rather than passes.)
    let dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let inbox = format!("{q}-w{pid}");
    nix::mqueue::mq_close(make_queue(&inbox, 2, 256)).unwrap();
    let done = nix::mqueue::mq_open(
        format!("{q}-done").as_str(),
        nix::mqueue::MQ_OFlag::O_WRONLY,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .unwrap();
    let mut hello = vec![b'H', 1, 0, 0];
    hello.extend_from_slice(&i32::try_from(pid).unwrap().to_le_bytes());
    hello.extend_from_slice(&(-1i32).to_le_bytes());
    nix::mqueue::mq_send(&done, &hello, 0).unwrap();
    nix::mqueue::mq_close(done).unwrap();
    let line = sup.wait_for(|l| l.starts_with(&format!("hello from pid {pid}")));
    assert!(line.ends_with(&format!("removed {inbox}")), "{line}");
    assert!(!queue_exists(&inbox), "{inbox} is left");
    sup.stop();
}

/// A stop must end even if a worker never finishes: here it is frozen (SIGSTOP) holding a
/// task. After --stop-timeout the supervisor kills it, reports its task as left, removes the
/// queues and exits 0.
#[test]
fn a_stop_ends_even_with_a_frozen_worker() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1", "--stop-timeout", "0.5"]);
    let pid = sup.workers(1)[0];
    let mut submit = mq(&sb, &q, &["submit", "--wait", "sleep 60000"]);
    let submitter = testkit::spawn(&mut submit);
    let task = sup.wait_trace(|l| l.starts_with(&format!("[pid {pid} worker] task ")));
    let id = task.split(' ').nth(4).unwrap().to_owned();
    let _frozen = testkit::freeze(pid);
    kill(sup.child.pid(), Signal::SIGTERM).unwrap();
    let line = sup.wait_for(|l| l.starts_with(&format!("worker pid {pid} has not exited")));
    assert!(
        line.contains(&format!("(holding task {id}): killed")),
        "{line}"
    );
    let stopped = sup.finish_unchecked();
    assert!(
        stopped.contains(&format!("1 left queued ({id})")),
        "{stopped}"
    );
    assert_eq!(submitter.wait_timeout(WAIT).unwrap().code(), Some(1));
    assert_no_queues(&q);
}

/// At --stop-timeout, a result already sent is delivered, not thrown away as the result of a
/// task "left queued": the worker has finished, its result sits in NAME-done, and the
/// supervisor gives up on its workers. Made certain with ptrace: the supervisor, told to stop,
/// is held at the first thing it does once the stop has begun (writing its "stopping:" line,
/// the moment its --stop-timeout of 0 is over), and its worker sends its result meanwhile.
#[test]
fn a_result_sent_before_the_stop_timeout_is_delivered() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1", "--stop-timeout", "0"]);
    let pid = sup.workers(1)[0];
    let submitter = testkit::spawn(&mut mq(&sb, &q, &["submit", "--wait", "sleep 200"]));
    let task = sup.wait_trace(|l| l.starts_with(&format!("[pid {pid} worker] task ")));
    let id = task.split(' ').nth(4).unwrap().to_owned();
    let frozen = testkit::freeze(pid);
    let Some(mut tracer) = Tracer::seize(sup.child.pid()) else {
        return;
    };
    kill(sup.child.pid(), Signal::SIGTERM).unwrap();
    tracer.run_until("its \"stopping:\" line", |call, memory| {
        call.nr == nix::libc::SYS_write
            && call.ret.is_none()
            && call.args[2] >= 9
            && memory.peek(call.args[1], 9) == b"stopping:"
    });
    drop(frozen);
    let sent = format!("[pid {pid} worker] mq_send({q}-done, ");
    sup.wait_trace(|l| l.starts_with(&sent) && l.ends_with("-> ok"));
    tracer.detach();
    let stopped = sup.finish_unchecked();
    assert!(stopped.contains(" 0 left queued"), "{stopped}");
    let out = submitter.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert!(
        out.iter()
            .any(|l| l.starts_with(&format!("{id} ok attempt=1 ")) && l.ends_with("slept 200 ms")),
        "{out:?}"
    );
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    assert_no_queues(&q);
}

/// SIGHUP (the terminal was closed) stops the supervisor like SIGTERM: its workers stopped,
/// its queues removed, exit 0. The default action would kill it and leave the queues.
#[test]
fn sighup_stops_the_supervisor_cleanly() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    kill(sup.child.pid(), Signal::SIGHUP).unwrap();
    let stopped = sup.finish();
    assert!(stopped.starts_with("stopped "), "{stopped}");
}

/// `path`: where the supervisor's objects are, for scripts; its pid file is the one a running
/// supervisor writes, and `kill "$(cat "$(mqueue-demo path pid-file)")"` stops it.
#[test]
fn path_names_the_supervisors_objects() {
    let sb = Sandbox::new();
    let q = queue();
    let out = testkit::run(&mut mq(&sb, &q, &["path"]), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let text = testkit::stdout(&out);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        names,
        [
            "tasks", "results", "dead", "done", "record", "pid-file", "dir"
        ]
    );
    assert!(text.contains(&format!("tasks /dev/mqueue{q}\n")), "{text}");
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    let out = testkit::run(&mut mq(&sb, &q, &["path", "pid-file"]), b"");
    let pid_file = testkit::stdout(&out).trim_end().to_owned();
    let pid = std::fs::read_to_string(&pid_file).expect("the supervisor's pid file");
    assert_eq!(pid.trim(), sup.child.pid().to_string());
    sup.stop();
}
