//! The whole scenario, as `shm-demo` plays it by default, and under heavier load.

mod support;

use common::testkit::{self, Sandbox};

fn demo(args: &[&str]) -> String {
    let sb = Sandbox::new();
    let out = testkit::run(sb.command(support::BIN).args(args), b"");
    let stdout = testkit::stdout(&out);
    let last = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(
        out.status.success() && last.starts_with("ok: "),
        "{args:?}: {:?}\n{stdout}\n{}",
        out.status,
        testkit::stderr(&out)
    );
    assert!(
        testkit::stderr(&out).contains("recovered the writers' mutex"),
        "the recovery is reported on stderr"
    );
    last
}

#[test]
fn default_run_plays_everything_and_says_ok() {
    let last = demo(&[]);
    assert!(last.contains("4 writers committed"), "{last}");
    assert!(last.contains("with 0 checksum failures"), "{last}");
    assert!(last.contains("128/128 keys as committed"), "{last}");
    assert!(last.contains("nothing left in /dev/shm"), "{last}");
}

/// The load test: 8 writers and 8 readers at once, 0 checksum failures, and the final
/// table equal to what each writer last committed (checked by the demo, key by key).
#[test]
fn eight_writers_eight_readers_no_torn_value_and_the_table_as_committed() {
    let last = demo(&[
        "demo",
        "--writers",
        "8",
        "--readers",
        "8",
        "--duration-ms",
        "2000",
    ]);
    assert!(last.contains("8 writers committed"), "{last}");
    assert!(last.contains("8 readers made"), "{last}");
    assert!(last.contains("with 0 checksum failures"), "{last}");
    assert!(last.contains("256/256 keys as committed"), "{last}");
}

#[test]
fn sysv_demo_leaves_no_segment() {
    let last = demo(&["demo", "--sysv", "--duration-ms", "500"]);
    assert!(last.contains("nothing left in ipcs -m"), "{last}");
}
