//! The daemon role: rotation under load, restarts after kill -9, refusals, hostile input,
//! idle CPU, clean shutdown.

mod support;

use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Stdio;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Daemon, WAIT, after_stamp, fifo_demo, lines_of, log, pid_file, wait_for_line};

#[test]
fn ten_rotations_while_eight_writers_write() {
    const WRITERS: usize = 8;
    const CHUNKS: usize = 11;
    const CHUNK: usize = 500;
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    let mut writers = Vec::new();
    let mut stdins = Vec::new();
    for _ in 0..WRITERS {
        let mut cmd = fifo_demo(&sb);
        cmd.arg("log")
            .arg("--fifo")
            .arg(&daemon.fifo)
            .stdin(Stdio::piped());
        let w = testkit::spawn(&mut cmd);
        stdins.push(w.take_stdin().unwrap());
        writers.push(w);
    }

    // Hand every writer a chunk of lines (16 KB: it fits in the stdin pipe, so this never
    // blocks), wait until the daemon has logged half a chunk's worth, and rotate while the
    // rest is in flight. Then wait for the daemon to have created the new file, so that no
    // SIGHUP coalesces with the next one.
    let mut sent = 0;
    for k in 0..CHUNKS {
        for (w, stdin) in stdins.iter_mut().enumerate() {
            let text: String = (k * CHUNK..(k + 1) * CHUNK)
                .map(|i| format!("writer {w} line {i} of the rotation test\n"))
                .collect();
            stdin.write_all(text.as_bytes()).unwrap();
            sent += CHUNK;
        }
        if k == CHUNKS - 1 {
            break;
        }
        support::wait_until("half a chunk in the log", || {
            lines_of(&daemon.log).len() >= WRITERS * CHUNK / 2
        });
        std::fs::rename(&daemon.log, sb.join(format!("app.log.{}", k + 1))).unwrap();
        daemon.child.signal(Signal::SIGHUP).unwrap();
        support::wait_until("the daemon to reopen app.log", || daemon.log.exists());
    }
    drop(stdins);
    for w in &writers {
        let status = w.wait_timeout(WAIT).unwrap();
        assert!(status.success(), "writer: {status:?}");
    }
    daemon.stop();

    let mut total = 0;
    for name in
        std::iter::once("app.log".to_owned()).chain((1..=10).map(|k| format!("app.log.{k}")))
    {
        let lines = lines_of(&sb.join(&name));
        assert!(!lines.is_empty(), "{name} is empty");
        for line in &lines {
            assert!(
                after_stamp(line).contains(" line ") && line.ends_with(" of the rotation test"),
                "{name}: torn line {line:?}"
            );
        }
        total += lines.len();
    }
    assert_eq!(total, sent, "lines logged across all 11 files = lines sent");
    assert_eq!(sent, WRITERS * CHUNKS * CHUNK);
}

#[test]
fn a_daemon_killed_with_9_is_replaced_on_the_same_path() {
    let sb = Sandbox::new();
    let first = Daemon::start(&sb, &[]);
    let fifo = first.fifo.clone();
    assert_eq!(fifo, sb.runtime_dir().join("log.fifo"), "the default path");
    first.child.signal(Signal::SIGKILL).unwrap();
    first.child.wait_timeout(WAIT).unwrap();
    // Nothing ran on kill -9: the FIFO and the pid file are still there...
    assert!(fifo.exists() && pid_file(&fifo).exists());

    // ...and the next daemon recognises them as leftovers (the pid file is not locked).
    let second = Daemon::start(&sb, &[]);
    assert_eq!(second.fifo, fifo);
    assert!(
        second
            .stderr
            .seen()
            .iter()
            .any(|l| l.contains("reusing stale")),
        "{:?}",
        second.stderr.seen()
    );
    let pid_text = std::fs::read_to_string(pid_file(&fifo)).unwrap();
    assert_eq!(pid_text.trim(), second.child.pid().to_string());
    let out = log(&sb, &fifo, &["after", "the", "restart"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    wait_for_line(&second.log, |l| l.ends_with(" after the restart"));
    second.stop();
}

#[test]
fn a_second_daemon_is_refused_while_one_lives() {
    let sb = Sandbox::new();
    let first = Daemon::start(&sb, &[]);
    let out = testkit::run(
        fifo_demo(&sb).arg("daemon").arg("--log").arg("other.log"),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "fifo-demo: a log daemon (pid {}) is already reading {}; refusing to start a \
             second one\n",
            first.child.pid(),
            first.fifo.display()
        )
    );
    // With another pid file the lock cannot tell, but the FIFO itself can: it has a reader.
    let out = testkit::run(
        fifo_demo(&sb)
            .arg("daemon")
            .arg("--pid-file")
            .arg(sb.join("other.pid"))
            .arg("--log")
            .arg("other.log"),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("another process is already reading it"),
        "{}",
        testkit::stderr(&out)
    );
    assert!(!sb.join("other.log").exists());
    // The first daemon is unharmed.
    let out = log(&sb, &first.fifo, &["still", "here"], b"");
    assert!(out.status.success());
    wait_for_line(&first.log, |l| l.ends_with(" still here"));
    first.stop();
}

#[test]
fn a_symlink_at_the_fifo_path_is_refused_and_its_target_untouched() {
    let sb = Sandbox::new();
    let rt = sb.runtime_dir();
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = sb.join("precious.txt");
    std::fs::write(&target, "keep me\n").unwrap();
    let fifo = rt.join("log.fifo");
    symlink(&target, &fifo).unwrap();

    let out = testkit::run(fifo_demo(&sb).arg("daemon"), b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "fifo-demo: {}: is a symlink; refusing to follow it\n",
            fifo.display()
        )
    );
    // The writer refuses it as well, rather than writing into the target.
    let out = log(&sb, &fifo, &["hello"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(testkit::stderr(&out).contains("is a symlink"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    assert!(fifo.symlink_metadata().unwrap().file_type().is_symlink());

    // A regular file in its place is refused too, and left alone (what the error advises
    // is checked in tests/paths.rs).
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(&fifo, "not a fifo\n").unwrap();
    let out = testkit::run(fifo_demo(&sb).arg("daemon"), b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("is a regular file, not a FIFO: "),
        "{}",
        testkit::stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&fifo).unwrap(), "not a fifo\n");
}

#[test]
fn garbage_nul_bytes_and_empty_lines_do_not_stop_the_daemon() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    {
        // A writer that ignores the protocol: raw bytes straight into the FIFO.
        let mut raw = std::fs::OpenOptions::new()
            .write(true)
            .open(&daemon.fifo)
            .unwrap();
        raw.write_all(b"\x00\x01binary\xff\xfe\x1b[31m\n\n\npid=7 claimed\nback\\slash\n")
            .unwrap();
        // A 70000-byte "line": longer than any record, written in several pieces.
        let mut long = vec![b'x'; 70_000];
        long.push(b'\n');
        raw.write_all(&long).unwrap();
    }
    let out = log(&sb, &daemon.fifo, &["after", "the", "garbage"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let lines = wait_for_line(&daemon.log, |l| l.ends_with(" after the garbage"));
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon died"
    );
    let msgs: Vec<&str> = lines.iter().map(|l| after_stamp(l)).collect();
    assert_eq!(
        &msgs[..5],
        [
            "pid=? \\x00\\x01binary\\xff\\xfe\\x1b[31m",
            "pid=? ",
            "pid=? ",
            "pid=7 claimed",
            "pid=? back\\\\slash",
        ]
    );
    let xs: usize = msgs[5..]
        .iter()
        .filter_map(|m| m.strip_prefix("pid=? "))
        .map(|m| m.bytes().filter(|&b| b == b'x').count())
        .sum();
    assert_eq!(xs, 70_000, "the over-long line is logged whole, in pieces");
    daemon.stop();
}

/// After a writer has come and gone, the daemon sleeps in `poll` with no timeout. That is the
/// whole claim, and it is an event to wait for, not a window to measure: a daemon without its
/// own write end would see POLLHUP (EOF) at every `poll` and spin, never blocking at all, and
/// one that polled with a timeout would show it in the call's arguments.
#[test]
fn an_idle_daemon_sleeps_in_poll_with_no_timeout() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    // The writer has exited when `log` returns, so EOF is already there for a daemon to see.
    let out = log(&sb, &daemon.fifo, &["one", "record"], b"");
    assert!(out.status.success());
    wait_for_line(&daemon.log, |l| l.ends_with(" one record"));
    support::wait_until("the daemon to sleep in poll with no timeout", || {
        testkit::in_poll(daemon.child.pid()) == Some(false)
    });
    daemon.stop();
}

#[test]
fn sigterm_and_sigint_drain_the_pipe_and_remove_fifo_and_pid_file() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let sb = Sandbox::new();
        let daemon = Daemon::start(&sb, &["--log", "app.log"]);
        let mut raw = std::fs::OpenOptions::new()
            .write(true)
            .open(&daemon.fifo)
            .unwrap();
        let text: String = (1..=500).map(|i| format!("record {i}\n")).collect();
        raw.write_all(text.as_bytes()).unwrap();
        drop(raw);
        daemon.child.signal(sig).unwrap();
        let status = daemon.child.wait_timeout(WAIT).unwrap();
        assert!(status.success(), "{sig}: {status:?}");
        assert!(!daemon.fifo.exists() && !pid_file(&daemon.fifo).exists());
        let lines = lines_of(&daemon.log);
        assert_eq!(lines.len(), 500, "{sig}: records in the pipe were logged");
        assert!(lines[499].ends_with("pid=? record 500"));
    }
}

#[test]
fn log_dash_writes_to_stdout_and_works_in_a_pipeline() {
    // Recipe: `fifo-demo daemon --log - | grep --line-buffered ERROR` shows only errors, live.
    let sb = Sandbox::new();
    let fifo = sb.join("app.fifo");
    let script = format!(
        "'{}' daemon --fifo '{}' --log - | grep --line-buffered ERROR",
        support::BIN,
        fifo.display()
    );
    let mut cmd = sb.command("sh");
    cmd.arg("-c").arg(&script);
    let pipeline = testkit::spawn(&mut cmd);
    let mut stdout = pipeline.stdout_lines().unwrap();
    let mut stderr = pipeline.stderr_lines().unwrap();
    // The ready line went into grep (and was filtered out): the details line on stderr is
    // written just before it, once the FIFO is open.
    stderr
        .wait_for(|l| l.contains("daemon: reads "), WAIT)
        .unwrap();
    let out = log(&sb, &fifo, &[], b"info all fine\nERROR disk full\n");
    assert!(out.status.success());
    let line = stdout.wait_for(|l| l.contains("ERROR"), WAIT).unwrap();
    assert!(line.ends_with(" ERROR disk full"), "{line}");
    assert!(protocol_line_ok(&line), "{line}");
    assert!(!stdout.seen().iter().any(|l| l.contains("info")));
}

/// SIGHUP means "reopen the log" (rotation), never "stop": with the log on stdout there is
/// nothing to reopen, and the daemon goes on logging to the same stdout, says nothing about it,
/// and still stops with 0 on SIGTERM.
#[test]
fn sighup_to_a_daemon_logging_to_stdout_changes_nothing() {
    let sb = Sandbox::new();
    let mut daemon = Daemon::start(&sb, &["--log", "-"]);
    let send = |word: &str| {
        let out = log(&sb, &daemon.fifo, &[word], b"");
        assert!(out.status.success(), "{}", testkit::stderr(&out));
    };
    send("before");
    daemon
        .stdout
        .wait_for(|l| l.ends_with(" before"), WAIT)
        .unwrap();
    for _ in 0..3 {
        daemon.child.signal(Signal::SIGHUP).unwrap();
    }
    send("after");
    daemon
        .stdout
        .wait_for(|l| l.ends_with(" after"), WAIT)
        .unwrap();
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped it"
    );
    let stderr = daemon.stderr.seen().to_vec();
    assert!(!stderr.iter().any(|l| l.contains("SIGHUP")), "{stderr:?}");
    daemon.stop();
}

/// `2026-11-26T03:20:50.123456Z pid=4242 message`
fn protocol_line_ok(line: &str) -> bool {
    let (stamp, rest) = line.split_at(27);
    stamp.len() == 27
        && stamp.ends_with('Z')
        && stamp.as_bytes()[10] == b'T'
        && rest.starts_with(" pid=")
}

#[test]
fn a_plain_shell_writer_is_logged_with_pid_unknown_and_rotation_recipe_works() {
    // Recipes, verbatim from the README and --help: `echo hello > "$(fifo-demo path fifo)"`,
    // and logrotate's create mode by hand. `fifo-demo path` works with or without
    // XDG_RUNTIME_DIR (see tests/paths.rs).
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    let mut sh = sb.command("sh");
    sh.arg("-c").arg(
        "echo hello from sh > \"$(fifo-demo path fifo)\" && \
         mv app.log app.log.1 && \
         kill -HUP \"$(cat \"$(fifo-demo path pid-file)\")\"",
    );
    let out = testkit::run(support::with_bin_on_path(&mut sh), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    support::wait_until("app.log to be reopened", || daemon.log.exists());
    let out = log(&sb, &daemon.fifo, &["after", "rotation"], b"");
    assert!(out.status.success());
    let lines = wait_for_line(&daemon.log, |l| l.ends_with(" after rotation"));
    assert_eq!(lines.len(), 1);
    let old = lines_of(&sb.join("app.log.1"));
    assert_eq!(old.len(), 1);
    assert_eq!(after_stamp(&old[0]), "pid=? hello from sh");
    daemon.stop();
}

#[test]
fn help_shows_an_example_and_bad_flags_exit_2() {
    let sb = Sandbox::new();
    let out = testkit::run(fifo_demo(&sb).arg("--help"), b"");
    assert!(out.status.success());
    assert!(testkit::stdout(&out).contains("fifo-demo daemon --log app.log"));
    let out = testkit::run(fifo_demo(&sb).args(["daemon", "--bogus"]), b"");
    assert_eq!(out.status.code(), Some(2));
    let out = testkit::run(fifo_demo(&sb).args(["demo", "--writers", "0"]), b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cleanup_removes_what_kill_9_left_and_refuses_a_live_daemon() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let out = testkit::run(fifo_demo(&sb).arg("cleanup"), b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "fifo-demo: a log daemon (pid {0}) is still reading {1}; stop it with kill {0}\n",
            daemon.child.pid(),
            daemon.fifo.display()
        )
    );
    assert!(daemon.fifo.exists());

    daemon.child.signal(Signal::SIGKILL).unwrap();
    daemon.child.wait_timeout(WAIT).unwrap();
    let out = testkit::run(fifo_demo(&sb).arg("cleanup"), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    assert_eq!(
        testkit::stdout(&out),
        format!(
            "removed {} and {}\n",
            daemon.fifo.display(),
            pid_file(&daemon.fifo).display()
        )
    );
    assert!(!daemon.fifo.exists() && !pid_file(&daemon.fifo).exists());
    let out = testkit::run(fifo_demo(&sb).arg("cleanup"), b"");
    assert!(out.status.success());
    assert!(testkit::stdout(&out).starts_with("nothing to remove"));
    assert!(!pid_file(&daemon.fifo).exists());
}

#[test]
fn a_fifo_owned_by_another_user_is_refused() {
    if !support::root_or_skip("a_fifo_owned_by_another_user_is_refused") {
        return;
    }
    let sb = Sandbox::new();
    let fifo = sb.join("theirs.fifo");
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::chown(&fifo, Some(nobody), None).unwrap();
    let out = testkit::run(fifo_demo(&sb).arg("daemon").arg("--fifo").arg(&fifo), b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("is owned by uid 65534, not by us"),
        "{}",
        testkit::stderr(&out)
    );
    assert!(fifo.exists(), "someone else's FIFO is left alone");
}

/// A pid file planted by another user (in a shared directory it could be there first) is
/// neither locked nor written nor deleted: the daemon refuses to start. Needs root to chown.
#[test]
fn a_pid_file_owned_by_another_user_is_refused_and_kept() {
    if !support::root_or_skip("a_pid_file_owned_by_another_user_is_refused_and_kept") {
        return;
    }
    let sb = Sandbox::new();
    let fifo = sb.join("app.fifo");
    let pid = pid_file(&fifo);
    std::fs::write(&pid, "1\n").unwrap();
    nix::unistd::chown(&pid, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let out = testkit::run(fifo_demo(&sb).arg("daemon").arg("--fifo").arg(&fifo), b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "fifo-demo: {}: owned by uid 65534, not by us (uid 0): refusing a pid file \
             someone else made\n",
            pid.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&pid).unwrap(),
        "1\n",
        "left as it was"
    );
    assert!(!fifo.exists(), "no FIFO made");
}

/// The daemon's status lines on stderr never hold it up: with stderr on a pipe that is full
/// before it starts and that nobody reads, it still gets ready, logs, and stops on SIGTERM
/// with status 0 (its lines are dropped, not waited for: `common::out::Output`). A plain
/// write(2) to that stderr would sleep before the ready line, forever.
#[test]
fn a_full_stderr_nobody_reads_never_holds_the_daemon_up() {
    use std::os::fd::OwnedFd;
    let sb = Sandbox::new();
    let (unread, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    // Full before the daemon writes a byte: what a stalled reader leaves. Filled without
    // blocking, then made blocking again: the flag belongs to the open file description the
    // daemon gets as its stderr.
    let setfl = |flags| nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_SETFL(flags));
    setfl(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
    while nix::unistd::write(&write_end, &[b'x'; 4096]).is_ok() {}
    setfl(nix::fcntl::OFlag::empty()).unwrap();
    let mut cmd = fifo_demo(&sb);
    cmd.args(["daemon", "--log", "app.log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(write_end));
    let opts = common::child::Options {
        deadline: Some(WAIT),
        own_group: true,
    };
    let child = common::child::Supervised::spawn("daemon", &mut cmd, opts).unwrap();
    drop(cmd);
    let mut stdout = child.stdout_lines().unwrap();
    let ready = stdout.wait_for(|l| l.starts_with("ready: "), WAIT).unwrap();
    let fifo = ready.rsplit_once(" fifo ").unwrap().1.to_owned();
    let out = log(&sb, std::path::Path::new(&fifo), &["still", "logging"], b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    wait_for_line(&sb.join("app.log"), |l| l.ends_with(" still logging"));
    child.signal(Signal::SIGTERM).unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(0), "a daemon asked to stop exits 0");
    assert!(!std::path::Path::new(&fifo).exists(), "FIFO left behind");
    drop(unread);
}
