//! Every role's exit status when a stop signal comes (`common::error`, "Exit status"): 0 for
//! a role whose job is to run until it is asked to stop (the supervisor, a worker); 128 + the
//! signal's number for a run stopped before it finished (the demo, `submit --wait`, `results
//! --follow`), after cleaning up; and a role that has nothing to clean up yet dies of it.

mod support;

use std::process::Stdio;

use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::*;

const STOPS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The demo stopped mid-run (its producers still sending): every role it started stops, the
/// queues, the record and the pid file are removed, and it says so in its last line and
/// exits 128 + N; no `ok:` line.
#[test]
fn a_stop_signal_mid_run_stops_every_role_leaves_nothing_and_exits_128_plus_n() {
    for sig in STOPS {
        let sb = Sandbox::new();
        let mut cmd = sb.command(BIN);
        cmd.args(["demo", "--tasks", "1000000", "--workers", "2"]);
        let demo = testkit::spawn(&mut cmd);
        let mut out = demo.stdout_lines().unwrap();
        let step1 = out.wait_for(|l| l.starts_with("1. "), WAIT).unwrap();
        let sup = Pid::from_raw(step1.split(' ').nth(3).unwrap().parse().unwrap());
        let queue = step1.rsplit(' ').next().unwrap().to_owned();
        let step2 = out.wait_for(|l| l.starts_with("2. "), WAIT).unwrap();
        let (_, pids) = step2.split_once("(pids ").unwrap();
        let mut roles: Vec<Pid> = pids
            .split(')')
            .next()
            .unwrap()
            .split(", ")
            .map(|p| Pid::from_raw(p.parse().unwrap()))
            .collect();
        roles.extend(children(sup));
        roles.push(sup);
        assert!(roles.len() >= 5, "{roles:?}");
        // What a terminal does on Ctrl-C: the signal to the demo's process group (its roles
        // have groups of their own).
        demo.signal(sig).unwrap();
        let status = demo.wait_timeout(WAIT).unwrap();
        let rest = out.rest(WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {rest:?}");
        let last = format!("interrupted by {sig} before the check was done");
        assert_eq!(rest.last(), Some(&last), "{rest:?}");
        assert!(!rest.iter().any(|l| l.starts_with("ok:")), "{rest:?}");
        for pid in roles {
            assert!(wait_gone(pid), "{sig}: pid {pid} outlived the demo");
        }
        assert_eq!(sb.leftovers(), Vec::<String>::new(), "{sig}");
        assert_no_queues(&queue);
    }
}

/// The supervisor's job is to serve until it is asked to stop: SIGINT, SIGTERM or SIGHUP to
/// its process group (a terminal's Ctrl-C or hangup reaches its workers too) stops it, and it
/// exits 0, its queues removed.
#[test]
fn the_supervisor_asked_to_stop_exits_0() {
    let sb = Sandbox::new();
    for sig in STOPS {
        let q = queue();
        let sup = Supervisor::start(&sb, &q, &["--workers", "2"]);
        let stopped = sup.stop_with(sig);
        assert!(
            stopped.starts_with(&format!("stopped ({sig}): ")),
            "{stopped}"
        );
    }
}

/// A worker started by hand serves until it is asked to stop: SIGINT, SIGTERM or SIGHUP, and
/// it exits 0, its inbox removed.
#[test]
fn a_worker_asked_to_stop_exits_0_and_removes_its_inbox() {
    let sb = Sandbox::new();
    let q = queue();
    let mut sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    for sig in STOPS {
        let worker = testkit::spawn(&mut mq(&sb, &q, &["worker"]));
        let pid = worker.pid();
        sup.wait_for(|l| l == format!("worker pid {pid} joined"));
        kill(pid, sig).unwrap();
        let status = worker.wait_timeout(WAIT).unwrap();
        let out = worker.stdout_lines().unwrap().rest(WAIT).unwrap();
        assert_eq!(status.code(), Some(0), "{sig}: {out:?}");
        let inbox = format!("{q}-w{pid}");
        assert!(
            out.last()
                .is_some_and(|l| l.ends_with(&format!("removed {inbox}"))),
            "{out:?}"
        );
        assert!(!queue_exists(&inbox), "{inbox} is left");
    }
    sup.stop();
}

/// `submit --wait` stopped while it waits for its results: it says what was not done, removes
/// its reply queue and exits 128 + N.
#[test]
fn submit_wait_stopped_by_a_signal_removes_its_reply_queue_and_exits_128_plus_n() {
    let sb = Sandbox::new();
    let q = queue();
    // No workers: the task waits in the queue, and its result never comes.
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    for sig in STOPS {
        let submit = testkit::spawn(&mut mq(&sb, &q, &["submit", "--wait", "echo never"]));
        let mut out = submit.stdout_lines().unwrap();
        out.wait_for(|l| !l.contains(' '), WAIT).unwrap();
        if let Some(made) = reply_queues(&q, submit.pid()) {
            assert_eq!(made.len(), 1, "{made:?}");
        }
        kill(submit.pid(), sig).unwrap();
        let status = submit.wait_timeout(WAIT).unwrap();
        let err = submit.stderr_lines().unwrap().rest(WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {err:?}");
        assert_eq!(
            err,
            [
                "mqueue-demo: 0 tasks not sent, 1 results not received".to_owned(),
                format!("mqueue-demo: interrupted by {sig}"),
            ]
        );
        if let Some(left) = reply_queues(&q, submit.pid()) {
            assert_eq!(left, Vec::<String>::new(), "{sig}");
        }
    }
    let stopped = sup.stop();
    assert!(stopped.contains("3 left queued"), "{stopped}");
}

/// `submit --wait` reads all of stdin before it catches stop signals (a read of stdin would be
/// restarted after a handler: Ctrl-C would go unheard) and before it makes its reply queue:
/// stopped while it waits for a line, it dies of the signal and leaves nothing behind.
#[test]
fn submit_wait_stopped_while_it_reads_stdin_leaves_no_reply_queue() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    for sig in STOPS {
        let mut cmd = mq(&sb, &q, &["submit", "--wait"]);
        cmd.stdin(Stdio::piped());
        let submit = testkit::spawn(&mut cmd);
        let mut stdin = submit.take_stdin().unwrap();
        std::io::Write::write_all(&mut stdin, b"echo one\n").unwrap();
        // Asleep in read(0, ...): waiting for the next line.
        let reading = || {
            testkit::syscall(submit.pid())
                .is_some_and(|(nr, args)| nr == nix::libc::SYS_read && args.first() == Some(&0))
        };
        while !reading() {
            assert!(submit.try_wait().unwrap().is_none(), "submit exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        kill(submit.pid(), sig).unwrap();
        let status = submit.wait_timeout(WAIT).unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(sig as i32),
            "{status:?}"
        );
        match reply_queues(&q, submit.pid()) {
            Some(left) => assert_eq!(left, Vec::<String>::new(), "{sig}"),
            None => eprintln!(
                "SKIPPED the reply-queue check of {sig}: {}",
                common::names::MQUEUE_NOT_MOUNTED
            ),
        }
        drop(stdin);
    }
    let stopped = sup.stop();
    assert!(stopped.contains("0 left queued"), "{stopped}");
}

/// `results --follow` runs until it is stopped, as `tail -f` does, and exits 128 + N then;
/// its registration is still in place (no notification came), so it must leave, not
/// register again (which fails with EBUSY, as if another process held the queue).
#[test]
fn results_follow_stopped_by_a_signal_exits_128_plus_n() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "0"]);
    for sig in STOPS {
        let follower = testkit::spawn(&mut mq(&sb, &q, &["-v", "results", "--follow"]));
        let mut trace = follower.stderr_lines().unwrap();
        trace
            .wait_for(
                |l| l.contains("mq_notify(") && l.ends_with("registered"),
                WAIT,
            )
            .unwrap();
        kill(follower.pid(), sig).unwrap();
        let status = follower.wait_timeout(WAIT).unwrap();
        let err = trace.rest(WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {err:?}");
        assert_eq!(
            err.last(),
            Some(&format!("mqueue-demo: interrupted by {sig}")),
            "{err:?}"
        );
    }
    sup.stop();
}

/// The reply queues of `submit` process `pid` (`QUEUE-r<pid>-<stamp>`) in /dev/mqueue; None
/// if it is not mounted (the name has a stamp nobody else knows).
fn reply_queues(queue: &str, pid: Pid) -> Option<Vec<String>> {
    let prefix = format!("{}-r{pid}-", &queue[1..]);
    let dir = common::names::mqueue_listing()?;
    Some(
        dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with(&prefix))
            .collect(),
    )
}
