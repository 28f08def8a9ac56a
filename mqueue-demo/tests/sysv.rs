//! The same roles on System V message queues (`--sysv`): visible in `ipcs -q`, removed with
//! IPC_RMID on exit.

mod support;

use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, kill};
use support::tracer::Tracer;
use support::*;

/// The ids the supervisor published: `msgsize=N tasks=ID results=ID dead=ID done=ID`.
fn ids(sb: &Sandbox, q: &str) -> Vec<String> {
    let path = sb.runtime_dir().join(format!("{}.sysv", &q[1..]));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split_whitespace()
        .filter(|f| !f.starts_with("msgsize="))
        .map(|f| f.split_once('=').unwrap().1.to_owned())
        .collect()
}

/// `ipcs -q` rows as (key, id, messages).
fn ipcs() -> Vec<(String, String, String)> {
    let out = testkit::run(std::process::Command::new("ipcs").arg("-q"), b"");
    assert!(out.status.success(), "ipcs -q: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| l.starts_with("0x"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].to_owned(), f[5].to_owned())
        })
        .collect()
}

fn stop_and_check_removed(sb: &Sandbox, sup: Supervisor, ids: &[String]) -> String {
    let q = sup.queue.clone();
    let stopped = sup.stop();
    let left: Vec<_> = ipcs()
        .into_iter()
        .filter(|(_, id, _)| ids.contains(id))
        .collect();
    assert!(left.is_empty(), "System V queues left: {left:?}");
    assert!(!sb.runtime_dir().join(format!("{}.sysv", &q[1..])).exists());
    stopped
}

#[test]
fn sysv_queues_serve_in_priority_order_and_are_removed() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--sysv", "--workers", "0"]);
    let ids = ids(&sb, &q);
    assert_eq!(ids.len(), 4);
    for t in [
        "echo normal 1",
        "echo normal 2",
        "!9 echo urgent",
        "echo normal 3",
    ] {
        let out = run(&sb, &q, &["submit", "--sysv", t], b"");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // ipcs sees our queue: key 0x1dc0xxxx, 4 messages.
    let row = ipcs()
        .into_iter()
        .find(|(_, id, _)| *id == ids[0])
        .expect("tasks queue in ipcs -q");
    assert!(row.0.starts_with("0x1dc0"), "{row:?}");
    assert_eq!(row.2, "4");
    let status = stdout(&run(&sb, &q, &["status", "--sysv"], b""));
    assert!(
        status.contains(&format!("{q}: 4 messages waiting")),
        "{status}"
    );
    // msgrcv with a negative type: the urgent task first.
    let out = run(&sb, &q, &["worker", "--sysv", "--max-tasks", "1"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &sb,
        &q,
        &["results", "--sysv", "--follow", "--count", "1"],
        b"",
    );
    let text = stdout(&out);
    assert!(
        text.contains(" ok attempt=1 ") && text.trim_end().ends_with(" urgent"),
        "{text}"
    );
    let stopped = stop_and_check_removed(&sb, sup, &ids);
    assert!(stopped.contains("3 left queued"), "{stopped}");
}

/// SIGKILL the worker once it holds the task (its own trace says so): the replacement runs
/// it again as attempt 2, and it is reported once.
#[test]
fn sysv_worker_killed_holding_a_task_loses_nothing() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--sysv", "--workers", "1"]);
    let ids = ids(&sb, &q);
    let worker = sup.workers(1)[0];
    let mut submit = mq(&sb, &q, &["submit", "--sysv", "--wait", "sleep 300"]);
    let submitter = testkit::spawn(&mut submit);
    sup.wait_trace(|l| l.starts_with(&format!("[pid {worker} worker] task ")));
    kill(worker, Signal::SIGKILL).unwrap();
    let line = sup.wait_for(|l| l.starts_with(&format!("worker pid {worker} ")));
    assert!(
        line.contains("was killed by SIGKILL holding task"),
        "{line}"
    );
    let mut out = submitter.stdout_lines().unwrap();
    let line = out.wait_for(|l| l.contains(" ok "), WAIT).unwrap();
    assert!(
        line.contains(" ok attempt=2 ") && line.ends_with("slept 300 ms"),
        "{line}"
    );
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    let stopped = stop_and_check_removed(&sb, sup, &ids);
    assert!(
        stopped.contains("1 retried") && stopped.contains("1 worker deaths"),
        "{stopped}"
    );
}

/// A message longer than the queue's message size (anyone of ours may send up to msgmax
/// bytes): msgrcv without MSG_NOERROR fails with E2BIG and leaves it at the head of the queue,
/// so the supervisor could take nothing else. It is dead-lettered (cut), and the supervisor
/// goes on serving.
#[test]
fn sysv_an_oversized_message_is_dead_lettered() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--sysv", "--workers", "1"]);
    let ids = ids(&sb, &q);
    let tasks: i32 = ids[0].parse().unwrap();
    // 1000 bytes, where messages are of at most 256 (msgsize).
    sysv_send(tasks, &[b'T'; 1000], "1000 bytes");
    let line = sup.wait_for(|l| l.contains("messages (cut)"));
    assert!(
        line.contains("longer than the queue's 256-byte messages")
            && line.ends_with(&format!("(256 bytes) in {q}; moved to {q}-dead")),
        "{line}"
    );
    let out = run(
        &sb,
        &q,
        &["submit", "--sysv", "--wait", "echo still serving"],
        b"",
    );
    assert!(stdout(&out).contains(" ok attempt=1 "), "{}", stderr(&out));
    let status = stdout(&run(&sb, &q, &["status", "--sysv"], b""));
    assert!(
        status.contains(&format!("{q}-dead: 1 messages waiting (256 of ")),
        "{status}"
    );
    let stopped = stop_and_check_removed(&sb, sup, &ids);
    assert!(stopped.contains("1 malformed"), "{stopped}");
}

/// A worker that leaves cleanly (SIGTERM) just after its supervisor has sent it its next task
/// must not cost that task an attempt. System V removal is immediate (IPC_RMID destroys the
/// messages in the queue), so a worker that removed its own inbox on the way out took that
/// task with it, and it came back as attempt 2. The worker leaves its inbox to the supervisor,
/// which takes back what was never received (same attempt) and then removes it. Made certain
/// with ptrace: the worker is held right after the msgsnd of its result until the supervisor
/// has sent it the next task.
#[test]
fn sysv_a_worker_leaving_cleanly_costs_its_next_task_no_attempt() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--sysv", "--workers", "1"]);
    let ids = ids(&sb, &q);
    let worker = sup.workers(1)[0];
    // The supervisor opens the worker's inbox by its id, from the hello.
    let opened = sup.wait_trace(|l| l.contains(&format!("msgctl({q}-w{worker} = id ")));
    let inbox = opened
        .split("= id ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let inbox = inbox.to_owned();
    let mut submit = mq(
        &sb,
        &q,
        &["submit", "--sysv", "--wait", "sleep 100", "echo second"],
    );
    let submitter = testkit::spawn(&mut submit);
    sup.wait_trace(|l| l.starts_with(&format!("[pid {worker} worker] task ")));
    let Some(mut tracer) = Tracer::seize(worker) else {
        return;
    };
    kill(worker, Signal::SIGTERM).unwrap();
    tracer.run_until("the msgsnd of its result", |call, _| {
        call.nr == nix::libc::SYS_msgsnd && call.ret == Some(0)
    });
    let handed = format!("msgsnd({q}-w{worker}, ");
    sup.wait_trace(|l| l.contains(" run] ") && l.contains(&handed) && l.ends_with("-> ok"));
    tracer.detach();
    let line = sup.wait_for(|l| l.starts_with(&format!("worker pid {worker} ")));
    assert!(
        line.contains("exited with status 0 before it received task"),
        "{line}"
    );
    let out = submitter.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert!(
        out.iter()
            .any(|l| l.contains(" ok attempt=1 ") && l.ends_with(" second")),
        "{out:?}"
    );
    assert!(submitter.wait_timeout(WAIT).unwrap().success());
    stop_and_check_removed(&sb, sup, &ids);
    assert!(
        ipcs().iter().all(|(_, id, _)| *id != inbox),
        "the worker's inbox (id {inbox}) was left"
    );
}

/// A System V client that removes its reply queue (IPC_RMID) while the supervisor holds a
/// result for it hurts only itself: that result is dropped, said and counted (the queue is
/// found gone before the result goes out, or msgsnd fails with EINVAL or EIDRM), and the
/// supervisor goes on. Before, it exited, its guards removing
/// its queues with every task in them. Made certain: two tasks answer to the client's queue;
/// the first (a long sleep) is in a worker's hands while the second's result is delivered, so
/// the supervisor has the queue open; the queue is removed; then the first's result comes (the
/// test sends it into NAME-done itself, in that worker's name, rather than wait a minute).
#[test]
fn sysv_a_reply_queue_removed_while_a_result_waits_hurts_only_its_client() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--sysv", "--workers", "2"]);
    let ids = ids(&sb, &q);
    let (tasks, done): (i32, i32) = (ids[0].parse().unwrap(), ids[3].parse().unwrap());
    let client = ClientQueue::new();
    let reply = format!("sysv:{}", client.0);
    sysv_send(tasks, &task(2, 1, &reply, b"60000"), "sleep");
    let ran = sup.wait_trace(|l| l.contains(" worker] task 0-1 "));
    let runner = ran.split(' ').nth(1).unwrap().trim_end_matches(']');
    let runner = nix::unistd::Pid::from_raw(runner.parse().unwrap());
    sysv_send(tasks, &echo_task(2, &reply, b"second"), "echo");
    let delivered = format!("msgsnd({reply}, ");
    sup.wait_trace(|l| l.contains(&delivered) && l.ends_with("-> ok"));
    drop(client);
    sysv_send(done, &ok_result(1, runner, b"slept"), "result");
    let line = sup.wait_for(|l| l.starts_with("result for task 0-1 dropped"));
    assert!(line.contains(&format!("{reply}: ")), "{line}");
    // The worker that really runs the sleep is not needed any more.
    kill(runner, Signal::SIGKILL).unwrap();
    sup.wait_for(|l| l.starts_with(&format!("worker pid {runner} was killed")));
    let out = run(
        &sb,
        &q,
        &["submit", "--sysv", "--wait", "echo still serving"],
        b"",
    );
    assert!(stdout(&out).contains(" ok attempt=1 "), "{}", stderr(&out));
    let stopped = stop_and_check_removed(&sb, sup, &ids);
    assert!(stopped.contains("1 results dropped"), "{stopped}");
}

/// A System V queue of a client of ours (`IPC_PRIVATE`, 0600), removed when dropped.
struct ClientQueue(i32);

impl ClientQueue {
    fn new() -> ClientQueue {
        // SAFETY: msgget takes two integers and touches no memory of ours.
        let id = unsafe { nix::libc::msgget(nix::libc::IPC_PRIVATE, nix::libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
        ClientQueue(id)
    }
}

impl Drop for ClientQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer argument.
        unsafe { nix::libc::msgctl(self.0, nix::libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// msgsnd `text` with type 10 (priority 0) to queue `id`; `what` names it in a failure.
fn sysv_send(id: i32, text: &[u8], what: &str) {
    let mut buf = nix::libc::c_long::to_ne_bytes(10).to_vec();
    buf.extend_from_slice(text);
    // SAFETY: `buf` holds an mtype followed by `text.len()` bytes, as msgsnd reads it.
    let rc = unsafe { nix::libc::msgsnd(id, buf.as_ptr().cast(), text.len(), 0) };
    assert_eq!(rc, 0, "msgsnd {what}: {}", std::io::Error::last_os_error());
}

#[test]
fn sysv_full_queue_fails_after_the_timeout() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--sysv", "--workers", "0", "--msgsize", "1024"]);
    let ids = ids(&sb, &q);
    // A System V queue fills by bytes (msg_qbytes, 16384 by default), not by messages.
    let task = format!("echo {}", "x".repeat(900));
    let mut failed = None;
    for i in 0..40 {
        let out = run(
            &sb,
            &q,
            &["submit", "--sysv", "--timeout", "0.1", &task],
            b"",
        );
        if !out.status.success() {
            failed = Some((i, stderr(&out)));
            break;
        }
    }
    let (sent, err) = failed.expect("the queue never filled up");
    assert!(sent > 0, "{err}");
    assert!(
        err.contains(&format!("{q} is full ({sent} messages"))
            && err.contains("stayed full for 100ms"),
        "{err}"
    );
    stop_and_check_removed(&sb, sup, &ids);
}

#[test]
fn sysv_submit_wait_and_the_demo() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--sysv", "--workers", "2"]);
    let ids = ids(&sb, &q);
    let out = run(
        &sb,
        &q,
        &["submit", "--sysv", "--wait", "fib 20", "fail x", "echo hi"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(" ok attempt=1 ") && text.contains(" 6765"),
        "{text}"
    );
    assert!(text.contains(" dead attempt=5 "), "{text}");
    stop_and_check_removed(&sb, sup, &ids);

    let out = testkit::run(
        sb.command(BIN).args(["demo", "--sysv", "--tasks", "200"]),
        b"",
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("ok: 200/200 tasks"),
        "{text}"
    );
}

/// Workers that keep dying before they are ready (here: the ids file they read at start is
/// broken) are restarted with a growing back-off, not in a fork loop; once the cause is gone,
/// the next one serves.
#[test]
fn workers_dying_at_start_are_restarted_with_back_off() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["-v", "--sysv", "--workers", "1"]);
    let ids = ids(&sb, &q);
    let worker = sup.workers(1)[0];
    // Its hello sent, so it has read the ids file: the garbage below is for the next ones.
    sup.wait_trace(|l| l.starts_with(&format!("[pid {worker} worker] msgsnd(")));
    let file = sb.runtime_dir().join(format!("{}.sysv", &q[1..]));
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, "garbage\n").unwrap();
    kill(worker, Signal::SIGKILL).unwrap();
    sup.wait_for(|l| l.ends_with("died before it was ready; next one in 100ms"));
    sup.wait_for(|l| l.ends_with("died before it was ready; next one in 200ms"));
    // Put the file back (atomically, as the supervisor wrote it): the next worker serves.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, good).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let out = run(&sb, &q, &["submit", "--sysv", "--wait", "echo back"], b"");
    assert!(
        stdout(&out).contains(" ok attempt=1 "),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    stop_and_check_removed(&sb, sup, &ids);
}
