//! `watch`: woken through a futex by a put from another process; asleep (no CPU) while nothing
//! changes; counted among the watchers only while it lives; told when its database goes.

mod support;

use std::time::Duration;

use common::child::Lines;
use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Name, Server, WAIT, cmd, ok};

/// CPU time (user + system, in clock ticks) a process has used, from /proc/PID/stat.
fn cpu_ticks(pid: nix::unistd::Pid) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A watch started, once it says it is watching; its stdout and the rest of its stderr.
fn start_watch(
    sb: &Sandbox,
    name: &Name,
    args: &[&str],
) -> (common::child::Supervised, Lines, Lines) {
    let w = testkit::spawn(&mut cmd(sb, name, args));
    let mut err = w.stderr_lines().unwrap();
    err.wait_for(|l| l.contains("shm-demo watch: watching"), WAIT)
        .unwrap();
    let out = w.stdout_lines().unwrap();
    (w, out, err)
}

#[test]
fn wakes_on_a_put_from_another_process_and_sleeps_otherwise() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "k", "first"]);
    let (w, mut out, _) = start_watch(&sb, &name, &["watch", "k", "--count", "2"]);
    assert!(ok(&sb, &name, &["stats"]).contains("watchers 1\n"));

    // Nothing changes for a second: no line, and (almost) no CPU, since it sleeps in the
    // kernel rather than polling. Puts of other keys may wake it on a shared home slot, but
    // it goes back to sleep without printing.
    let before = cpu_ticks(w.pid());
    for i in 0..20 {
        ok(&sb, &name, &["put", &format!("other{i}"), "x"]);
    }
    assert!(
        out.next_line(Duration::from_secs(1)).is_err(),
        "no line while k is unchanged"
    );
    let used = cpu_ticks(w.pid()) - before;
    assert!(used <= 3, "watch used {used} ticks while idle");

    ok(&sb, &name, &["put", "k", "second"]);
    assert_eq!(out.next_line(WAIT).unwrap().as_deref(), Some("second"));
    ok(&sb, &name, &["put", "k", "second"]); // the same value: not a change
    ok(&sb, &name, &["put", "k", "third\x1b"]);
    assert_eq!(out.next_line(WAIT).unwrap().as_deref(), Some("third\\x1b"));
    assert!(w.wait_timeout(WAIT).unwrap().success());
    assert!(ok(&sb, &name, &["stats"]).contains("watchers 0\n"));
    server.stop();
}

#[test]
fn waits_for_a_key_that_does_not_exist_yet_and_sees_a_delete() {
    let sb = Sandbox::new();
    let name = Name::new(true); // in a SysV segment, to show the futex works there too
    let server = Server::start(&sb, &name, &[]);
    let (w, mut out, _) = start_watch(&sb, &name, &["watch", "later", "--count", "2"]);
    ok(&sb, &name, &["put", "later", "born"]);
    assert_eq!(out.next_line(WAIT).unwrap().as_deref(), Some("born"));
    ok(&sb, &name, &["del", "later"]);
    ok(&sb, &name, &["put", "later", "born"]); // back after a delete: a change
    assert_eq!(out.next_line(WAIT).unwrap().as_deref(), Some("born"));
    assert!(w.wait_timeout(WAIT).unwrap().success());
    server.stop();
}

/// A stop signal (Ctrl-C, SIGTERM, a closed terminal's SIGHUP) ends a watch at once, with
/// 128 + N and the line every role stopped by a signal prints, and gives back its count.
/// Before, SIGHUP killed it outright (no line, no exit status of its own).
#[test]
fn a_stop_signal_ends_watch_with_128_plus_n_and_gives_back_its_count() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let (w, _out, mut err) = start_watch(&sb, &name, &["watch", "k"]);
        assert!(ok(&sb, &name, &["stats"]).contains("watchers 1\n"));
        w.signal(sig).unwrap();
        let status = w.wait_timeout(WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {status:?}");
        assert_eq!(
            err.rest(WAIT).unwrap(),
            [format!("shm-demo: interrupted by {sig}")]
        );
        assert!(ok(&sb, &name, &["stats"]).contains("watchers 0\n"));
    }
    server.stop();
}

/// A database that goes away wakes its watchers, which exit 1 with a message naming it: its
/// server stopped by `destroy`, and a dead server's leftover removed by `destroy`. Before,
/// they slept for ever on a futex in a segment nobody could reach any more.
#[test]
fn watchers_exit_when_their_database_is_destroyed() {
    for live in [true, false] {
        let sb = Sandbox::new();
        let name = Name::new(false);
        let server = Server::start(&sb, &name, &[]);
        if !live {
            server.kill();
        }
        // Two watchers, asleep on the words of two home slots.
        let watchers: Vec<_> = ["k", "other"]
            .iter()
            .map(|key| start_watch(&sb, &name, &["watch", key]))
            .collect();
        ok(&sb, &name, &["destroy"]);
        for (w, _, mut err) in watchers {
            let status = w.wait_timeout(WAIT).unwrap();
            let rest = err.rest(WAIT).unwrap().join("\n");
            assert_eq!(status.code(), Some(1), "live server {live}: {rest}");
            assert_eq!(
                rest,
                format!(
                    "shm-demo: {}: the database was removed (its server stopped, or shm-demo \
                     destroy)",
                    name.name
                )
            );
        }
    }
}

/// The watchers count is kept by the kernel: each watcher holds a lock that goes with it, so
/// one killed by SIGKILL or SIGUSR1 (which run no handler of ours) is not counted any more.
/// Before, the count lived in the segment and only a SIGINT/SIGTERM handler gave it back.
#[test]
fn watchers_killed_by_any_signal_are_not_counted() {
    for sysv in [false, true] {
        let sb = Sandbox::new();
        let name = Name::new(sysv);
        let server = Server::start(&sb, &name, &[]);
        let (a, _, _) = start_watch(&sb, &name, &["watch", "k"]);
        let (b, _, _) = start_watch(&sb, &name, &["watch", "other"]);
        let watchers = || {
            let stats = ok(&sb, &name, &["stats"]);
            stats
                .lines()
                .find_map(|l| l.strip_prefix("watchers "))
                .unwrap()
                .to_owned()
        };
        assert_eq!(watchers(), "2", "sysv={sysv}");
        a.signal(Signal::SIGKILL).unwrap();
        a.wait_timeout(WAIT).unwrap();
        assert_eq!(watchers(), "1", "sysv={sysv}: after SIGKILL");
        b.signal(Signal::SIGUSR1).unwrap();
        b.wait_timeout(WAIT).unwrap();
        assert_eq!(watchers(), "0", "sysv={sysv}: after SIGUSR1");
        server.stop();
    }
}
