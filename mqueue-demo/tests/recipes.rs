//! The shell recipes of the README, run as written (with `--queue` added, since tests run in
//! parallel).

mod support;

use common::testkit::{self, Sandbox};
use support::*;

fn bash(sb: &Sandbox, script: &str) -> std::process::Output {
    let dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    testkit::run(
        sb.command("bash").args(["-c", script]).env("PATH", path),
        b"",
    )
}

#[test]
fn recipe_one_task_per_line_and_wait() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "2"]);
    let out = bash(
        &sb,
        &format!(
            "seq 3 | sed 's/^/fib /' | mqueue-demo submit --queue {q} --wait | grep ' ok ' \
             | cut -d' ' -f5 | sort -n"
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n1\n2\n");
    sup.stop();
}

#[test]
fn recipe_follow_results_in_a_pipeline() {
    let sb = Sandbox::new();
    let q = queue();
    let sup = Supervisor::start(&sb, &q, &["--workers", "1"]);
    let script = format!(
        "mqueue-demo submit --queue {q} 'echo a' 'fail b' 'echo c' > ids.txt\n\
         mqueue-demo results --queue {q} --follow --count 3 | awk '{{print $2}}' | sort | uniq -c"
    );
    let out = bash(&sb, &script);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1 dead") && text.contains("2 ok"), "{text}");
    sup.stop();
}
