//! The cleanup guards and the shutdown hook, tested on a real child process.
//!
//! This file is its own child: run with `child MODE FILE` it plays the guarded process,
//! otherwise it runs the tests, which start it again with those arguments and signal it.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use common::cleanup::{Shutdown, Unlink};
use common::testkit::{self, Sandbox};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, raise};

const WAIT: Duration = Duration::from_secs(30);

/// The supervisor: start `sleep` tied to us, say its pid, and wait to be killed.
fn supervisor() -> ExitCode {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("300");
    common::child::die_with_supervisor(&mut cmd, Signal::SIGKILL);
    let mut sleeper = cmd.spawn().expect("spawn sleep");
    println!("sleeper {}", sleeper.id());
    // Until the test kills us: then the kernel, not this wait, must end the sleeper.
    let _ = sleeper.wait();
    ExitCode::SUCCESS
}

/// The tied parent: start the child (in `mode`) tied to us with SIGTERM, in our process group,
/// stdout shared with ours; then wait to be killed.
fn tied_parent(mode: &str, file: &Path) -> ExitCode {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["child", mode]).arg(file);
    common::child::die_with_supervisor(&mut cmd, Signal::SIGTERM);
    let mut child = cmd.spawn().expect("spawn the tied child");
    let _ = child.wait();
    ExitCode::SUCCESS
}

/// Send ourselves `sig` as the kernel sends a parent-death signal: SI_USER, from `sender`.
/// (rt_sigqueueinfo(2) lets a process give itself any siginfo; nix does not wrap it.)
fn raise_from(sig: Signal, sender: libc::pid_t) {
    // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    info.si_signo = sig as libc::c_int;
    info.si_code = libc::SI_USER;
    // si_pid sits right after the three ints of the header (glibc's _kill layout), the same
    // place libc's si_pid() reads.
    // SAFETY: the struct is 128 bytes, so the int at offset 16 is inside it; it is properly
    // aligned (siginfo_t is 8-aligned).
    unsafe {
        let base = (&raw mut info).cast::<u8>();
        base.add(16).cast::<libc::pid_t>().write(sender);
    }
    // SAFETY: rt_sigqueueinfo to ourselves with a siginfo that lives across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            libc::getpid(),
            sig as libc::c_int,
            &raw const info,
        )
    };
    assert_eq!(
        rc,
        0,
        "rt_sigqueueinfo: {}",
        std::io::Error::last_os_error()
    );
}

/// The child: create FILE, guard it, say "ready", then wait for a shutdown signal.
fn child(mode: &str, file: &Path) -> ExitCode {
    let parent = nix::unistd::getppid().as_raw();
    let shutdown = match mode {
        "hup" | "orphan" => Shutdown::install_with(&[Signal::SIGHUP]),
        // A SIGTERM sent to ourselves between two of the installing steps, where a signal
        // not blocked would meet a half-installed handler and be lost.
        "early" => Shutdown::install_observed(&[], &mut |sig, step| {
            if sig == Signal::SIGTERM && step == "request" {
                raise(Signal::SIGTERM).expect("raise SIGTERM");
            }
        }),
        _ => Shutdown::install(),
    }
    .expect("install shutdown handlers");
    if mode == "early" {
        // The SIGTERM raised while installing must have woken the self-pipe, not only set the
        // flag: a main loop asleep in poll sees only the pipe.
        let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::ZERO) != Ok(1) {
            println!("swallowed: the self-pipe was not written");
            return ExitCode::FAILURE;
        }
    }
    std::fs::write(file, b"x").expect("create the guarded file");
    let guard = Unlink::path(file);
    if mode == "orphan" {
        println!("pid {}", std::process::id());
    }
    println!("ready");
    if mode == "return" {
        drop(guard);
        return ExitCode::SUCCESS;
    }
    let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
    while !shutdown.requested() {
        let _ = poll(&mut fds, PollTimeout::NONE);
    }
    println!("stopping on {:?}", shutdown.signal());
    if mode == "pdeath" {
        // The parent died and its SIGTERM stopped us. A parent with several threads sends
        // it again as we are passed from thread to thread: the same request, which must not
        // count as a second signal (that would exit at once, the file left behind).
        assert_ne!(
            nix::unistd::getppid().as_raw(),
            parent,
            "the parent is gone"
        );
        // Twice: a supervisor with three threads hands us on twice before init takes us.
        raise_from(Signal::SIGTERM, parent);
        raise_from(Signal::SIGTERM, parent);
        println!("survived the repeat");
    }
    if mode == "slow" {
        // Stuck in shutdown: only a second signal ends this (the test's deadline bounds it).
        std::thread::sleep(Duration::from_secs(3600));
    }
    ExitCode::SUCCESS
}

fn start(sandbox: &Sandbox, mode: &str, file: &Path) -> common::child::Supervised {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = sandbox.command(exe);
    cmd.args(["child", mode]).arg(file);
    testkit::spawn(&mut cmd)
}

fn guard_removes_on_return() {
    let sb = Sandbox::new();
    let file = sb.join("obj");
    let child = start(&sb, "return", &file);
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success());
    assert!(
        !file.exists(),
        "the guard did not remove {}",
        file.display()
    );
}

fn sigterm_unwinds_through_guards() {
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        let sb = Sandbox::new();
        let file = sb.join("obj");
        let child = start(&sb, "wait", &file);
        let mut out = child.stdout_lines().unwrap();
        out.wait_for(|l| l == "ready", WAIT).unwrap();
        assert!(file.exists());
        child.signal(sig).unwrap();
        let line = out.wait_for(|l| l.starts_with("stopping"), WAIT).unwrap();
        assert_eq!(line, format!("stopping on Some({sig:?})"));
        let status = child.wait_timeout(WAIT).unwrap();
        assert!(status.success(), "{sig}: {status:?}");
        assert!(
            !file.exists(),
            "{sig}: the guard did not remove {}",
            file.display()
        );
    }
}

fn extra_signal_stops_like_sigterm() {
    let sb = Sandbox::new();
    let file = sb.join("obj");
    let child = start(&sb, "hup", &file);
    let mut out = child.stdout_lines().unwrap();
    out.wait_for(|l| l == "ready", WAIT).unwrap();
    child.signal(Signal::SIGHUP).unwrap();
    let line = out.wait_for(|l| l.starts_with("stopping"), WAIT).unwrap();
    assert_eq!(line, "stopping on Some(SIGHUP)");
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "SIGHUP: {status:?}");
    assert!(
        !file.exists(),
        "SIGHUP: the guard did not remove {}",
        file.display()
    );
}

fn signal_during_install_is_kept() {
    let sb = Sandbox::new();
    let file = sb.join("obj");
    let child = start(&sb, "early", &file);
    let mut out = child.stdout_lines().unwrap();
    // Nobody signals the child after start: the only SIGTERM is the one it raised while
    // installing, and it must not have been swallowed.
    let line = out.wait_for(|l| l.starts_with("stopping"), WAIT).unwrap();
    assert_eq!(line, "stopping on Some(SIGTERM)");
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        !file.exists(),
        "the guard did not remove {}",
        file.display()
    );
}

fn a_tied_child_dies_with_its_supervisor() {
    let sb = Sandbox::new();
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = sb.command(exe);
    cmd.arg("supervisor");
    let supervisor = testkit::spawn(&mut cmd);
    let mut out = supervisor.stdout_lines().unwrap();
    let line = out.wait_for(|l| l.starts_with("sleeper "), WAIT).unwrap();
    let pid = nix::unistd::Pid::from_raw(line["sleeper ".len()..].parse().unwrap());
    assert!(
        !testkit::not_running(pid),
        "the sleeper runs while its supervisor does"
    );
    // SIGKILL: nothing in the supervisor runs, no drop, no handler. Only the kernel can act.
    supervisor.signal(Signal::SIGKILL).unwrap();
    supervisor.wait_timeout(WAIT).unwrap();
    let end = std::time::Instant::now() + WAIT;
    while !testkit::not_running(pid) {
        assert!(
            std::time::Instant::now() < end,
            "sleeper {pid} outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn a_repeated_parent_death_signal_is_one_request() {
    let sb = Sandbox::new();
    let file = sb.join("obj");
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = sb.command(exe);
    cmd.args(["tied-parent", "pdeath"]).arg(&file);
    let parent = testkit::spawn(&mut cmd);
    let mut out = parent.stdout_lines().unwrap();
    out.wait_for(|l| l == "ready", WAIT).unwrap();
    // The parent alone (Supervised::signal would reach its whole group, the child too).
    nix::sys::signal::kill(parent.pid(), Signal::SIGKILL).unwrap();
    parent.wait_timeout(WAIT).unwrap();
    let line = out.wait_for(|l| l.starts_with("stopping"), WAIT).unwrap();
    assert_eq!(line, "stopping on Some(SIGTERM)");
    out.wait_for(|l| l == "survived the repeat", WAIT)
        .expect("a repeated parent-death SIGTERM does not exit at once");
    // The child unwinds through its guard (it is not our child: wait for the file to go).
    let end = std::time::Instant::now() + WAIT;
    while file.exists() {
        assert!(
            std::time::Instant::now() < end,
            "the guard did not remove {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child stopped (SIGSTOP) in its tied parent's process group when that parent is killed:
/// the group is orphaned with a stopped member, so the kernel sends the child SIGHUP and
/// SIGCONT, on top of its parent-death SIGTERM. That is one request to stop, not a second
/// signal that exits at once: the child still unwinds through its guard.
fn an_orphaned_stopped_child_takes_the_kernels_hangup_as_the_same_request() {
    let sb = Sandbox::new();
    let file = sb.join("obj");
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = sb.command(exe);
    cmd.args(["tied-parent", "orphan"]).arg(&file);
    // A group of its own, in our session: its death orphans that group.
    let parent = testkit::spawn(&mut cmd);
    let mut out = parent.stdout_lines().unwrap();
    let line = out.wait_for(|l| l.starts_with("pid "), WAIT).unwrap();
    let child = nix::unistd::Pid::from_raw(line["pid ".len()..].parse().unwrap());
    out.wait_for(|l| l == "ready", WAIT).unwrap();
    let frozen = testkit::freeze(child);
    nix::sys::signal::kill(parent.pid(), Signal::SIGKILL).unwrap();
    parent.wait_timeout(WAIT).unwrap();
    // Continued by the kernel's SIGCONT, not by us: this guard's SIGCONT comes later, if ever.
    let line = out.wait_for(|l| l.starts_with("stopping"), WAIT).unwrap();
    assert!(
        line == "stopping on Some(SIGTERM)" || line == "stopping on Some(SIGHUP)",
        "{line}"
    );
    let end = std::time::Instant::now() + WAIT;
    while file.exists() {
        assert!(
            std::time::Instant::now() < end,
            "the guard did not remove {}: the hangup was taken as a second signal",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(frozen);
}

fn second_signal_exits_at_once() {
    let sb = Sandbox::new();
    let file = sb.join("obj");
    let child = start(&sb, "slow", &file);
    let mut out = child.stdout_lines().unwrap();
    out.wait_for(|l| l == "ready", WAIT).unwrap();
    child.signal(Signal::SIGINT).unwrap();
    out.wait_for(|l| l.starts_with("stopping"), WAIT).unwrap();
    child.signal(Signal::SIGINT).unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "a second SIGINT exits with 128 + 2"
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, mode, file] = args.as_slice()
        && role == "child"
    {
        return child(mode, Path::new(file));
    }
    if let [_, role] = args.as_slice()
        && role == "supervisor"
    {
        return supervisor();
    }
    if let [_, role, mode, file] = args.as_slice()
        && role == "tied-parent"
    {
        return tied_parent(mode, Path::new(file));
    }
    let tests: [(&str, fn()); 8] = [
        (
            "an_orphaned_stopped_child_takes_the_kernels_hangup_as_the_same_request",
            an_orphaned_stopped_child_takes_the_kernels_hangup_as_the_same_request,
        ),
        (
            "a_repeated_parent_death_signal_is_one_request",
            a_repeated_parent_death_signal_is_one_request,
        ),
        ("guard_removes_on_return", guard_removes_on_return),
        (
            "sigterm_unwinds_through_guards",
            sigterm_unwinds_through_guards,
        ),
        ("second_signal_exits_at_once", second_signal_exits_at_once),
        (
            "extra_signal_stops_like_sigterm",
            extra_signal_stops_like_sigterm,
        ),
        (
            "signal_during_install_is_kept",
            signal_during_install_is_kept,
        ),
        (
            "a_tied_child_dies_with_its_supervisor",
            a_tied_child_dies_with_its_supervisor,
        ),
    ];
    testkit::run_tests(&tests)
}
