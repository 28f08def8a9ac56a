//! Start-up errors, `send`'s errors, the default demo run, `--help`, and the README's shell
//! recipes, each run for real.

mod support;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Daemon, run_in};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim_end().to_owned()
}

// ---- the daemon refuses to start on a bad config ----

#[test]
fn missing_config_at_start_is_a_clear_error_exit_1() {
    let sb = Sandbox::new();
    let out = run_in(
        &sb,
        &["daemon", "--config", "nope.toml", "--pid-file", "d.pid"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "signal-demo: open nope.toml: No such file or directory"
    );
    assert!(out.stdout.is_empty());
    assert!(
        !sb.join("d.pid").exists(),
        "no pid file for a daemon that never ran"
    );
}

/// A FIFO (or anything but a regular file) as the config is refused at once: opened with
/// O_NONBLOCK, so `open` cannot wait for a writer, and checked with fstat. Before, the daemon
/// hung in `open` until its deadline.
#[test]
fn config_that_is_a_fifo_or_a_directory_is_refused_at_start() {
    let sb = Sandbox::new();
    nix::unistd::mkfifo(&sb.join("cfg.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = testkit::run_with_deadline(
        sb.command(support::BIN)
            .args(["daemon", "--config", "cfg.toml", "--pid-file", "d.pid"]),
        b"",
        support::WAIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "signal-demo: cfg.toml: is a FIFO, not a regular file; refused"
    );
    assert!(!sb.join("d.pid").exists());
    let out = run_in(&sb, &["daemon", "--config", "."]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "signal-demo: .: is a directory, not a regular file; refused"
    );
}

/// `send --pid-file FIFO` used to block forever in `open`; now it is refused at once.
#[test]
fn send_refuses_a_pid_file_that_is_a_fifo() {
    let sb = Sandbox::new();
    nix::unistd::mkfifo(&sb.join("d.pid"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = testkit::run_with_deadline(
        sb.command(support::BIN)
            .args(["send", "HUP", "--pid-file", "d.pid"]),
        b"",
        support::WAIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "signal-demo: d.pid: is a FIFO, not a regular file; refused"
    );
}

#[test]
fn unknown_key_at_start_names_file_and_line() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.join("cfg.toml"),
        "message = \"hi\"\ninterval_ms = 100\ncolour = \"red\"\n",
    )
    .unwrap();
    let out = run_in(&sb, &["daemon", "--config", "cfg.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "signal-demo: cfg.toml:3: unknown key 'colour'"
    );
}

#[test]
fn bad_values_at_start_name_file_and_line() {
    let sb = Sandbox::new();
    let cases = [
        (
            "message = \"hi\"\ninterval_ms = 5\n",
            "cfg.toml:2: interval_ms = 5 is out of range 10..=3600000",
        ),
        (
            "message = \"hi\"\ninterval_ms = 100\nwork_ms = -3\n",
            "cfg.toml:3: work_ms = -3 is out of range 0..=3600000",
        ),
        ("interval_ms = 100\n", "cfg.toml:1: missing key 'message'"),
    ];
    for (text, want) in cases {
        std::fs::write(sb.join("cfg.toml"), text).unwrap();
        let out = run_in(&sb, &["daemon", "--config", "cfg.toml"]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert_eq!(stderr(&out), format!("signal-demo: {want}"));
    }
    // A string where a number belongs: toml's own message, still on one line with file:line.
    std::fs::write(
        sb.join("cfg.toml"),
        "message = \"hi\"\n\ninterval_ms = \"fast\"\n",
    )
    .unwrap();
    let out = run_in(&sb, &["daemon", "--config", "cfg.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("signal-demo: cfg.toml:3: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

// ---- send ----

#[test]
fn send_to_a_dead_pid_is_a_clear_error_exit_1() {
    let sb = Sandbox::new();
    // pid_max itself is never handed out (pids run below it), so this pid is always dead.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let pid = pid_max.trim();
    let out = run_in(&sb, &["send", "HUP", "--pid", pid]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("signal-demo: kill {pid}: No such process")
    );
    let out = run_in(&sb, &["send", "RTMIN", "--pid", pid, "--value", "7"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("signal-demo: sigqueue {pid}: No such process")
    );
}

#[test]
fn send_refuses_a_stale_pid_file() {
    let sb = Sandbox::new();
    // A pid file nobody holds locked: its daemon died (kill -9) and the pid may be anyone's.
    std::fs::write(sb.join("d.pid"), format!("{}\n", std::process::id())).unwrap();
    let out = run_in(&sb, &["send", "TERM", "--pid-file", "d.pid"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "signal-demo: d.pid: stale pid file (pid {} is no longer running it)",
            std::process::id()
        )
    );
    let out = run_in(&sb, &["send", "TERM", "--pid-file", "missing.pid"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "signal-demo: open missing.pid: No such file or directory"
    );
}

#[test]
fn send_rejects_bad_signals_and_pids_with_usage_errors() {
    let sb = Sandbox::new();
    let out = run_in(&sb, &["send", "FOO", "--pid", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("signal-demo: bad signal 'FOO'"),
        "{out:?}"
    );
    // pid 0 and -1 mean "my process group" and "everyone" to kill(2): refused.
    for pid in ["0", "-1"] {
        let out = run_in(&sb, &["send", "TERM", "--pid", pid]);
        assert_eq!(out.status.code(), Some(2), "{pid}");
        assert!(stderr(&out).contains("must be a positive process id"));
    }
    let out = run_in(&sb, &["send", "TERM"]);
    assert_eq!(out.status.code(), Some(2), "no target: clap's usage error");
    let out = run_in(
        &sb,
        &[
            "send",
            "RTMIN",
            "--pid",
            "1",
            "--value",
            "2147483647",
            "--count",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("would not fit in an int"));
}

#[test]
fn send_accepts_signal_numbers() {
    let mut d = Daemon::start("message = \"hi\"\ninterval_ms = 1000\n");
    let pid = d.child.pid().to_string();
    // 10 is SIGUSR1 on Linux.
    let out = d.run(&["send", "10", "--pid", &pid]);
    assert!(out.status.success(), "{out:?}");
    assert!(d.wait_prefix("status: ").contains("USR1=1"));
}

// ---- the default run ----

#[test]
fn default_run_plays_the_whole_scenario_and_says_ok() {
    let sb = Sandbox::new();
    let out = testkit::run(&mut sb.command(support::BIN), b"");
    let stdout = testkit::stdout(&out);
    assert!(out.status.success(), "{stdout}\n{}", testkit::stderr(&out));
    for step in 1..=7 {
        assert!(
            stdout.contains(&format!("{step}. ")),
            "step {step} missing:\n{stdout}"
        );
    }
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("ok: "), "{last}");
    assert!(last.contains("SIGRTMIN 100/100 in order"), "{last}");
    // Sent while the daemon was stopped: exactly one, every run.
    assert!(last.contains("SIGUSR2 1/100 arrived (coalesced)"), "{last}");
    // Nothing left in the runtime dir: config file removed by the demo, pid file by the daemon.
    let left = sb.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A demo killed with SIGKILL (it cannot unwind) takes its daemon with it: the daemon gets
/// SIGTERM at once (PR_SET_PDEATHSIG), stops gracefully and removes its pid file. (Without
/// that it would still stop at its next tick, whose line meets the dead demo's pipe: EPIPE.
/// Either way the daemon must not outlive the demo, which is what this checks.)
#[test]
fn a_demo_killed_with_sigkill_takes_its_daemon_with_it() {
    let sb = Sandbox::new();
    let mut cmd = sb.command(support::BIN);
    // Slow motion, so the demo is surely mid-scenario when it is killed.
    cmd.args(["demo", "--interval-ms", "1000"]);
    let demo = testkit::spawn(&mut cmd);
    let step2 = demo
        .stdout_lines()
        .expect("stdout is piped")
        .wait_for(|l| l.starts_with("2. "), support::WAIT)
        .expect("the daemon starts");
    let pid: i32 = step2
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a daemon pid in {step2:?}"));
    let daemon = nix::unistd::Pid::from_raw(pid);
    demo.signal(Signal::SIGKILL).unwrap();
    let give_up = std::time::Instant::now() + support::WAIT;
    while !testkit::not_running(daemon) {
        assert!(
            std::time::Instant::now() < give_up,
            "daemon {daemon} outlived its demo"
        );
        // Nothing to wait on: the daemon is not our child, and it ends on its own time.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let left: Vec<_> = std::fs::read_dir(sb.runtime_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".pid"))
        .collect();
    assert!(left.is_empty(), "the daemon left its pid file: {left:?}");
}

/// `signal-demo -v`: the same scenario, narrated by both processes. It must not hang (a
/// daemon's trace piped and never read would block it), still end with `ok:`, and show the
/// daemon's signalfd reads beside the demo's kill and sigqueue calls.
#[test]
fn default_run_with_trace_says_ok_and_narrates_both_processes() {
    let sb = Sandbox::new();
    let out = run_in(&sb, &["-v"]);
    let stdout = testkit::stdout(&out);
    let trace = testkit::stderr(&out);
    assert!(out.status.success(), "{stdout}\n{trace}");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("ok: "), "{last}");
    // Identical lines in a row are written once, then counted: the line again with ` ×99 more`.
    let count = |want: &str| -> usize {
        trace
            .lines()
            .filter(|l| l.starts_with("[pid ") && l.contains(want))
            .map(|l| {
                l.rsplit_once(" ×")
                    .and_then(|(_, n)| n.strip_suffix(" more")?.parse::<usize>().ok())
                    .unwrap_or(1)
            })
            .sum()
    };
    assert_eq!(
        count(" daemon] sigprocmask(SIG_BLOCK, {HUP, INT, TERM, USR1, USR2, RTMIN="),
        1,
        "{trace}"
    );
    assert_eq!(count(" demo] sigqueue("), 100, "{trace}");
    assert_eq!(
        count(" daemon] read(signalfd) -> SIGRTMIN from pid "),
        100,
        "{trace}"
    );
    // 100 SIGUSR2, two SIGUSR1, two SIGHUP, one SIGTERM, and two SIGSTOP/SIGCONT pairs
    // around the bursts.
    assert_eq!(count(" demo] kill("), 109, "{trace}");
    assert_eq!(count(" demo] waitid("), 2, "{trace}");
    assert!(count(" daemon] read(timerfd) -> ") >= 2, "{trace}");
}

#[test]
fn trace_is_accepted_before_and_after_the_subcommand_and_bad_usage_exits_2_in_every_role() {
    let sb = Sandbox::new();
    // SIGCONT to a sleeping child changes nothing; the call is narrated either way.
    let sleeper = testkit::spawn(sb.command("sleep").arg("60"));
    let pid = sleeper.pid().to_string();
    for args in [
        ["-v", "send", "CONT", "--pid", &pid],
        ["send", "-v", "CONT", "--pid", &pid],
    ] {
        let out = run_in(&sb, &args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(stderr(&out).contains(" send] kill("), "{args:?}: {out:?}");
    }
    for role in ["demo", "daemon", "send"] {
        let out = run_in(&sb, &[role, "--bogus"]);
        assert_eq!(out.status.code(), Some(2), "{role}: {out:?}");
        assert!(stderr(&out).contains("--bogus"), "{role}: {out:?}");
    }
}

#[test]
fn help_shows_examples() {
    let sb = Sandbox::new();
    let out = run_in(&sb, &["--help"]);
    assert!(out.status.success());
    let text = testkit::stdout(&out);
    assert!(
        text.contains("signal-demo send HUP --pid-file d.pid"),
        "{text}"
    );
    let out = run_in(&sb, &["daemon", "--help"]);
    assert!(testkit::stdout(&out).contains("interval_ms = 500"));
    // Every subcommand: examples, and what the one global -v narrates in *that* role.
    for (sub, traces) in [
        (
            "demo",
            "kill and sigqueue calls, its SIGSTOP and waitid, and the daemon's",
        ),
        ("daemon", "sigprocmask, signalfd and timerfd"),
        ("send", "each kill or sigqueue call"),
    ] {
        let out = run_in(&sb, &[sub, "--help"]);
        assert!(out.status.success(), "{sub}: {out:?}");
        let text = testkit::stdout(&out);
        assert!(text.contains("\nExamples:\n"), "{sub}: {text}");
        assert!(
            text.contains(&format!("signal-demo {sub}")),
            "{sub}: {text}"
        );
        assert!(text.contains("  -v, --trace"), "{sub}: {text}");
        let trace = text.split("\nWith -v: ").nth(1).unwrap_or_default();
        let trace = trace
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .replace('\n', " ");
        assert!(trace.contains(traces), "{sub}: {text}");
    }
    // The default subcommand is named `demo`, as in every demo binary.
    assert!(text.contains("the same as `signal-demo demo`"), "{text}");
}

/// The latency benchmark lives in `examples/latency.rs`: the demo binary has no hidden
/// subcommand for it (and does not link its histogram crate).
#[test]
fn the_benchmark_is_not_a_subcommand_of_the_demo() {
    let sb = Sandbox::new();
    let out = run_in(&sb, &["bench-latency", "--samples", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("unrecognized subcommand"), "{out:?}");
}

// ---- the README's shell recipes ----

/// Recipe: `kill -HUP "$(cat d.pid)"` reloads, like any daemon's.
#[test]
fn recipe_reload_with_kill_and_the_pid_file() {
    let mut d = Daemon::start("message = \"hi\"\ninterval_ms = 1000\n");
    d.rewrite_config("message = \"hi\"\ninterval_ms = 250\n");
    let mut sh = d.sb.command("bash");
    sh.args(["-c", "kill -HUP \"$(cat d.pid)\""]);
    let out = testkit::run(&mut sh, b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        d.wait_prefix("reload"),
        "reloaded config (generation 2): interval_ms 1000 -> 250"
    );
}

/// Recipe: procps `kill -q VALUE` queues a realtime signal with a value, like `send --value`.
#[test]
fn recipe_queue_a_value_with_procps_kill() {
    let mut d = Daemon::start("message = \"hi\"\ninterval_ms = 1000\n");
    let mut sh = d.sb.command("bash");
    sh.args(["-c", "/bin/kill -s RTMIN -q 42 \"$(cat d.pid)\""]);
    let out = testkit::run(&mut sh, b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(d.wait_prefix("rt signal"), "rt signal value=42");
}

/// Recipe: `signal-demo daemon ... | head -n 4` — the daemon stops quietly (exit 0) on the
/// broken pipe and removes its pid file.
#[test]
fn recipe_daemon_into_head_stops_quietly_on_epipe() {
    let sb = Sandbox::new();
    std::fs::write(sb.join("cfg.toml"), "message = \"hi\"\ninterval_ms = 20\n").unwrap();
    let script = format!(
        "'{}' daemon --config cfg.toml --pid-file d.pid | head -n 4; \
         echo \"status ${{PIPESTATUS[0]}}\"; test ! -e d.pid && echo 'pid file gone'",
        support::BIN
    );
    let mut sh = sb.command("bash");
    sh.args(["-c", &script]);
    let out = testkit::run(&mut sh, b"");
    let stdout = testkit::stdout(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            lines[0],
            "generation 1: interval_ms 20, work_ms 0, message \"hi\"",
            "tick 1: hi",
            "tick 2: hi",
            "status 0",
            "pid file gone"
        ],
        "{stdout}"
    );
    assert!(lines[0].starts_with("ready: pid "), "{stdout}");
    assert!(lines[0].ends_with(" pid-file d.pid"), "{stdout}");
    assert!(
        testkit::stderr(&out).is_empty(),
        "{}",
        testkit::stderr(&out)
    );
}

/// SIGINT, SIGTERM or SIGHUP to the demo mid-scenario (a terminal's Ctrl-C, a supervisor, a
/// closed terminal): the demo stops its daemon gracefully, leaves neither the config file nor
/// the pid file, says why it stopped, and exits 128 + the signal's number: 130, 143, 129.
#[test]
fn a_stop_signal_to_the_demo_stops_it_and_its_daemon_cleanly_with_128_plus_n() {
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let mut cmd = sb.command(support::BIN);
        // Slow motion, so the signal surely lands mid-scenario: after step 2 the demo still
        // waits for a reload and a tick at the new (500 ms) interval.
        cmd.args(["demo", "--interval-ms", "1000"]);
        let child = testkit::spawn(&mut cmd);
        let mut out = child.stdout_lines().unwrap();
        let step2 = out
            .wait_for(|l| l.starts_with("2. "), support::WAIT)
            .unwrap();
        // "2. daemon pid N runs, ..."
        let daemon: i32 = step2
            .split_whitespace()
            .nth(3)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no daemon pid in {step2:?}"));
        child.signal(sig).unwrap();
        let status = child.wait_timeout(support::WAIT).unwrap();
        let rest = out.rest(support::WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {rest:?}");
        assert_eq!(
            rest.last().map(String::as_str),
            Some(format!("interrupted by {sig} before the check was done").as_str()),
            "{rest:?}"
        );
        // The demo stopped and reaped its daemon: that pid names no process any more.
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon), None);
        assert_eq!(
            gone,
            Err(nix::errno::Errno::ESRCH),
            "daemon {daemon} still there"
        );
        let left = sb.leftovers();
        assert!(left.is_empty(), "{sig}: left behind: {left:?}");
    }
}
