//! `testkit::freeze` returns only once the process is stopped, and continues it on drop.

use std::process::Command;

use common::testkit;

fn state(pid: nix::unistd::Pid) -> char {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let (_, rest) = text.rsplit_once(") ").expect("stat has a command name");
    rest.chars().next().expect("stat has a state")
}

#[test]
fn a_frozen_child_is_stopped_until_the_guard_is_dropped() {
    let child = testkit::spawn(Command::new("sleep").arg("30"));
    let frozen = testkit::freeze(child.pid());
    assert_eq!(
        state(frozen.pid()),
        'T',
        "stopped as soon as freeze returns"
    );
    drop(frozen);
    // SIGCONT is delivered before kill() returns to a process that is stopped, so the state
    // has left 'T' by now; a sleeping process shows 'S'.
    assert_ne!(
        state(child.pid()),
        'T',
        "continued after the guard is dropped"
    );
}
