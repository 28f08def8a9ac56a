//! The `filter` role and the default scenario: `ls -l DIR | grep 'txt$'` done by hand.

mod support;

use common::testkit::{self, Sandbox};
use support::{FILES, code, run, sample_dir, sh};

const SHELL: &str = r#"ls -l "$1" | grep 'txt$'"#;

#[test]
fn default_run_plays_the_scenario_and_says_ok() {
    let sb = Sandbox::new();
    let out = run(&sb, &[], b"");
    let text = testkit::stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", testkit::stderr(&out));
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ok: 3 of ") && last.ends_with("ls exit 0"),
        "{text}"
    );
    // Both checks ran: the shell's pipeline, and our own pipeline and grep roles.
    assert!(text.contains("\n7. sh -c "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("8. pipe-demo pipeline ") && l.ends_with(": the same 3 lines")),
        "{text}"
    );
    // The three *.txt lines are printed (indented under step 5), backup.txt.gz is not.
    let shown: Vec<&str> = text.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(shown.len(), 3, "{text}");
    assert!(shown.iter().all(|l| l.ends_with(".txt")), "{text}");
    // The temporary directory it made is gone.
    let dir = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("1. made "))
        .and_then(|l| l.split(' ').next())
        .expect("step 1 names the directory");
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
}

/// `pipe-demo -v`: the same scenario, narrated. It must not hang (a child's trace piped and
/// never read would block it), still end with `ok:`, and narrate every process: the parent's
/// pipe2/fork/waitpid, ls between fork and exec, and the stages of the step 8 pipeline.
#[test]
fn default_run_with_trace_says_ok_and_narrates_every_process() {
    let sb = Sandbox::new();
    let out = run(&sb, &["-v"], b"");
    let text = testkit::stdout(&out);
    let trace = testkit::stderr(&out);
    assert_eq!(code(&out), 0, "{text}{trace}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("ok: 3 of "), "{text}");
    for want in [
        " demo] pipe2(O_CLOEXEC) -> read=",
        " demo] fork() -> pid ",
        " child ls] dup2(",
        " child ls] execv(",
        " demo] waitpid(",
        " pipeline] fork() -> pid ",
        " stage 1 ls] execv(",
        " grep] read(0) until EOF",
    ] {
        assert!(
            trace
                .lines()
                .any(|l| l.starts_with("[pid ") && l.contains(want)),
            "no trace line with {want:?}:\n{trace}"
        );
    }
}

#[test]
fn plain_output_equals_the_shells_pipeline() {
    let sb = Sandbox::new();
    let dir = sample_dir(&sb, "files", FILES);
    let d = dir.to_str().unwrap();
    let ours = run(&sb, &["filter", "--plain", "--dir", d], b"");
    let theirs = sh(&sb, SHELL, &[d], b"");
    assert_eq!(code(&ours), 0, "{}", testkit::stderr(&ours));
    assert_eq!(testkit::stdout(&ours), testkit::stdout(&theirs));
    assert_eq!(testkit::stdout(&ours).lines().count(), 3);
}

#[test]
fn narrated_lines_equal_the_shells_pipeline() {
    let sb = Sandbox::new();
    let dir = sample_dir(&sb, "files", FILES);
    let d = dir.to_str().unwrap();
    let ours = run(&sb, &["filter", "--dir", d], b"");
    let theirs = sh(&sb, SHELL, &[d], b"");
    let text = testkit::stdout(&ours);
    assert_eq!(code(&ours), 0, "{text}");
    let shown: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(shown, testkit::stdout(&theirs));
    assert!(
        text.lines().last().unwrap().starts_with("ok: 3 of 7 lines"),
        "{text}"
    );
}

#[test]
fn no_match_exits_1_with_empty_output() {
    let sb = Sandbox::new();
    let dir = sample_dir(&sb, "files", &["a.md", "b.csv"]);
    let out = run(
        &sb,
        &["filter", "--plain", "--dir", dir.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert_eq!(out.stdout, b"");
    assert_eq!(out.stderr, b"");
}

#[test]
fn a_custom_pattern_is_checked_too() {
    let sb = Sandbox::new();
    let dir = sample_dir(&sb, "files", FILES);
    let out = run(
        &sb,
        &[
            "filter",
            "--dir",
            dir.to_str().unwrap(),
            "--pattern",
            "(md|csv)$",
        ],
        b"",
    );
    let text = testkit::stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("ok: 2 of 7"),
        "{text}"
    );
}

#[test]
fn a_missing_dir_is_a_one_line_usage_error() {
    let sb = Sandbox::new();
    let missing = sb.join("nope");
    let out = run(&sb, &["filter", "--dir", missing.to_str().unwrap()], b"");
    assert_eq!(code(&out), 2);
    let err = testkit::stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("pipe-demo: --dir ") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn trace_narrates_every_call_from_both_processes() {
    let sb = Sandbox::new();
    let dir = sample_dir(&sb, "files", FILES);
    let out = run(&sb, &["-v", "filter", "--dir", dir.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0);
    let err = testkit::stderr(&out);
    for call in [
        "pipe2(O_CLOEXEC)",
        "fork() -> pid",
        "dup2(",
        "close(",
        "execv(",
        "waitpid(",
    ] {
        assert!(err.contains(call), "no {call} in the trace:\n{err}");
    }
    // The child's lines carry the child's pid and role.
    assert!(err.lines().any(|l| l.contains(" child ls] dup2(")), "{err}");
}

/// Every subcommand's `--help` has examples and a `-v` (grep: `--trace`) that says what that
/// role narrates; the default subcommand is named `demo`, as in every demo binary, and the
/// README's `filter` still works.
#[test]
fn every_help_has_examples_and_says_what_its_trace_shows() {
    let sb = Sandbox::new();
    for (sub, traces) in [
        ("demo", "ls's dup2/close/execv"),
        ("filter", "ls's dup2/close/execv"),
        ("grep", "search strategy"),
        ("pipeline", "each stage's dup2/close/execv"),
        ("pager", "the isatty check"),
    ] {
        let out = run(&sb, &[sub, "--help"], b"");
        assert_eq!(code(&out), 0, "{sub}: {out:?}");
        let text = testkit::stdout(&out);
        assert!(text.contains("\nExamples:\n"), "{sub}: {text}");
        assert!(text.contains(traces), "{sub}: {text}");
    }
    let top = testkit::stdout(&run(&sb, &["--help"], b""));
    assert!(top.contains("the same as `pipe-demo demo`"), "{top}");
    assert!(top.contains("[alias: filter]"), "{top}");
}
