//! The server follows the daemon lifecycle every daemon of the workspace shares
//! (common::lifecycle): the readiness line on stdout, a service manager's NOTIFY_SOCKET
//! (READY=1, STOPPING=1), names removed at the start of a stop, and no write that can hold a
//! stop up.

mod support;

use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;

use common::testkit::{self, Sandbox};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::Signal;
use support::{Name, WAIT, cmd, exists, ok, stop_a_writer_inside};

fn pid_file(sb: &Sandbox, name: &Name) -> std::path::PathBuf {
    let kind = if name.sysv { ".sysv" } else { "" };
    sb.runtime_dir()
        .join(format!("{}{kind}.pid", &name.name[1..]))
}

fn ready_then_stopping(sysv: bool) {
    let sb = Sandbox::new();
    let name = Name::new(sysv);
    let manager = testkit::ServiceManager::bind(&sb);
    let socket = manager.path();
    let child = testkit::spawn(cmd(&sb, &name, &["server"]).env("NOTIFY_SOCKET", socket));
    let pid = child.pid();
    let kind = if sysv { "sysv-shm" } else { "shm" };
    let what = format!("{kind} {}", name.name);
    manager.expect_ready(pid, &what);
    // When READY=1 arrives, a client succeeds at once.
    ok(&sb, &name, &["put", "k", "v"]);
    // The same on stdout, for scripts; nothing else is on stdout.
    let mut stdout = child.stdout_lines().unwrap();
    testkit::expect_ready_line(&mut stdout, pid, &what);

    child.signal(Signal::SIGTERM).unwrap();
    manager.expect_stopping();
    // STOPPING=1 comes once the names are gone.
    assert!(!exists(&sb, &name), "the database outlived STOPPING=1");
    assert!(
        !pid_file(&sb, &name).exists(),
        "the pid file outlived STOPPING=1"
    );
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(stdout.rest(WAIT).unwrap(), Vec::<String>::new());
}

#[test]
fn a_service_manager_hears_ready_when_clients_can_work_and_stopping_on_sigterm() {
    ready_then_stopping(false);
}

#[test]
fn sysv_ready_and_stopping() {
    ready_then_stopping(true);
}

/// A stop that must wait (the save waits for the writers' mutex, held by a writer that is
/// alive and not stopped) and a second SIGTERM meanwhile, which exits at once: the names were
/// removed first, so nothing is left.
#[test]
fn a_second_sigterm_during_a_long_stop_leaves_nothing() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let manager = testkit::ServiceManager::bind(&sb);
    let socket = manager.path();
    let snap = sb.join("db.snap");
    let child = testkit::spawn(
        cmd(&sb, &name, &["server", "--save", snap.to_str().unwrap()]).env("NOTIFY_SOCKET", socket),
    );
    assert!(manager.receive().starts_with("READY=1\n"));
    ok(&sb, &name, &["put", "k", "v"]);
    let (_keep, blocked) = writer_blocked_inside(&sb, &name);

    child.signal(Signal::SIGTERM).unwrap();
    manager.expect_stopping();
    child.signal(Signal::SIGTERM).unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(!exists(&sb, &name), "database left behind");
    assert!(!pid_file(&sb, &name).exists(), "pid file left behind");
    assert!(!snap.exists());
    blocked.signal(Signal::SIGKILL).unwrap();
    blocked.wait_timeout(WAIT).unwrap();
}

/// A writer that holds the mutex and is alive, asleep rather than stopped: the test hook's
/// line, written inside the critical section, goes to a pipe that is already full. Returned
/// once it is blocked in that write(2), with the pipe's read end to keep.
fn writer_blocked_inside(sb: &Sandbox, name: &Name) -> (OwnedFd, common::child::Supervised) {
    let (keep, full) = full_pipe();
    let child = common::child::Supervised::spawn(
        "put",
        support::hooked(sb, name, &["put", "k", "held"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(full)),
        common::child::Options {
            deadline: Some(WAIT),
            own_group: true,
        },
    )
    .unwrap();
    support::wait_until_in(child.pid(), libc::SYS_write, "blocked in write");
    (keep, child)
}

/// SIGTERM with `--save` while a writer is stopped holding the mutex, half-way through a put
/// (the case: the object was already unlinked, the save waited 10 s for the mutex
/// and gave up, exit 1, nothing saved). The server does not wait for a stopped writer: it
/// saves what is committed (that record as it was before the put), says so, exits 0, and the
/// snapshot loads.
#[test]
fn save_with_a_writer_stopped_holding_the_mutex_keeps_what_is_committed() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let snap = sb.join("db.snap");
    let snap = snap.to_str().unwrap();
    let server = support::Server::start(&sb, &name, &["--save", snap]);
    ok(&sb, &name, &["put", "a", "1"]);
    ok(&sb, &name, &["put", "b", "committed"]);
    let frozen = stop_a_writer_inside(&sb, &name, "b", &"never committed ".repeat(8));
    let rest = server.stop();
    let line = |want: &str| rest.iter().any(|l| l.contains(want));
    assert!(
        line("the writers' mutex is held by pid ")
            && line("stopped")
            && line("saving the committed records without it")
            && line("saved 2 records to"),
        "{rest:?}"
    );
    frozen.signal(Signal::SIGKILL).unwrap();
    frozen.wait_timeout(WAIT).unwrap();

    let server = support::Server::start(&sb, &name, &["--load", snap]);
    assert_eq!(
        ok(&sb, &name, &["list", "--values"]),
        "a\t1\nb\tcommitted\n"
    );
    server.stop();
}

/// A pipe whose buffer is already full, its read end kept (and never read).
fn full_pipe() -> (OwnedFd, OwnedFd) {
    let (read, write) = nix::unistd::pipe().unwrap();
    // Non-blocking only while we fill it: the flag is the file's, which the server shares.
    fcntl(&write, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let page = [b'x'; 4096];
    while nix::unistd::write(write.as_fd(), &page).is_ok() {}
    while nix::unistd::write(write.as_fd(), b"x").is_ok() {}
    fcntl(&write, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (read, write)
}

/// A server whose stderr is `stderr` (not testkit::spawn, which pipes stderr and drains it),
/// once it is ready.
fn server_with_stderr(sb: &Sandbox, name: &Name, stderr: OwnedFd) -> common::child::Supervised {
    let child = common::child::Supervised::spawn(
        "server",
        cmd(sb, name, &["server"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr)),
        common::child::Options {
            deadline: Some(WAIT),
            own_group: true,
        },
    )
    .unwrap();
    let mut stdout = child.stdout_lines().unwrap();
    stdout.wait_for(|l| l.starts_with("ready: "), WAIT).unwrap();
    child
}

/// Nobody drains the server's stderr: its status lines (start-up details, SIGUSR1 stats, the
/// stop) wait in its backlog, or are dropped, rather than block it, so it gets ready, and a
/// SIGTERM stops it (after at most a second for the reader at exit).
#[test]
fn a_stderr_nobody_drains_never_holds_up_the_server() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let (_keep, full) = full_pipe();
    let child = server_with_stderr(&sb, &name, full);
    child.signal(Signal::SIGUSR1).unwrap();
    child.signal(Signal::SIGTERM).unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!exists(&sb, &name));
}

/// A stderr read late: the lines written while it was full (the start-up details, before the
/// readiness line) wait for the reader instead of being lost, and come in order once it
/// reads, followed by the SIGUSR1 stats and the stop. Before, a line that found no room was
/// dropped at once.
#[test]
fn a_stderr_read_late_still_gets_the_status_lines() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let (late, full) = full_pipe();
    let child = server_with_stderr(&sb, &name, full);
    // The reader wakes up: the filler first (no newline in it), then the server's lines.
    let mut stderr = common::child::Lines::new(std::fs::File::from(late));
    let started = stderr
        .wait_for(|l| l.contains("shm-demo server: pid "), WAIT)
        .unwrap();
    assert!(started.contains("(created;"), "{started}");
    child.signal(Signal::SIGUSR1).unwrap();
    stderr.wait_for(|l| l.starts_with("stats: "), WAIT).unwrap();
    child.signal(Signal::SIGTERM).unwrap();
    stderr
        .wait_for(|l| l.starts_with("SIGTERM: "), WAIT)
        .unwrap();
    assert!(child.wait_timeout(WAIT).unwrap().success());
}

/// A daemon asked to stop exits 0 (common::error's table): SIGTERM, SIGINT, and SIGHUP, a
/// closed terminal, which stops this server too; each removes the database and its pid file
/// and says which signal stopped it.
#[test]
fn a_server_asked_to_stop_by_sigterm_sigint_or_sighup_exits_0_and_leaves_nothing() {
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let name = Name::new(false);
        let server = support::Server::start(&sb, &name, &[]);
        ok(&sb, &name, &["put", "k", "v"]);
        let rest = server.stop_with(sig);
        assert!(
            rest.iter().any(|l| l.starts_with(&format!("{sig}: "))),
            "{sig}: {rest:?}"
        );
        assert!(!exists(&sb, &name), "{sig}: database left behind");
        assert!(!pid_file(&sb, &name).exists(), "{sig}: pid file left");
        assert_eq!(sb.leftovers(), Vec::<String>::new(), "{sig}");
    }
}
