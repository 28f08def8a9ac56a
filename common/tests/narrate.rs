//! Narration never holds a process up: with stderr on a pipe nobody reads, a process that
//! traces far more than the pipe holds still gets on with its work.
//!
//! The test runs its own binary again as the narrating child (selected by an environment
//! variable), with stderr on a pipe whose read end the test holds and never reads.

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::testkit;

const CHILD: &str = "NARRATE_TEST_CHILD";

#[test]
fn a_stderr_nobody_reads_does_not_stop_a_tracing_process() {
    if std::env::var_os(CHILD).is_some() {
        common::narrate::init("child", true);
        // 20 000 distinct lines of ~80 bytes: 1.6 MB, 25 times what a pipe holds.
        for i in 0..20_000 {
            common::trace!("write(3, {i}) -> 64 bytes, a line long enough to fill a pipe soon");
        }
        println!("narrate-child: done");
        return;
    }
    let (unread, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "a_stderr_nobody_reads_does_not_stop_a_tracing_process",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, "1")
    .stderr(Stdio::from(write_end));
    let child = testkit::spawn_with_deadline(&mut cmd, Duration::from_secs(60));
    // Without the non-blocking narration the child sleeps in write(2) forever, and this
    // wait ends at the deadline with the child killed.
    let mut out = child.stdout_lines().expect("stdout is piped");
    out.wait_for(
        |l| l.contains("narrate-child: done"),
        Duration::from_secs(60),
    )
    .expect("the child finished its work although nobody read its trace");
    let status = child.wait_timeout(Duration::from_secs(60)).expect("exit");
    assert!(status.success(), "{status:?}");
    drop(unread);
}
