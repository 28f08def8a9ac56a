//! The supervisor's own kill -9: the next supervisor gives out again every task the killed one
//! held (in a worker's hands, in a worker's inbox, answered with the result waiting for room,
//! or taken off the queue at the instant of the kill), and a producer waiting with `--wait`
//! across the crash gets each result exactly once.

mod support;

use std::time::{Duration, Instant};

use common::cleanup::{Object, Unlink};
use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::tracer::Tracer;
use support::*;

/// SIGKILL the supervisor and wait until it is gone (its workers stop by themselves).
fn kill_9(sup: &Supervisor) {
    kill(sup.child.pid(), Signal::SIGKILL).unwrap();
    sup.child.wait_timeout(WAIT).unwrap();
}

/// The line a supervisor says, before its "ready" line, when it takes a killed one's record
/// over.
fn took_over(sup: &Supervisor, q: &str, tasks: usize) {
    let seen = sup.stdout.seen();
    let line = seen
        .iter()
        .find(|l| l.starts_with(&format!("taking over {q}-held, ")))
        .unwrap_or_else(|| panic!("no taking over line: {seen:?}"));
    assert!(
        line.ends_with(&format!("{tasks} tasks it held go out again")),
        "{line}"
    );
}

/// The supervisor is killed at the exact instant a task has left the task queue: stopped by
/// ptrace at the exit of the `mq_receive` that took it, then SIGKILLed before one more
/// instruction. The task is not lost: the kernel wrote it into the record (shared memory) in
/// that very call, and the next supervisor runs it, once, for the producer that waited.
#[test]
fn a_task_taken_at_the_instant_of_the_kill_is_not_lost() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let worker = sup.workers(1)[0];
    // The descriptor of the task queue, from the supervisor's own trace.
    let opened = sup.wait_trace(|l| l.contains(&format!("mq_open({q}, O_RDONLY|O_CREAT")));
    let fd: u64 = opened.rsplit(' ').next().unwrap().parse().unwrap();
    // Its worker's hello received: the supervisor takes the next task as soon as it comes.
    sup.wait_trace(|l| l.contains(&format!("mq_open({q}-w{worker}, O_RDWR)")));
    let Some(mut tracer) = Tracer::seize(sup.child.pid()) else {
        return;
    };
    let submitter = testkit::spawn(&mut mq(&sb, &q, &["submit", "--wait", "echo survived"]));
    tracer.run_until("the mq_receive that takes the task", |call, _| {
        call.nr == nix::libc::SYS_mq_timedreceive
            && call.args[0] == fd
            && call.ret.is_some_and(|n| n > 0)
    });
    kill(sup.child.pid(), Signal::SIGKILL).unwrap();
    drop(tracer);
    sup.child.wait_timeout(WAIT).unwrap();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    took_over(&sup, &q, 1);
    let out = submitter.stdout_lines().unwrap().rest(WAIT).unwrap();
    let results: Vec<&String> = out.iter().filter(|l| l.contains(" ok ")).collect();
    assert_eq!(results.len(), 1, "{out:?}");
    assert!(results[0].contains(" ok attempt=1 ") && results[0].ends_with(" survived"));
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    sup.stop();
}

/// A task in a worker's hands (the worker frozen in the middle of it) when the supervisor is
/// killed: the next one gives it out again, with the same attempt number (the task did not
/// fail; its supervisor died), and the producer that waited gets its result once.
#[test]
fn a_task_in_a_workers_hands_survives_the_supervisors_kill() {
    for sysv in [false, true] {
        let sb = Sandbox::new();
        let q = queue();
        let kind: &[&str] = if sysv { &["--sysv"] } else { &[] };
        let mut sup = Supervisor::start(&sb, &q, &[&["-v", "--workers", "1"], kind].concat());
        let worker = sup.workers(1)[0];
        let mut submit = mq(
            &sb,
            &q,
            &[&["submit", "--wait", "sleep 300"], kind].concat(),
        );
        let submitter = testkit::spawn(&mut submit);
        sup.wait_trace(|l| l.starts_with(&format!("[pid {worker} worker] task ")));
        let frozen = testkit::freeze(worker);
        kill_9(&sup);
        // The old worker is frozen no more: stopped in a process group whose leader died, it
        // was sent SIGHUP and SIGCONT by the kernel, beside its parent-death SIGTERM. One
        // request to stop, not two (which would exit at once): it leaves, and removes its
        // inbox itself, before any new supervisor could.
        drop(frozen);
        assert!(wait_gone(worker), "the old worker stops");
        if sysv {
            assert_eq!(
                sysv_inbox_of(worker),
                Vec::<String>::new(),
                "its inbox is left"
            );
        } else {
            let inbox = format!("{q}-w{worker}");
            assert!(!queue_exists(&inbox), "{inbox} is left");
        }
        let sup = Supervisor::start(&sb, &q, &[&["--workers", "1"], kind].concat());
        took_over(&sup, &q, 1);
        let out = submitter.stdout_lines().unwrap().rest(WAIT).unwrap();
        let results: Vec<&String> = out.iter().filter(|l| l.contains(" ok ")).collect();
        assert_eq!(results.len(), 1, "sysv {sysv}: {out:?}");
        assert!(
            results[0].contains(" ok attempt=1 ") && results[0].ends_with(" slept 300 ms"),
            "{results:?}"
        );
        assert!(submitter.wait_timeout(WAIT).unwrap().success());
        sup.stop();
        if sysv {
            assert_eq!(
                sysv_queues_used_by(worker),
                Vec::<String>::new(),
                "its inbox is left"
            );
        }
    }
}

/// A task in a worker's inbox, not yet received (the worker frozen, idle), when the supervisor
/// is killed: the worker leaves (its supervisor is gone) and removes its inbox, task and all;
/// the record still has it, and the next supervisor gives it out again.
#[test]
fn a_task_in_a_workers_inbox_survives_the_supervisors_kill() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let worker = sup.workers(1)[0];
    sup.wait_trace(|l| l.contains(&format!("mq_open({q}-w{worker}, O_RDWR)")));
    let frozen = testkit::freeze(worker);
    let submitter = testkit::spawn(&mut mq(&sb, &q, &["submit", "--wait", "echo in the inbox"]));
    sup.wait_trace(|l| l.contains(&format!("mq_send({q}-w{worker}, ")));
    kill_9(&sup);
    drop(frozen);
    assert!(wait_gone(worker), "the old worker stops");
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    took_over(&sup, &q, 1);
    let out = submitter.stdout_lines().unwrap().rest(WAIT).unwrap();
    let results: Vec<&String> = out.iter().filter(|l| l.contains(" ok ")).collect();
    assert_eq!(results.len(), 1, "{out:?}");
    assert!(results[0].contains(" ok attempt=1 ") && results[0].ends_with(" in the inbox"));
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    sup.stop();
}

/// A result waiting for room in a full reply queue when the supervisor is killed: its task is
/// still in the record (a task leaves it only once its result is in a queue), so the next
/// supervisor runs it again and delivers it. The client here is played by hand: a reply queue
/// of depth 1, two tasks; the first result fills it, the second waits (mq_send: EAGAIN).
#[test]
fn a_result_waiting_for_room_survives_the_supervisors_kill() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let reply = format!("{q}-r1");
    let client = make_queue(&reply, 1, 256);
    let _removed = Unlink::new(Object::Mqueue(reply.clone()));
    send_to(&q, &echo_task(1, &reply, b"first"));
    send_to(&q, &echo_task(2, &reply, b"second"));
    sup.wait_trace(|l| l.contains(&format!("mq_send({reply}, ")) && l.contains("EAGAIN"));
    kill_9(&sup);
    // What the killed supervisor held, as `status` shows it: the task whose result waits.
    let status = stdout(&run(&sb, &q, &["status"], b""));
    assert!(
        status.contains("supervisor: none running")
            && status.contains(&format!("{q}-held: 1 tasks held by the supervisor")),
        "{status}"
    );
    let result = |msg: Vec<u8>| {
        let id = u64::from_le_bytes(msg[4..12].try_into().unwrap());
        (id, String::from_utf8(msg[28..].to_vec()).unwrap())
    };
    assert_eq!(result(receive_within(&client)), (1, "first".to_owned()));
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    took_over(&sup, &q, 1);
    assert_eq!(result(receive_within(&client)), (2, "second".to_owned()));
    nix::mqueue::mq_close(client).unwrap();
    drop(_removed);
    let stopped = sup.stop();
    assert!(
        stopped.contains("took 0 tasks, 1 results") && stopped.contains(" 0 left queued"),
        "{stopped}"
    );
}

/// A start that fails after it has taken a killed supervisor's leftovers over (here one of its
/// queues was made writable by others meanwhile, which is refused) leaves them as it found
/// them: the task that was queued and the task that was held both come back, once each, when a
/// later start succeeds: a failed start removes nothing it took over.
#[test]
fn a_failed_start_keeps_a_killed_supervisors_tasks() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--workers", "1"]);
    let worker = sup.workers(1)[0];
    let mut submit = mq(&sb, &q, &["submit", "--wait", "sleep 200", "echo queued"]);
    let submitter = testkit::spawn(&mut submit);
    sup.wait_trace(|l| l.starts_with(&format!("[pid {worker} worker] task ")));
    kill_9(&sup);
    assert!(wait_gone(worker), "the old worker stops");
    let chmod = |mode: u32| {
        let done = format!("{q}-done");
        let mqd = nix::mqueue::mq_open(
            done.as_str(),
            nix::mqueue::MQ_OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
            None,
        )
        .unwrap();
        nix::sys::stat::fchmod(&mqd, nix::sys::stat::Mode::from_bits_truncate(mode)).unwrap();
        nix::mqueue::mq_close(mqd).unwrap();
    };
    chmod(0o622);
    let out = run(&sb, &q, &["run", "--workers", "1", "--msgsize", "256"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("mode 0622 lets other users open it"),
        "{}",
        stderr(&out)
    );
    chmod(0o600);
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    took_over(&sup, &q, 1);
    let out = submitter.stdout_lines().unwrap().rest(WAIT).unwrap();
    let results: Vec<&String> = out.iter().filter(|l| l.contains(" ok ")).collect();
    assert_eq!(results.len(), 2, "{out:?}");
    assert!(
        results.iter().any(|l| l.ends_with(" slept 200 ms")),
        "{out:?}"
    );
    assert!(results.iter().any(|l| l.ends_with(" queued")), "{out:?}");
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    sup.stop();
}

/// The torture: 2000 tasks from 2 `submit --wait` producers while the supervisor is killed
/// with -9 every 300 ms (once it has delivered something since it started: the run always
/// moves on, however slow the machine) and started again, and one of its workers is killed in
/// between. Every id comes back exactly once at the producer that sent it.
#[test]
fn two_thousand_tasks_survive_a_supervisor_killed_every_300ms() {
    const PER_PRODUCER: usize = 1000;
    const KILL_EVERY: Duration = Duration::from_millis(300);
    let sb = Sandbox::new();
    let q = queue();
    let deadline = Duration::from_secs(180);
    let mut producers = Vec::new();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "4"]);
    for p in 0..2 {
        // Every other task takes 10 ms: the run lasts a few seconds even on a fast machine,
        // and a kill finds tasks in workers' hands.
        let input: String = (0..PER_PRODUCER)
            .map(|i| match i % 2 {
                0 => format!("echo p{p} task {i}\n"),
                _ => "sleep 10\n".to_owned(),
            })
            .collect();
        let mut cmd = mq(&sb, &q, &["submit", "--wait"]);
        cmd.stdin(std::process::Stdio::piped());
        let child = testkit::spawn_with_deadline(&mut cmd, deadline);
        let mut stdin = child.take_stdin().unwrap();
        let feeder =
            std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
        let lines = child.stdout_lines().unwrap();
        producers.push((child, lines, feeder));
    }
    let mut kills = 0;
    let mut worker_kills = 0;
    let start = Instant::now();
    loop {
        // Run this supervisor for KILL_EVERY, and until some result has come out of it.
        let born = Instant::now();
        let mut delivered = false;
        let mut worker_killed = false;
        while born.elapsed() < KILL_EVERY || !delivered {
            for (_, lines, _) in &mut producers {
                while let Ok(Some(line)) = lines.next_line(Duration::from_millis(5)) {
                    delivered |= line.contains(' ');
                }
            }
            if producers
                .iter()
                .all(|(c, ..)| c.try_wait().unwrap().is_some())
            {
                break;
            }
            if !worker_killed && born.elapsed() >= KILL_EVERY / 2 {
                if let Some(&victim) = children(sup.child.pid()).first() {
                    if kill(victim, Signal::SIGKILL).is_ok() {
                        worker_kills += 1;
                    }
                }
                worker_killed = true;
            }
            assert!(
                start.elapsed() < deadline,
                "the run did not end in {deadline:?}"
            );
        }
        if producers
            .iter()
            .all(|(c, ..)| c.try_wait().unwrap().is_some())
        {
            break;
        }
        kill_9(&sup);
        kills += 1;
        sup = Supervisor::start(&sb, &q, &["--workers", "4"]);
    }
    for (child, mut lines, feeder) in producers {
        feeder.join().unwrap().unwrap();
        lines.rest(WAIT).unwrap();
        let status = child.wait_timeout(WAIT).unwrap();
        assert_each_id_once(lines.seen(), PER_PRODUCER);
        let err = child.stderr_lines().unwrap().rest(WAIT).unwrap().join("\n");
        assert!(status.success(), "{status:?}: {err}");
    }
    let stopped = sup.stop();
    assert!(kills >= 2, "the supervisor was killed {kills} times only");
    eprintln!("supervisor killed {kills} times, {worker_kills} workers killed; {stopped}");
}

/// The System V queues that process `pid` was the last to receive from (ipcs -q -p: msqid,
/// owner, lspid, lrpid): a worker's inbox.
fn sysv_inbox_of(pid: Pid) -> Vec<String> {
    let out = testkit::run(std::process::Command::new("ipcs").args(["-q", "-p"]), b"");
    let pid = pid.to_string();
    testkit::stdout(&out)
        .lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(pid.as_str()))
        .map(str::to_owned)
        .collect()
}

/// The System V queues that process `pid` was the last to send to or receive from (ipcs -q -p).
fn sysv_queues_used_by(pid: Pid) -> Vec<String> {
    let out = testkit::run(std::process::Command::new("ipcs").args(["-q", "-p"]), b"");
    let pid = pid.to_string();
    testkit::stdout(&out)
        .lines()
        .filter(|l| l.split_whitespace().skip(2).any(|f| f == pid))
        .map(str::to_owned)
        .collect()
}
