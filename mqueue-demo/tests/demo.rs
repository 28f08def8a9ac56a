//! The default run plays the whole scenario and says `ok`.

mod support;

use common::testkit::{self, Sandbox};
use support::*;

#[test]
fn default_run_is_ok() {
    let sb = Sandbox::new();
    let out = testkit::run(&mut sb.command(BIN), b"");
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("ok: 2000/2000 tasks, each reported exactly once;"),
        "{text}"
    );
    assert!(
        last.contains("0 priority inversions") && last.ends_with("no queue left"),
        "{last}"
    );
}

#[test]
fn demo_narrates_with_v() {
    let sb = Sandbox::new();
    let out = testkit::run(
        sb.command(BIN)
            .args(["-v", "demo", "--tasks", "20", "--workers", "2"]),
        b"",
    );
    assert!(out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    for want in [
        " supervisor] mq_open(",
        "O_CREAT|O_EXCL",
        " worker] mq_receive(",
        " submit] mq_send(",
        " supervisor] mq_unlink(",
    ] {
        assert!(err.contains(want), "no {want:?} in the trace");
    }
}
