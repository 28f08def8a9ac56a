//! Who holds a pid file, asked of another process at the unlucky instants: a newcomer that
//! has taken a dead daemon's file over but not yet written its pid, and a holder that opened
//! its own pid file a second time.
//!
//! This file is its own child: run with `child MODE FILE` it takes the pid file, otherwise it
//! runs the tests, which start it again with those arguments. The pid a test asks about must
//! be held by another process: the kernel never reports a process's own record locks to it.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use common::pidfile::{self, PidFile};
use common::testkit::{self, Sandbox};
use nix::sys::signal::{Signal, raise};
use nix::unistd::Pid;

const WAIT: Duration = Duration::from_secs(60);

/// The child. `stop-at-STEP`: take the pid file, stopping itself (SIGSTOP) right after STEP
/// (`record lock` or `flock`), before it writes its pid. `reopen`: take it, then read it and
/// try to take it again in this same process, as a careless daemon might. Then say `held`
/// and wait to be killed.
fn child(mode: &str, file: &Path) -> ExitCode {
    let _held = match mode.strip_prefix("stop-at-") {
        Some(at) => PidFile::create_observed(file, &mut |step| {
            if step == at {
                raise(Signal::SIGSTOP).expect("raise SIGSTOP");
            }
        }),
        None => PidFile::create(file),
    }
    .expect("take the pid file");
    if mode == "reopen" {
        let me = Pid::this();
        assert_eq!(pidfile::read(file).expect("read our own pid file"), me);
        let refused = PidFile::create(file).expect_err("a second take in the same process");
        assert!(
            refused.to_string().ends_with(&format!("(pid {me})")),
            "{refused}"
        );
    }
    println!("held");
    // Holding the pid file until the test kills us.
    loop {
        std::thread::park();
    }
}

fn start(sb: &Sandbox, mode: &str, file: &Path) -> common::child::Supervised {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = sb.command(exe);
    cmd.args(["child", mode]).arg(file);
    testkit::spawn(&mut cmd)
}

/// A pid file left by a daemon killed with -9 whose pid now belongs to an unrelated live
/// process (here a `sleep`): exactly what `kill $(cat FILE)` must not hit.
fn stale_file_naming(sb: &Sandbox, other: Pid) -> std::path::PathBuf {
    let file = sb.join("d.pid");
    std::fs::write(&file, format!("{other}\n")).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    file
}

fn a_takeover_not_yet_written_is_named_by_the_lock_not_by_the_file() {
    for step in ["record lock", "flock"] {
        let sb = Sandbox::new();
        let unrelated = testkit::spawn(Command::new("sleep").arg("60"));
        let file = stale_file_naming(&sb, unrelated.pid());
        assert!(pidfile::read(&file).is_err(), "stale before the takeover");

        let newcomer = start(&sb, &format!("stop-at-{step}"), &file);
        // The child stops itself there; this returns once it has.
        let frozen = testkit::stopped(newcomer.pid());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{}\n", unrelated.pid()),
            "{step}: the file still names the dead daemon's pid"
        );
        assert_eq!(
            pidfile::read(&file).unwrap(),
            newcomer.pid(),
            "{step}: read names the process that holds the lock"
        );
        let refused = PidFile::create(&file).unwrap_err().to_string();
        assert!(
            refused.ends_with(&format!(
                "locked by a running daemon (pid {})",
                newcomer.pid()
            )),
            "{step}: {refused}"
        );

        drop(frozen);
        newcomer
            .stdout_lines()
            .unwrap()
            .wait_for(|l| l == "held", WAIT)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{}\n", newcomer.pid())
        );
        assert_eq!(pidfile::read(&file).unwrap(), newcomer.pid());
    }
}

fn opening_its_own_pid_file_again_does_not_lose_the_lock_that_names_the_holder() {
    let sb = Sandbox::new();
    let file = sb.join("d.pid");
    let holder = start(&sb, "reopen", &file);
    holder
        .stdout_lines()
        .unwrap()
        .wait_for(|l| l == "held", WAIT)
        .unwrap();
    // Closing the descriptors it opened the second and third time released the record lock
    // (POSIX locks go with any close of the file); the holder took it back.
    assert_eq!(pidfile::read(&file).unwrap(), holder.pid());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, mode, file] = args.as_slice()
        && role == "child"
    {
        return child(mode, Path::new(file));
    }
    let tests: [(&str, fn()); 2] = [
        (
            "a_takeover_not_yet_written_is_named_by_the_lock_not_by_the_file",
            a_takeover_not_yet_written_is_named_by_the_lock_not_by_the_file,
        ),
        (
            "opening_its_own_pid_file_again_does_not_lose_the_lock_that_names_the_holder",
            opening_its_own_pid_file_again_does_not_lose_the_lock_that_names_the_holder,
        ),
    ];
    testkit::run_tests(&tests)
}
