//! The daemon, driven by real signals from this test process (and from `signal-demo send`):
//! each step of the demo as its own test, then the harder cases of the issue.

mod support;

use std::time::Instant;

use common::testkit;
use common::testkit::in_poll;
use nix::sys::signal::Signal;
use support::{Daemon, count_in, is_pending, pending};

const HELLO: &str = "message = \"hello\"\ninterval_ms = 500\n";

// ---- the demo's steps, one test each ----

#[test]
fn ticks_print_the_message_and_pid_file_names_the_daemon() {
    let mut d = Daemon::start("message = \"hello\"\ninterval_ms = 50\n");
    assert_eq!(d.wait_prefix("tick 1:"), "tick 1: hello");
    assert_eq!(d.wait_prefix("tick 2:"), "tick 2: hello");
    let pid = std::fs::read_to_string(&d.pid_file).unwrap();
    assert_eq!(pid.trim(), d.child.pid().to_string());
}

#[test]
fn sighup_reloads_the_edited_config() {
    let mut d = Daemon::start(HELLO);
    d.rewrite_config("message = \"hello\"\ninterval_ms = 200\n");
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reloaded"),
        "reloaded config (generation 2): interval_ms 500 -> 200"
    );
    d.rewrite_config("message = \"bye\"\ninterval_ms = 200\n");
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reloaded"),
        "reloaded config (generation 3): message \"hello\" -> \"bye\""
    );
    let tick = d.wait_prefix("tick ");
    assert!(tick.ends_with(": bye"), "{tick}");
}

#[test]
fn invalid_config_on_sighup_is_refused_and_ticks_keep_the_old_one() {
    let mut d = Daemon::start("message = \"old\"\ninterval_ms = 50\n");
    d.rewrite_config("message = \"new\"\ninterval_ms = 50\ncolour = \"red\"\n");
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reload"),
        "reload failed: cfg.toml:3: unknown key 'colour'; keeping generation 1"
    );
    // Every tick after the refusal still uses the old message.
    for _ in 0..3 {
        assert!(d.wait_prefix("tick ").ends_with(": old"));
    }
    d.rewrite_config("message = \"new\"\ninterval_ms = 5\n");
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reload"),
        "reload failed: cfg.toml:2: interval_ms = 5 is out of range 10..=3600000; \
         keeping generation 1"
    );
    std::fs::remove_file(&d.cfg).unwrap();
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reload"),
        "reload failed: open cfg.toml: No such file or directory; keeping generation 1"
    );
    assert!(d.wait_prefix("tick ").ends_with(": old"));
    // A good file again is generation 2: failed reloads do not count.
    d.rewrite_config("message = \"new\"\ninterval_ms = 50\n");
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reload"),
        "reloaded config (generation 2): message \"old\" -> \"new\""
    );
    let status = d.status();
    assert!(
        status.contains("generation 2, reloads 1 ok 3 failed"),
        "{status}"
    );
}

/// Standard signals coalesce, asserted exactly: the daemon is frozen (SIGSTOP, and known to
/// be stopped) while the 100 SIGUSR2 are sent, so it cannot read one before the last is sent,
/// and the kernel's single pending bit makes them one.
#[test]
fn burst_of_100_sigusr2_to_a_frozen_daemon_arrives_as_exactly_one() {
    let mut d = Daemon::start(HELLO);
    let frozen = testkit::freeze(d.child.pid());
    let out = d.run(&["send", "USR2", "--pid-file", "d.pid", "--count", "100"]);
    assert!(out.status.success(), "{out:?}");
    assert!(is_pending(pending(frozen.pid()), libc::SIGUSR2));
    drop(frozen);
    assert_eq!(count_in(&d.status(), "USR2"), 1);
}

/// Realtime signals queue, asserted exactly: all 100 are sent while the daemon is frozen, so
/// all 100 are pending at once, and all 100 arrive, each with its value, in the order sent.
#[test]
fn burst_of_100_rtmin_to_a_frozen_daemon_arrives_as_exactly_100_in_order() {
    let mut d = Daemon::start(HELLO);
    let frozen = testkit::freeze(d.child.pid());
    let out = d.run(&[
        "send",
        "RTMIN",
        "--pid-file",
        "d.pid",
        "--value",
        "1",
        "--count",
        "100",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(is_pending(pending(frozen.pid()), libc::SIGRTMIN()));
    drop(frozen);
    let mut values = Vec::new();
    while values.len() < 100 {
        let line = d.wait_prefix("rt signal");
        let v = line.strip_prefix("rt signal value=").expect("a value");
        values.push(v.parse::<i32>().unwrap());
    }
    assert_eq!(values, (1..=100).collect::<Vec<_>>());
    assert_eq!(count_in(&d.status(), "RTMIN"), 100);
}

/// A config replaced by a FIFO: the SIGHUP is refused (no hang in `open`), the old config is
/// kept, ticks go on, and SIGTERM still stops the daemon.
#[test]
fn sighup_with_a_fifo_as_config_is_refused_and_the_daemon_stays_responsive() {
    let mut d = Daemon::start("message = \"old\"\ninterval_ms = 50\n");
    std::fs::remove_file(&d.cfg).unwrap();
    nix::unistd::mkfifo(&d.cfg, nix::sys::stat::Mode::S_IRWXU).unwrap();
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reload"),
        "reload failed: cfg.toml: is a FIFO, not a regular file; refused; keeping generation 1"
    );
    assert!(d.wait_prefix("tick ").ends_with(": old"));
    d.kill(Signal::SIGTERM);
    assert_eq!(d.exit_code(), Some(0));
    assert!(!d.pid_file.exists());
}

/// A config's message reaches the terminal: ESC, BEL and bidi overrides in it are shown as
/// escapes in every line that prints it (start, tick, reload), never passed through raw.
#[test]
fn terminal_controls_in_the_message_are_made_visible() {
    // TOML escapes: ESC ] 0 ; retitles a terminal, BEL ends it, U+202E reverses the line.
    let cfg = "message = \"a\\u001b]0;pwned\\u0007b\\u202ec\"\ninterval_ms = 50\n";
    let mut d = Daemon::start(cfg);
    let shown = "a\\x1b]0;pwned\\x07b\\u{202e}c";
    let started = d.out.seen()[1].clone();
    assert!(
        started.ends_with(&format!("message \"{shown}\"")),
        "{started}"
    );
    assert_eq!(d.wait_prefix("tick 1:"), format!("tick 1: {shown}"));
    d.rewrite_config("message = \"\\u0007\"\ninterval_ms = 50\n");
    d.kill(Signal::SIGHUP);
    assert_eq!(
        d.wait_prefix("reload"),
        format!("reloaded config (generation 2): message \"{shown}\" -> \"\\x07\"")
    );
    for line in d.out.seen() {
        assert!(
            !line.contains(['\x1b', '\x07', '\u{202e}']),
            "raw control in {line:?}"
        );
    }
}

#[test]
fn sigusr1_prints_one_status_line() {
    let mut d = Daemon::start("message = \"hello\"\ninterval_ms = 50\n");
    d.wait_prefix("tick 2:");
    d.kill(Signal::SIGHUP);
    d.wait_prefix("reloaded");
    let status = d.status();
    assert!(status.starts_with("status: uptime "), "{status}");
    for part in [
        "generation 2",
        "reloads 1 ok 0 failed",
        "HUP=1",
        "INT=0",
        "TERM=0",
        "USR1=1",
        "USR2=0",
        "RTMIN=0",
        "RTMIN+1..RTMAX=0",
    ] {
        assert!(status.contains(part), "{part} not in {status}");
    }
    let ticks: u64 = status
        .split_once("ticks ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tick count in {status}"));
    assert!(ticks >= 2, "{status}");
}

/// A daemon asked to stop (SIGTERM, or SIGINT from a terminal) does its job: it stops, with
/// status 0, and removes its pid file.
#[test]
fn sigterm_and_sigint_stop_gracefully_exit_0_pid_file_removed() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let mut d = Daemon::start(HELLO);
        assert!(d.pid_file.exists());
        d.kill(sig);
        assert_eq!(d.wait_prefix("shutting"), "shutting down");
        assert_eq!(d.exit_code(), Some(0), "{sig}");
        assert!(!d.pid_file.exists(), "{sig}: pid file left behind");
    }
}

// ---- the harder cases ----

#[test]
fn a_thousand_sighups_in_a_burst_no_crash_and_ticks_continue() {
    let mut d = Daemon::start("message = \"hello\"\ninterval_ms = 50\n");
    for _ in 0..1000 {
        d.kill(Signal::SIGHUP);
    }
    // SIGUSR1 after the burst: its status line comes after every SIGHUP that arrived.
    let status = d.status();
    let hups = count_in(&status, "HUP");
    assert!((1..=1000).contains(&hups), "HUP={hups}");
    assert!(
        status.contains(&format!("reloads {hups} ok 0 failed")),
        "{status}"
    );
    let reloads = d
        .out
        .seen()
        .iter()
        .filter(|l| l.starts_with("reloaded config"))
        .count();
    assert_eq!(reloads as u64, hups);
    // Ticks go on after the storm (re-arming only on an interval change keeps the timer running).
    d.wait_prefix("tick ");
    d.wait_prefix("tick ");
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died");
}

/// SIGTERM while a tick's work is in progress: acted on at once, the tick still completes,
/// then the daemon stops. The instant is made certain: the daemon is frozen, seen asleep in
/// the work's poll (the only poll with a timeout), and sent SIGTERM while it cannot run; it
/// finds the signal the moment it resumes, mid-tick. (Ticks follow each other back to back,
/// each working 1.5 s on a 50 ms interval, so a freeze that lands between two is retried.)
#[test]
fn sigterm_mid_tick_finishes_the_tick_then_exits_0() {
    let mut d = Daemon::start("message = \"slow\"\ninterval_ms = 50\nwork_ms = 1500\n");
    d.wait_prefix("tick 1:");
    let pid = d.child.pid();
    let end = Instant::now() + support::WAIT;
    loop {
        let frozen = testkit::freeze(pid);
        if in_poll(pid) == Some(true) {
            d.kill(Signal::SIGTERM);
            break;
        }
        drop(frozen);
        assert!(Instant::now() < end, "never caught the daemon mid-tick");
    }
    // Frozen mid-tick until here: the tick in progress is the last one it printed, and
    // "shutting down" comes before that tick finishes.
    d.wait_prefix("shutting down");
    let seen = d.out.seen();
    let tick = seen
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("tick ")?.strip_suffix(": slow"))
        .unwrap()
        .to_owned();
    assert!(!seen.contains(&format!("tick {tick} finished")), "{seen:?}");
    assert_eq!(d.wait(|l| !l.is_empty()), format!("tick {tick} finished"));
    assert_eq!(
        d.wait(|l| !l.is_empty()),
        format!("stopped after {tick} ticks at generation 1")
    );
    assert_eq!(d.exit_code(), Some(0));
    assert!(!d.pid_file.exists());
}

#[test]
fn signals_mid_tick_are_acted_on_at_once() {
    let mut d = Daemon::start("message = \"slow\"\ninterval_ms = 50\nwork_ms = 60000\n");
    d.wait_prefix("tick 1:");
    // The tick's work lasts a minute; the status and the reload come long before it ends.
    let status = d.status();
    assert!(status.contains("ticks 1 "), "{status}");
    d.rewrite_config("message = \"fast\"\ninterval_ms = 50\n");
    d.kill(Signal::SIGHUP);
    assert!(
        d.wait_prefix("reload")
            .starts_with("reloaded config (generation 2)")
    );
    assert!(!d.out.seen().iter().any(|l| l == "tick 1 finished"));
}

#[test]
fn double_sigint_forces_exit_130() {
    let mut d = Daemon::start("message = \"slow\"\ninterval_ms = 50\nwork_ms = 60000\n");
    d.wait_prefix("tick 1:");
    d.kill(Signal::SIGINT);
    assert_eq!(d.wait_prefix("shutting"), "shutting down");
    d.kill(Signal::SIGINT);
    assert_eq!(d.exit_code(), Some(130));
    assert!(
        !d.out.seen().iter().any(|l| l == "tick 1 finished"),
        "the second SIGINT must not wait for the tick"
    );
    // Even the forced exit removes the pid file (the loop returns through its guard).
    assert!(!d.pid_file.exists());
}

#[test]
fn double_sigterm_forces_exit_143() {
    let mut d = Daemon::start("message = \"slow\"\ninterval_ms = 50\nwork_ms = 60000\n");
    d.wait_prefix("tick 1:");
    d.kill(Signal::SIGTERM);
    d.wait_prefix("shutting");
    d.kill(Signal::SIGTERM);
    assert_eq!(d.exit_code(), Some(143));
}

#[test]
fn rt_signal_sent_with_kill_has_no_value() {
    let mut d = Daemon::start(HELLO);
    let out = d.run(&["send", "RTMIN", "--pid-file", "d.pid"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        d.wait_prefix("rt signal"),
        "rt signal without a value (sent by kill, not sigqueue)"
    );
}

/// Every realtime signal `send` can name is read from the signalfd, not just SIGRTMIN: before,
/// `send RTMIN+3` killed the daemon (the default action) and left its pid file behind.
#[test]
fn the_whole_realtime_range_is_handled_not_just_rtmin() {
    let mut d = Daemon::start(HELLO);
    let out = d.run(&["send", "RTMIN+3", "--pid-file", "d.pid", "--value", "7"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(d.wait_prefix("rt signal"), "rt signal SIGRTMIN+3 value=7");
    let out = d.run(&["send", "RTMAX", "--pid-file", "d.pid"]);
    assert!(out.status.success(), "{out:?}");
    let line = d.wait_prefix("rt signal");
    assert!(
        line.ends_with("without a value (sent by kill, not sigqueue)"),
        "{line}"
    );
    let status = d.status();
    assert_eq!(count_in(&status, "RTMIN"), 0);
    assert_eq!(count_in(&status, "RTMIN+1..RTMAX"), 2);
    d.kill(Signal::SIGTERM);
    assert_eq!(d.exit_code(), Some(0));
    assert!(!d.pid_file.exists(), "pid file left behind");
}

#[test]
fn a_second_daemon_on_the_same_pid_file_is_refused() {
    let d = Daemon::start(HELLO);
    let out = d.run(&["daemon", "--config", "cfg.toml", "--pid-file", "d.pid"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "signal-demo: d.pid: locked by a running daemon (pid {})",
            d.child.pid()
        )
    );
    // The running daemon's pid file is untouched.
    let pid = std::fs::read_to_string(&d.pid_file).unwrap();
    assert_eq!(pid.trim(), d.child.pid().to_string());
}

#[test]
fn kill_9_leftover_pid_file_is_refused_by_send_and_taken_over_by_the_next_daemon() {
    let mut d = Daemon::start(HELLO);
    let old_pid = d.child.pid();
    d.kill(Signal::SIGKILL);
    assert_eq!(d.child.wait_timeout(support::WAIT).unwrap().code(), None);
    // Nothing runs on kill -9: the file stays, but its flock died with the process.
    assert!(d.pid_file.exists());
    let out = d.run(&["send", "HUP", "--pid-file", "d.pid"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!("signal-demo: d.pid: stale pid file (pid {old_pid} is no longer running it)")
    );
    // The next daemon recognises the leftover and takes it over.
    let mut cmd = d.sb.command(support::BIN);
    cmd.args(["daemon", "--config", "cfg.toml", "--pid-file", "d.pid"]);
    let next = common::testkit::spawn(&mut cmd);
    let mut out = next.stdout_lines().unwrap();
    out.wait_for(|l| l.starts_with("ready: pid "), support::WAIT)
        .unwrap();
    let pid = std::fs::read_to_string(&d.pid_file).unwrap();
    assert_eq!(pid.trim(), next.pid().to_string());
    d.out = out;
    let out = d.run(&["send", "USR1", "--pid-file", "d.pid"]);
    assert!(out.status.success(), "{out:?}");
    d.wait_prefix("status: ");
}
