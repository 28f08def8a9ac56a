//! How the roles that install no signal handler end (`common::error`'s table): a client holds
//! nothing a signal could leave behind, so a signal ends it as it ends any program, and the
//! shell reports 128 + N. And `destroy`, which waits for a server it cannot stop, fails with
//! status 1 naming it.

mod support;

use std::process::Stdio;
use std::time::Instant;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Name, Server, WAIT, cmd, exists, fails, ok};

/// A `put KEY -` waiting for its value on stdin dies of SIGTERM, holding nothing: the mutex
/// is taken only once the value is read, so the next writer gets it at once.
#[test]
fn a_put_waiting_for_stdin_dies_of_sigterm_and_holds_nothing() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let put = testkit::spawn(cmd(&sb, &name, &["put", "k", "-"]).stdin(Stdio::piped()));
    let _stdin = put.take_stdin();
    support::wait_until_in(put.pid(), libc::SYS_read, "read its stdin");
    put.signal(Signal::SIGTERM).unwrap();
    let status = put.wait_timeout(WAIT).unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(Signal::SIGTERM as i32),
        "{status:?}"
    );
    ok(&sb, &name, &["put", "k", "v"]);
    assert_eq!(ok(&sb, &name, &["get", "k"]), "v");
    server.stop();
}

/// `destroy` of a server that cannot stop (frozen: SIGSTOP) waits on its pidfd for 10 s, then
/// fails with status 1 naming it; the server, continued, acts on the SIGTERM it was sent and
/// removes the database itself.
#[test]
fn destroy_of_a_server_that_does_not_stop_fails_after_10_s() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let frozen = testkit::freeze(server.child.pid());
    let started = Instant::now();
    let err = fails(&sb, &name, &["destroy"]);
    assert!(started.elapsed() >= std::time::Duration::from_secs(10));
    assert_eq!(
        err,
        format!(
            "shm-demo: server pid {} did not stop within 10 s\n",
            server.child.pid()
        )
    );
    assert!(exists(&sb, &name), "the database is the live server's");
    drop(frozen);
    let status = server.child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!exists(&sb, &name));
}
