//! The `pipeline` role against `sh -c` (and `bash -o pipefail -c`) running the same stages.

mod support;

use std::time::Duration;

use common::testkit::{self, Sandbox};
use support::{bash_pipefail, code, demo, recipe, run, sh};

/// Run `stages` through pipe-demo and through `sh -c 'a | b | c'`; same stdout, same status.
fn same_as_sh(stages: &[&str], input: &[u8]) {
    let sb = Sandbox::new();
    let mut args = vec!["pipeline", "--"];
    args.extend_from_slice(stages);
    let ours = run(&sb, &args, input);
    let script = stages.join(" | ");
    let theirs = sh(&sb, &script, &[], input);
    assert_eq!(
        testkit::stdout(&ours),
        testkit::stdout(&theirs),
        "stdout of `{script}`; our stderr: {}",
        testkit::stderr(&ours)
    );
    assert_eq!(code(&ours), code(&theirs), "status of `{script}`");
}

#[test]
fn one_stage() {
    same_as_sh(&["echo hello 'big world'"], b"");
    same_as_sh(&["false"], b"");
    same_as_sh(&["sh -c 'exit 7'"], b"");
    same_as_sh(&["tr a-z A-Z"], b"read from our stdin\n");
}

#[test]
fn two_stages() {
    same_as_sh(&["seq 1 1000", "grep 7"], b"");
    same_as_sh(&["seq 1 10", "grep nomatch"], b"");
    same_as_sh(&["false", "true"], b"");
    same_as_sh(&["cat", "wc -c"], &[b'x'; 200_000]);
}

#[test]
fn three_stages() {
    same_as_sh(&["seq 1 5000", "grep -v 3", "wc -l"], b"");
    same_as_sh(&["printf 'b\\na\\nc\\n'", "sort", "head -2"], b"");
    same_as_sh(&["seq 3", "sh -c 'cat; exit 3'", "cat"], b"");
    same_as_sh(&["seq 3", "cat", "sh -c 'cat; exit 4'"], b"");
}

#[test]
fn eight_stages() {
    same_as_sh(
        &[
            "seq 1 20000",
            "grep 1",
            "grep -v 5",
            "sort -r",
            "head -500",
            "tr 0-9 a-j",
            "sort",
            "wc -l",
        ],
        b"",
    );
    same_as_sh(
        &[
            "cat",
            "cat",
            "cat",
            "cat",
            "cat",
            "cat",
            "cat",
            "tr a-z A-Z",
        ],
        b"through eight processes\n",
    );
}

#[test]
fn pipefail_equals_bash() {
    let sb = Sandbox::new();
    let cases: [&[&str]; 5] = [
        &["false", "true"],
        &["true", "false", "true"],
        &["sh -c 'exit 3'", "sh -c 'exit 5'", "true"],
        &["yes", "head -1"],
        &["seq 3", "cat"],
    ];
    for stages in cases {
        let mut args = vec!["pipeline", "--pipefail", "--"];
        args.extend_from_slice(stages);
        let ours = run(&sb, &args, b"");
        let script = stages.join(" | ");
        let theirs = bash_pipefail(&sb, &script, b"");
        assert_eq!(testkit::stdout(&ours), testkit::stdout(&theirs), "{script}");
        assert_eq!(
            code(&ours),
            code(&theirs),
            "status of `{script}` with pipefail"
        );
    }
}

#[test]
fn yes_into_head_ends_well_within_its_deadline() {
    // Only the SIGPIPE that yes gets when head exits ends this; a write end left open
    // anywhere, or SIGPIPE left ignored, and it runs until the deadline kills it.
    let sb = Sandbox::new();
    let out = testkit::run_with_deadline(
        &mut demo(&sb, &["pipeline", "yes", "head -1"]),
        b"",
        Duration::from_secs(30),
    );
    assert_eq!(code(&out), 0);
    assert_eq!(testkit::stdout(&out), "y\n");
    assert_eq!(
        testkit::stderr(&out),
        "",
        "yes must die of SIGPIPE, not complain"
    );
}

#[test]
fn stages_inherit_no_stray_descriptors() {
    let sb = Sandbox::new();
    // Alone, first, in the middle and last: each `ls` sees 0, 1, 2, and the fd it opened
    // itself to read /proc/self/fd.
    let cases: [&[&str]; 4] = [
        &["ls /proc/self/fd"],
        &["ls /proc/self/fd", "cat"],
        &["echo", "ls /proc/self/fd", "cat"],
        &["echo", "cat", "ls /proc/self/fd"],
    ];
    for stages in cases {
        let mut args = vec!["pipeline", "--"];
        args.extend_from_slice(stages);
        let out = run(&sb, &args, b"");
        assert_eq!(code(&out), 0, "{stages:?}");
        assert_eq!(testkit::stdout(&out), "0\n1\n2\n3\n", "{stages:?}");
    }
}

#[test]
fn a_missing_command_is_reported_and_exits_127() {
    let sb = Sandbox::new();
    let out = run(&sb, &["pipeline", "echo hi", "nosuch-command-xyz"], b"");
    assert_eq!(code(&out), 127);
    assert_eq!(
        testkit::stderr(&out),
        "pipe-demo: stage 2: cannot run 'nosuch-command-xyz': No such file or directory\n"
    );
    // First stage missing: the next one sees EOF and the status is the last stage's, as in sh.
    let out = run(&sb, &["pipeline", "nosuch-command-xyz", "wc -l"], b"");
    assert_eq!(code(&out), 0);
    assert_eq!(testkit::stdout(&out).trim(), "0");
}

#[test]
fn a_file_that_is_not_executable_exits_126() {
    let sb = Sandbox::new();
    std::fs::write(sb.join("script"), "echo hi\n").unwrap();
    let out = run(&sb, &["pipeline", "./script"], b"");
    assert_eq!(code(&out), 126);
    assert_eq!(
        testkit::stderr(&out),
        "pipe-demo: stage 1: cannot run './script': Permission denied\n"
    );
    assert_eq!(code(&sh(&sb, "./script", &[], b"")), 126);
}

#[test]
fn bad_stages_are_usage_errors() {
    let sb = Sandbox::new();
    let out = run(&sb, &["pipeline", "echo hi", ""], b"");
    assert_eq!(code(&out), 2);
    assert_eq!(testkit::stderr(&out), "pipe-demo: stage 2: empty command\n");
    let out = run(&sb, &["pipeline", "echo 'unclosed"], b"");
    assert_eq!(code(&out), 2);
    assert!(testkit::stderr(&out).starts_with("pipe-demo: stage 1: cannot split"));
    assert_eq!(testkit::stderr(&out).lines().count(), 1);
}

#[test]
fn trace_shows_the_wiring() {
    let sb = Sandbox::new();
    let out = run(&sb, &["pipeline", "-v", "seq 3", "cat"], b"");
    assert_eq!(testkit::stdout(&out), "1\n2\n3\n");
    let err = testkit::stderr(&out);
    for needle in [
        "pipeline] pipe2(O_CLOEXEC) -> read=",
        "stage 1 seq] dup2(",
        "stage 2 cat] dup2(",
        "stage 1 seq] execv(",
        "(the parent's copy)",
        "waitpid(",
    ] {
        assert!(err.contains(needle), "no {needle:?} in:\n{err}");
    }
}

/// `-v` reaches the programs the stages run, not only the stages between fork and exec:
/// a `pipe-demo grep` stage narrates its own calls too.
#[test]
fn trace_reaches_the_programs_the_stages_run() {
    let sb = Sandbox::new();
    let out = recipe(
        &sb,
        "pipe-demo pipeline -v 'echo hi' 'pipe-demo grep hi'",
        b"",
    );
    assert_eq!(testkit::stdout(&out), "hi\n");
    let err = testkit::stderr(&out);
    assert!(err.contains(" grep] read(0) until EOF"), "{err}");
}

#[test]
fn recipe_ps_grep_count() {
    // README recipe: pipe-demo pipeline 'ps aux' 'grep -c ps'
    let sb = Sandbox::new();
    let out = recipe(&sb, "pipe-demo pipeline 'ps aux' 'grep -c ps'", b"");
    assert_eq!(code(&out), 0, "{}", testkit::stderr(&out));
    let n: u32 = testkit::stdout(&out).trim().parse().expect("a count");
    assert!(n >= 1, "ps itself is in its own list");
}

#[test]
fn recipe_pipefail_status() {
    // README recipe: pipe-demo pipeline --pipefail yes 'head -2'; echo "status $?"
    let sb = Sandbox::new();
    let out = recipe(
        &sb,
        "pipe-demo pipeline --pipefail yes 'head -2'; echo \"status $?\"",
        b"",
    );
    assert_eq!(testkit::stdout(&out), "y\ny\nstatus 141\n");
}
