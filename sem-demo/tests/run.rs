//! `sem-demo run`: status passthrough, timeouts, K at once, the initialisation race, and
//! holders killed with SIGKILL.

mod support;

use std::time::Duration;

use common::child::Lines;
use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, kill};
use support::{Cleanup, WAIT, cmd, code, max_overlap, run, unique, value};

/// A shell command that records its start (`s`) and end (`e`) in LOG. It does not end before
/// K commands have started, so the first K that get a permit are certainly in at once (no
/// timing involved): a semaphore that let in fewer would hang the test at its deadline, one
/// that let in more shows as more than K `s` lines without an `e` between them.
fn recorder(log: &std::path::Path, k: &str) -> String {
    let log = log.display();
    format!(
        "echo s >> {log}; while [ \"$(grep -c s {log})\" -lt {k} ]; do sleep 0.01; done; echo e >> {log}"
    )
}

#[test]
fn exit_status_is_passed_through() {
    let sb = Sandbox::new();
    let name = unique("status");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    assert_eq!(
        code(&sb, &["run", "--name", &name, "--", "sh", "-c", "exit 7"]),
        7
    );
    assert_eq!(code(&sb, &["run", "--name", &name, "--", "true"]), 0);
    // A command killed by signal N: 128+N, as a shell reports it.
    assert_eq!(
        code(
            &sb,
            &["run", "--name", &name, "--", "sh", "-c", "kill -TERM $$"]
        ),
        143
    );
    assert_eq!(
        code(
            &sb,
            &["run", "--name", &name, "--", "sh", "-c", "kill -KILL $$"]
        ),
        137
    );
    let out = run(&sb, &["run", "--name", &name, "--", "no-such-command-here"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        testkit::stderr(&out).contains("cannot run 'no-such-command-here'"),
        "{out:?}"
    );
    let out = run(&sb, &["run", "--name", &name, "--", "/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "not executable: {out:?}");
    // The command gets default signal dispositions and an empty mask: `yes` dies quietly of
    // SIGPIPE (Rust's ignored SIGPIPE would make it complain), and SIGINT/SIGTERM reach it.
    let out = run(
        &sb,
        &[
            "run",
            "--name",
            &name,
            "--",
            "sh",
            "-c",
            "yes | head -1; grep SigBlk /proc/self/status",
        ],
    );
    assert_eq!(testkit::stdout(&out), "y\nSigBlk:\t0000000000000000\n");
    assert_eq!(testkit::stderr(&out), "");
    // The permit was given back every time.
    assert_eq!(value(&sb, &name, "--sysv"), 1);
    // stdin, stdout and arguments reach the command untouched.
    let out = testkit::run(
        &mut cmd(&sb, &["run", "--name", &name, "--", "tr", "a-z", "A-Z"]),
        b"hi\n",
    );
    assert_eq!(testkit::stdout(&out), "HI\n");
}

#[test]
fn a_timeout_gives_up_with_the_message_and_exit_1() {
    for flavor in [&[][..], &["--posix"]] {
        let sb = Sandbox::new();
        let name = unique("timeout");
        let _c = Cleanup {
            sb: &sb,
            name: name.clone(),
            flavor: if flavor.is_empty() {
                "--sysv"
            } else {
                "--posix"
            },
        };
        let mut holder_cmd = cmd(&sb, &["run", "--name", &name]);
        holder_cmd
            .args(flavor)
            .args(["--", "sh", "-c", "echo held; exec sleep 600"]);
        let holder = testkit::spawn(&mut holder_cmd);
        holder
            .stdout_lines()
            .unwrap()
            .wait_for(|l| l == "held", WAIT)
            .unwrap();
        let mut args = vec!["run", "--name", &name, "--timeout", "0.25"];
        args.extend_from_slice(flavor);
        args.extend(["--", "echo", "never"]);
        let out = run(&sb, &args);
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty(), "the command did not run");
        assert_eq!(
            testkit::stderr(&out),
            format!("sem-demo: timed out after 0.25 s waiting for {name}\n")
        );
    }
}

#[test]
fn changing_k_for_an_existing_name_is_refused() {
    let sb = Sandbox::new();
    let name = unique("k");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    assert_eq!(
        code(&sb, &["run", "--name", &name, "--limit", "3", "--", "true"]),
        0
    );
    assert_eq!(
        code(&sb, &["run", "--name", &name, "--limit", "3", "--", "true"]),
        0
    );
    assert_eq!(
        code(&sb, &["run", "--name", &name, "--", "true"]),
        0,
        "no --limit: use K"
    );
    let out = run(
        &sb,
        &["run", "--name", &name, "--limit", "2", "--", "echo", "ran"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        testkit::stderr(&out).contains("exists with 3 permits, not 2"),
        "{}",
        testkit::stderr(&out)
    );
    assert_eq!(value(&sb, &name, "--sysv"), 3);
}

/// Start `count` runs of `recorder` at once under K = `k`; all must succeed. Returns the most
/// that ran at once.
fn concurrent_runs(sb: &Sandbox, name: &str, k: &str, count: usize) -> usize {
    let log = sb.join(format!("{name}.log"));
    let script = recorder(&log, k);
    let runs: Vec<_> = (0..count)
        .map(|_| {
            testkit::spawn(&mut cmd(
                sb,
                &[
                    "run", "--name", name, "--limit", k, "--", "sh", "-c", &script,
                ],
            ))
        })
        .collect();
    for r in &runs {
        let status = r.wait_timeout(WAIT).unwrap();
        let err = r
            .stderr_lines()
            .map(|mut l| l.rest(WAIT).unwrap().join("\n"));
        assert!(status.success(), "{status:?}: {err:?}");
    }
    max_overlap(&std::fs::read_to_string(&log).unwrap())
}

#[test]
fn never_more_than_k_commands_at_once() {
    let sb = Sandbox::new();
    let name = unique("k3");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let max = concurrent_runs(&sb, &name, "3", 9);
    // Three were in at once (the recorder waits for that), and never a fourth.
    assert_eq!(max, 3);
    assert_eq!(value(&sb, &name, "--sysv"), 3);
}

#[test]
fn fifty_concurrent_first_runs_all_see_k_permits() {
    let sb = Sandbox::new();
    let name = unique("race");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    // The name is new: one of the fifty creates it (IPC_EXCL), the others must wait until it
    // is initialised (sem_otime), or they would take a permit from a set that has none yet,
    // or record a different K and be refused.
    let max = concurrent_runs(&sb, &name, "4", 50);
    assert_eq!(max, 4, "{max} at once with K = 4");
    assert_eq!(value(&sb, &name, "--sysv"), 4);
    let out = run(&sb, &["-v", "value", "--sysv", &name]);
    assert!(
        testkit::stderr(&out).contains("K = 4"),
        "{}",
        testkit::stderr(&out)
    );
}

/// Start a holder of NAME's only permit and return it once its command runs, with the rest
/// of its output.
fn holder(sb: &Sandbox, name: &str, posix: bool) -> (common::child::Supervised, Lines) {
    let mut c = cmd(sb, &["run", "--name", name, "--timeout", "30"]);
    if posix {
        c.arg("--posix");
    }
    c.args(["--", "sh", "-c", "echo held; exec sleep 600"]);
    let h = testkit::spawn(&mut c);
    let mut out = h.stdout_lines().unwrap();
    out.wait_for(|l| l == "held", WAIT)
        .unwrap_or_else(|e| panic!("holder: {e}"));
    (h, out)
}

#[test]
fn a_sigkilled_sysv_holder_gives_its_permit_back_and_its_command_dies() {
    let sb = Sandbox::new();
    let name = unique("killed");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let (h, mut out) = holder(&sb, &name, false);
    assert_eq!(value(&sb, &name, "--sysv"), 0);
    kill(h.pid(), Signal::SIGKILL).unwrap();
    h.wait_timeout(WAIT).unwrap();
    // The command (sleep, holding the pipe's write end) died with `run`: end of output.
    assert_eq!(out.rest(WAIT).unwrap(), Vec::<String>::new());
    assert_eq!(
        value(&sb, &name, "--sysv"),
        1,
        "SEM_UNDO gave the permit back"
    );
    assert_eq!(
        code(
            &sb,
            &["run", "--name", &name, "--timeout", "10", "--", "true"]
        ),
        0
    );
}

/// `run` killed while its command runs: the command must never run without the permit. In
/// the kernel's exit path the dying `run`'s undo list is applied before the death signal that
/// kills its command is sent, so the next `run` could start while the old command still ran
/// (as long as the death signal took to act). The instant is made certain with a command
/// that outlives `run`: `setpriv --pdeathsig clear` (util-linux) takes the death signal back.
/// The permit must stay taken until that command ends, as a `flock` lock stays with its
/// command.
#[test]
fn a_sigkilled_run_keeps_the_permit_until_its_command_ends() {
    let sb = Sandbox::new();
    let name = unique("outlive");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let setpriv = testkit::run(std::process::Command::new("setpriv").arg("--help"), b"");
    assert!(
        testkit::stdout(&setpriv).contains("--pdeathsig"),
        "this test needs util-linux's setpriv with --pdeathsig: {setpriv:?}"
    );
    let mut c = cmd(&sb, &["run", "--name", &name, "--"]);
    c.args(["setpriv", "--pdeathsig", "clear", "--"]);
    c.args(["sh", "-c", "echo $$; exec sleep 600"]);
    let h = testkit::spawn(&mut c);
    let mut out = h.stdout_lines().unwrap();
    let pid = out.next_line(WAIT).unwrap().expect("the command's pid");
    let command = nix::unistd::Pid::from_raw(pid.parse().expect("a pid"));
    // Killed at the end of the test whatever happens: it has no parent of ours any more.
    struct KillAtEnd(nix::unistd::Pid);
    impl Drop for KillAtEnd {
        fn drop(&mut self) {
            let _ = kill(self.0, Signal::SIGKILL);
        }
    }
    let _command = KillAtEnd(command);

    kill(h.pid(), Signal::SIGKILL).unwrap();
    h.wait_timeout(WAIT).unwrap();
    assert!(!testkit::not_running(command), "the command outlives run");
    assert_eq!(value(&sb, &name, "--sysv"), 0, "the command still holds it");
    let next = [
        "run",
        "--name",
        &name,
        "--timeout",
        "0.2",
        "--",
        "echo",
        "ran",
    ];
    let out_next = run(&sb, &next);
    assert_eq!(out_next.status.code(), Some(1), "{out_next:?}");
    assert!(out_next.stdout.is_empty(), "{out_next:?}");

    // The command ends: only now does the permit come back.
    kill(command, Signal::SIGKILL).unwrap();
    support::wait_not_running(&[command], "the command");
    assert_eq!(value(&sb, &name, "--sysv"), 1);
    let next = [
        "run",
        "--name",
        &name,
        "--timeout",
        "10",
        "--",
        "echo",
        "ran",
    ];
    assert_eq!(testkit::stdout(&run(&sb, &next)), "ran\n");
}

#[test]
fn a_sigkilled_posix_holder_loses_its_permit_until_posted() {
    let sb = Sandbox::new();
    let name = unique("killedp");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    let (h, _out) = holder(&sb, &name, true);
    kill(h.pid(), Signal::SIGKILL).unwrap();
    h.wait_timeout(WAIT).unwrap();
    assert_eq!(value(&sb, &name, "--posix"), 0, "nobody gave it back");
    let args = [
        "run",
        "--posix",
        "--name",
        &name,
        "--timeout",
        "0.2",
        "--",
        "true",
    ];
    assert_eq!(code(&sb, &args), 1);
    assert_eq!(code(&sb, &["post", &name]), 0);
    assert_eq!(code(&sb, &args), 0);
}

#[test]
fn a_sigterm_to_run_reaches_the_command_and_the_permit_comes_back() {
    for posix in [false, true] {
        let sb = Sandbox::new();
        let name = unique("term");
        let flavor = if posix { "--posix" } else { "--sysv" };
        let _c = Cleanup {
            sb: &sb,
            name: name.clone(),
            flavor,
        };
        let (h, _out) = holder(&sb, &name, posix);
        // Only `run` is signalled: it passes SIGTERM on to sh's exec'd sleep, then posts.
        kill(h.pid(), Signal::SIGTERM).unwrap();
        let status = h.wait_timeout(WAIT).unwrap();
        assert_eq!(status.code(), Some(143), "{status:?}");
        assert_eq!(value(&sb, &name, flavor), 1);
    }
}

/// `run` stopped by SIGINT, SIGTERM or SIGHUP while it waits for a permit, before its command
/// has started: it holds nothing and has nothing to clean up, so it dies of the signal, which
/// a shell reports as 128+N (`$?` 130, 143, 129), as it does for a command killed by N that
/// `run` passes on (`exit_status_is_passed_through`). The instant is certain: the test sends
/// the signal while `run` sleeps in the semaphore's wait (semtimedop, or futex for POSIX).
#[test]
fn a_run_stopped_while_it_waits_for_a_permit_dies_of_the_signal_holding_nothing() {
    for (posix, sig) in [
        (false, Signal::SIGINT),
        (false, Signal::SIGTERM),
        (true, Signal::SIGHUP),
    ] {
        let sb = Sandbox::new();
        let name = unique("waitstop");
        let flavor = if posix { "--posix" } else { "--sysv" };
        let _c = Cleanup {
            sb: &sb,
            name: name.clone(),
            flavor,
        };
        let (h, _out) = holder(&sb, &name, posix);
        let mut c = cmd(&sb, &["run", "--name", &name]);
        if posix {
            c.arg("--posix");
        }
        let waiter = testkit::spawn(c.args(["--", "echo", "never"]));
        let sleeps_in = if posix {
            libc::SYS_futex
        } else {
            libc::SYS_semtimedop
        };
        let give_up = std::time::Instant::now() + WAIT;
        while testkit::syscall(waiter.pid()).map(|(n, _)| n) != Some(sleeps_in) {
            assert!(std::time::Instant::now() < give_up, "run never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        kill(waiter.pid(), sig).unwrap();
        let status = waiter.wait_timeout(WAIT).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(sig as i32),
            "{flavor} {sig}: {status:?}"
        );
        let said = waiter.stdout_lines().unwrap().rest(WAIT).unwrap();
        assert_eq!(said, Vec::<String>::new(), "the command never ran");
        // The holder's permit is still the only one taken, and it comes back with it.
        assert_eq!(value(&sb, &name, flavor), 0, "{flavor} {sig}");
        kill(h.pid(), Signal::SIGTERM).unwrap();
        h.wait_timeout(WAIT).unwrap();
        assert_eq!(value(&sb, &name, flavor), 1, "{flavor} {sig}");
    }
}

#[test]
fn a_thousand_killed_holders_never_block_the_next() {
    let sb = Sandbox::new();
    let name = unique("kill1000");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    // Each holder waits for the permit its predecessor held when it was killed (with a
    // --timeout, so a lost permit fails the test rather than hanging it), takes it, and is
    // killed in turn. Every other one is killed before it has even printed: at whatever
    // instant it is at (opening, waiting, forking).
    for i in 0..1000 {
        let mut c = cmd(&sb, &["run", "--name", &name, "--timeout", "20"]);
        c.args(["--", "sh", "-c", "echo held; exec sleep 600"]);
        let h = testkit::spawn(&mut c);
        if i % 2 == 0 {
            let held = h.stdout_lines().unwrap().wait_for(|l| l == "held", WAIT);
            assert!(held.is_ok(), "holder {i} never got the permit: {held:?}");
        }
        kill(h.pid(), Signal::SIGKILL).unwrap();
        h.wait_timeout(WAIT).unwrap();
    }
    // The last holder's command (if it had started) may still be dying of its death signal:
    // the permit comes back once it has.
    let out = testkit::run_with_deadline(
        &mut cmd(
            &sb,
            &["run", "--name", &name, "--timeout", "20", "--", "true"],
        ),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(value(&sb, &name, "--sysv"), 1);
}

#[test]
fn a_name_removed_while_the_command_runs_keeps_the_commands_status() {
    let sb = Sandbox::new();
    let name = unique("removed");
    let script = format!("sem-demo unlink --sysv {name}; exit 5");
    let mut c = cmd(&sb, &["run", "--name", &name, "--", "sh", "-c", &script]);
    c.env("PATH", support::path_with_bin());
    let out = testkit::run(&mut c, b"");
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = testkit::stderr(&out);
    assert!(err.starts_with("sem-demo: warning: semop"), "{err}");
}

#[test]
fn a_parent_that_ignores_sigchld_still_gets_the_status() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let name = unique("chld");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let mut c = cmd(&sb, &["run", "--name", &name, "--", "sh", "-c", "exit 3"]);
    // An ignored SIGCHLD survives exec, as when a daemon that ignores it starts us.
    // SAFETY: signal() is async-signal-safe, and SIG_IGN installs no handler.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        })
    };
    let out = testkit::run(&mut c, b"");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // ...and the command still finds SIGCHLD ignored, as it would without `run` in between
    // (`run` needs the default action for itself): bit 17-1 of SigIgn.
    // (grep itself: a shell would take SIGCHLD back for its own waits.)
    let show = ["grep", "SigIgn", "/proc/self/status"];
    let mut c = cmd(&sb, &["run", "--name", &name, "--"]);
    c.args(show);
    // SAFETY: as above.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        })
    };
    let out = testkit::run(&mut c, b"");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = testkit::stdout(&out);
    let mask = text
        .trim()
        .strip_prefix("SigIgn:\t")
        .and_then(|m| u64::from_str_radix(m, 16).ok())
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_ne!(mask & (1 << (libc::SIGCHLD - 1)), 0, "SigIgn {mask:#x}");
}

#[test]
fn a_frozen_holder_keeps_its_permit_and_a_killed_one_gives_it_back() {
    let sb = Sandbox::new();
    let name = unique("frozen");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let (h, mut out) = holder(&sb, &name, false);
    // Stopped, not dead: SEM_UNDO acts only when a process ends, so the permit stays taken.
    let frozen = testkit::freeze(h.pid());
    let waiter = ["run", "--name", &name, "--timeout", "0.2", "--", "true"];
    assert_eq!(code(&sb, &waiter), 1);
    assert_eq!(value(&sb, &name, "--sysv"), 0);
    // Killed while certainly holding it (SIGKILL ends a stopped process too): back as soon
    // as its command, which shares the permit, has died of its death signal (the end of
    // its output).
    kill(h.pid(), Signal::SIGKILL).unwrap();
    h.wait_timeout(WAIT).unwrap();
    drop(frozen);
    assert_eq!(out.rest(WAIT).unwrap(), Vec::<String>::new());
    assert_eq!(value(&sb, &name, "--sysv"), 1);
    assert_eq!(
        code(
            &sb,
            &["run", "--name", &name, "--timeout", "10", "--", "true"]
        ),
        0
    );
}

/// An executable without `#!` and with many arguments: execve fails with ENOEXEC and
/// execvp then runs it with /bin/sh, building the new argument list (one pointer per
/// argument, here 400 KB) on the stack of the process that called it: the stack `run` gives
/// its child (`spawn.rs`, `ChildStack`), which must be sized for it. A fixed 256 KiB stack
/// carved out of `run`'s heap overflowed into that heap ("double free or corruption"), and
/// the command never ran.
#[test]
fn a_script_without_shebang_and_many_arguments_runs() {
    let sb = Sandbox::new();
    let name = unique("noshebang");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let script = sb.join("noshebang");
    std::fs::write(&script, "echo \"$# args, last $(eval echo \\${$#})\"\n").expect("write script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod script");
    let args: Vec<String> = (1..=50_000).map(|i| i.to_string()).collect();
    let mut argv = vec!["run", "--name", &name, "--"];
    argv.push(script.to_str().expect("UTF-8 sandbox path"));
    argv.extend(args.iter().map(String::as_str));
    let out = run(&sb, &argv);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(testkit::stdout(&out), "50000 args, last 50000\n");
    assert_eq!(value(&sb, &name, "--sysv"), 1);
}

/// Options before the command are `run`'s: a misspelt one is a usage error (exit 2) that
/// runs nothing, not the name of a command to run (it used to be run, and fail with 127).
/// From the command's first word on, everything is the command's, dashes included.
#[test]
fn an_unknown_option_before_the_command_is_a_usage_error() {
    let sb = Sandbox::new();
    let name = unique("opts");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    for args in [
        &["run", "--nmae", &name, "--", "echo", "ran"][..],
        &["run", "--name", &name, "--limt", "2", "echo", "ran"],
        &["run", "-x", "--", "echo", "ran"],
    ] {
        let out = run(&sb, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?} ran the command: {out:?}");
        let err = testkit::stderr(&out);
        assert!(err.contains("unexpected argument"), "{args:?}: {err}");
    }
    // Without `--`, the first word that is not an option starts the command, and what
    // follows is its own, options of `run` included.
    let out = run(&sb, &["run", "--name", &name, "echo", "-n", "--name", "x"]);
    assert_eq!(testkit::stdout(&out), "--name x", "{out:?}");
    // After `--`, even a word with a dash is the command.
    let out = run(&sb, &["run", "--name", &name, "--", "--no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
}
