//! Limits and bad input: each gets a clear one-line error naming the queue and the cause, a
//! non-zero exit, and nothing lost or leaked.

mod support;

use common::cleanup::{Object, Unlink};
use common::testkit::{self, Sandbox};
use support::*;

#[test]
fn oversize_task_is_refused_before_anything_is_sent() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0", "--msgsize", "128"]);
    let big = format!("echo {}", "x".repeat(200));
    // On the command line: all tasks are checked first, so not even the good one is sent.
    let out = run(&sb, &q, &["submit", "echo fine", &big], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("task 2") && err.contains("at most 128 (mq_msgsize); nothing was sent"),
        "{err}"
    );
    assert_eq!(depth(&sb, &q, &q), 0);
    // From stdin: that line is reported and skipped, the others are sent.
    let input = format!("echo one\n{big}\necho three\n");
    let out = run(&sb, &q, &["submit"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("task 2"), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);
    assert_eq!(depth(&sb, &q, &q), 2);
    sup.stop();
}

#[test]
fn full_queue_fails_after_the_timeout() {
    let sb = Sandbox::new();
    let q = queue();
    // No workers: nothing is taken, so three tasks fill a queue of depth 3.
    let sup = Supervisor::start(&sb, &q, &["--workers", "0", "--depth", "3"]);
    let out = run(&sb, &q, &["submit", "echo 1", "echo 2", "echo 3"], b"");
    assert!(out.status.success());
    for args in [
        &["submit", "--timeout", "0.2", "echo 4"][..],
        &["submit", "--wait", "--timeout", "0.2", "echo 4"],
    ] {
        let out = run(&sb, &q, args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "{q} is full (3 of 3 messages) and stayed full for 200ms"
            )),
            "{err}"
        );
        assert_eq!(stdout(&out), "", "{args:?}: nothing was sent");
    }
    assert_eq!(depth(&sb, &q, &q), 3);
    let stopped = sup.stop();
    assert!(stopped.contains("3 left queued"), "{stopped}");
}

#[test]
fn full_queue_without_timeout_waits_for_room() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "0", "--depth", "3"]);
    assert!(
        run(&sb, &q, &["submit", "echo 1", "echo 2", "echo 3"], b"")
            .status
            .success()
    );
    let mut submit = mq(&sb, &q, &["submit", "echo 4"]);
    let blocked = testkit::spawn(&mut submit);
    // One worker takes one task: room for the blocked producer, whose mq_send then returns.
    let out = run(&sb, &q, &["worker", "--max-tasks", "1"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    sup.wait_for(|l| l.ends_with(" joined"));
    assert!(blocked.wait_timeout(WAIT).unwrap().success());
    let id = blocked.stdout_lines().unwrap().rest(WAIT).unwrap();
    assert_eq!(id.len(), 1, "{id:?}");
    assert_eq!(depth(&sb, &q, &q), 3);
    sup.stop();
}

#[test]
fn depth_over_msg_max_is_explained() {
    let sb = Sandbox::new();
    let q = queue();
    // Over the kernel's hard ceiling (65536), so refused for root too.
    let out = run(&sb, &q, &["run", "--depth", "70000"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("mq_open {q}: Invalid argument: maxmsg 70000")),
        "{err}"
    );
    assert!(
        err.contains("/proc/sys/fs/mqueue/msg_max") && err.contains("--depth"),
        "{err}"
    );
    assert_no_queues(&q);
}

#[test]
fn no_supervisor_is_a_clear_error() {
    let sb = Sandbox::new();
    let q = queue();
    for args in [
        &["submit", "echo x"][..],
        &["submit", "--wait", "echo x"],
        &["worker"],
        &["results"],
    ] {
        let out = run(&sb, &q, args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("no supervisor serves {q}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_no_queues(&q);
}

/// A --timeout that is not a number of seconds is a usage error (exit 2), said before anything
/// looks for a supervisor: with none running, it is still the flag that is wrong.
#[test]
fn a_bad_timeout_is_a_usage_error_even_without_a_supervisor() {
    let sb = Sandbox::new();
    let q = queue();
    for bad in ["nan", "inf", "-1", "soon"] {
        let flag = format!("--timeout={bad}");
        let out = run(&sb, &q, &["submit", &flag, "echo x"], b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "--timeout {bad}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("invalid value '{bad}' for '--timeout <SECONDS>'"))
                && err.contains("expected seconds >= 0")
                && !err.contains("no supervisor"),
            "{err}"
        );
    }
    assert_no_queues(&q);
}

#[test]
fn bad_input_is_refused() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    for (task, why) in [
        ("frobnicate 1", "unknown task kind"),
        ("fib 100", "0 to 93"),
        ("sleep x", "sleep needs"),
        ("!12 echo", "priority \"12\""),
    ] {
        let out = run(&sb, &q, &["submit", task], b"");
        assert_eq!(out.status.code(), Some(1), "{task}");
        assert!(stderr(&out).contains(why), "{task}: {}", stderr(&out));
    }
    assert_eq!(
        run(&sb, &q, &["submit", "--priority", "10", "echo"], b"")
            .status
            .code(),
        Some(2)
    );
    let out = testkit::run(
        sb.command(BIN).args(["status", "--queue", "/elsewhere"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/ipc-demo-<word>"),
        "{}",
        stderr(&out)
    );
    assert_eq!(depth(&sb, &q, &q), 0);
    sup.stop();
}

/// Bytes in the task queue that are not a task (any process of ours may write there) are
/// reported and moved to the dead-letter queue; the supervisor goes on serving.
#[test]
fn garbage_in_the_task_queue_is_dead_lettered() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let mqd = nix::mqueue::mq_open(
        q.as_str(),
        nix::mqueue::MQ_OFlag::O_WRONLY,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .unwrap();
    // Garbage; a task header that claims more bytes than follow; a task with attempt 0.
    let mut attempt0 = vec![b'T', 1, 1, 0];
    attempt0.extend_from_slice(&[0; 12]);
    for msg in [
        &b"\x00garbage"[..],
        b"T\x01\x01\x01\0\0\0\0\0\0\0\0\0\0\x05\0ab",
        &attempt0,
    ] {
        nix::mqueue::mq_send(&mqd, msg, 0).unwrap();
    }
    nix::mqueue::mq_close(mqd).unwrap();
    for want in [
        "version 103, expected 1",
        "header says 16 + 0 + 5",
        "attempt 0",
    ] {
        let line = sup.wait_for(|l| l.contains(want));
        assert!(line.contains(&format!("moved to {q}-dead")), "{line}");
    }
    let out = run(&sb, &q, &["submit", "--wait", "echo still serving"], b"");
    assert!(stdout(&out).contains(" ok attempt=1 "), "{}", stdout(&out));
    assert_eq!(depth(&sb, &q, &format!("{q}-dead")), 3);
    let stopped = sup.stop();
    assert!(stopped.contains("3 malformed"), "{stopped}");
}

/// A client whose reply queue takes smaller messages than a result (made here by hand, as
/// another program's `submit --wait` could make it) hurts only itself: the result is sized for
/// the queue it goes to (its output cut to fit), or, when not even a result's 28-byte header
/// fits, dropped, said and counted. The supervisor, and the tasks queued, go on. Before, the
/// result was sized for the task queue, mq_send failed with EMSGSIZE, and the supervisor
/// exited, its guards removing its queues with every task in them.
#[test]
fn a_reply_queue_too_small_for_a_result_hurts_only_its_client() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    // Two clients' reply queues, named as a client may (NAME-r<pid>; submit --wait adds a stamp).
    let (tiny, small) = (format!("{q}-r1"), format!("{q}-r2"));
    let tiny_q = make_queue(&tiny, 2, 16);
    let small_q = make_queue(&small, 2, 48);
    let guards = [&tiny, &small].map(|n| Unlink::new(Object::Mqueue(n.clone())));
    send_to(&q, &echo_task(1, &tiny, b"hello, tiny client"));
    let line = sup.wait_for(|l| l.starts_with("result for task 0-1 dropped"));
    assert!(
        line.ends_with(&format!(
            "{tiny} takes messages of at most 16 bytes, and a result needs 28"
        )),
        "{line}"
    );
    send_to(&q, &echo_task(2, &small, b"an output longer than 20 bytes"));
    let result = receive_within(&small_q);
    assert!(result.len() <= 48, "{result:?}");
    assert_eq!(&result[..3], b"R\x01\x00", "an ok result: {result:?}");
    assert_eq!(&result[28..], b"an output l... (cut)");
    let out = run(&sb, &q, &["submit", "--wait", "echo still serving"], b"");
    assert!(stdout(&out).contains(" ok attempt=1 "), "{}", stderr(&out));
    for mqd in [tiny_q, small_q] {
        nix::mqueue::mq_close(mqd).unwrap();
    }
    drop(guards);
    let stopped = sup.stop();
    assert!(stopped.contains("1 results dropped"), "{stopped}");
}

/// POSIX queue names are shared by the whole machine: a queue at our name that belongs to
/// another user is refused, named with its owner (`fstat` on the descriptor). Making one needs
/// root (fchown), which CI has; run as another user, the test says it is skipped.
#[test]
fn someone_elses_queue_is_refused() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: making a queue owned by another user needs root");
        return;
    }
    let sb = Sandbox::new();
    let q = queue();
    let mqd = make_queue(&q, 10, 1024);
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::fchown(&mqd, Some(nobody), None).unwrap();
    nix::mqueue::mq_close(mqd).unwrap();
    let out = run(&sb, &q, &["run", "--workers", "0"], b"");
    nix::mqueue::mq_unlink(q.as_str()).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{q}: the queue belongs to uid 65534, not to us")),
        "{err}"
    );
    assert_no_queues(&q);
}

/// `--help` of every role shows how to use it, with at least one example command line.
#[test]
fn every_subcommand_help_has_an_example() {
    let sb = Sandbox::new();
    for sub in [
        "demo", "run", "worker", "submit", "results", "status", "purge", "unlink",
    ] {
        let out = testkit::run(sb.command(BIN).args([sub, "--help"]), b"");
        let text = stdout(&out);
        assert!(out.status.success(), "{sub}: {}", stderr(&out));
        assert!(
            text.contains("Example") && text.contains(&format!("mqueue-demo {sub}")),
            "{sub} --help has no example:\n{text}"
        );
    }
}

/// A queue of ours at our name, but that other users may open (here 0622: anyone can write
/// tasks, hellos and results into it), is not taken over: its messages cannot be trusted.
/// The queues the supervisor had made already are removed; the leftover is kept.
#[test]
fn a_leftover_others_can_open_is_refused() {
    let sb = Sandbox::new();
    let q = queue();
    let done = format!("{q}-done");
    let mqd = make_queue(&done, 10, 256);
    // The umask cannot interfere with fchmod.
    nix::sys::stat::fchmod(&mqd, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    nix::mqueue::mq_close(mqd).unwrap();
    let out = run(&sb, &q, &["run", "--workers", "0", "--msgsize", "256"], b"");
    let err = stderr(&out);
    let left = nix::mqueue::mq_unlink(done.as_str());
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{done}: mode 0622 lets other users open it")),
        "{err}"
    );
    assert_eq!(left, Ok(()), "the leftover was removed");
    assert_no_queues(&q);
}

/// Queues left by a supervisor killed with -9 hold messages of up to 512 bytes; a new one
/// started with --msgsize 256 would take a task its workers' inboxes cannot hold (and stall),
/// so it refuses and says which --msgsize to use. With that one, it takes them over.
#[test]
fn a_leftover_with_another_message_size_is_refused() {
    let sb = Sandbox::new();
    let q = queue();
    let mqd = make_queue(&q, 10, 512);
    // An echo task of 400 bytes.
    nix::mqueue::mq_send(&mqd, &echo_task(7, "", &[b'x'; 384]), 0).unwrap();
    nix::mqueue::mq_close(mqd).unwrap();

    let out = run(&sb, &q, &["run", "--workers", "1", "--msgsize", "256"], b"");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{q}: left by a supervisor that was killed, with messages of up to 512 bytes, not \
             --msgsize 256: start with --msgsize 512"
        )),
        "{err}"
    );
    assert_eq!(depth(&sb, &q, &q), 1, "the leftover and its task are kept");

    let sup = Supervisor::start(&sb, &q, &["--workers", "1", "--msgsize", "512"]);
    let out = run(&sb, &q, &["results", "--follow", "--count", "1"], b"");
    assert!(stdout(&out).contains(" ok attempt=1 "), "{}", stdout(&out));
    sup.stop();
}
