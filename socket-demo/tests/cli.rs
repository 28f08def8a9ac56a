//! The command line's promises: every subcommand's `--help` has examples and says what its
//! role narrates with `-v`, `-v` goes before or after the subcommand, and the test hooks are
//! nowhere a user looks.

mod support;

use common::testkit::{self, Sandbox};
use support::{BIN, TEST_HOOKS, run};

const SUBCOMMANDS: [&str; 7] = [
    "demo",
    "server",
    "client",
    "dgram-server",
    "dgram-client",
    "pass-fd",
    "path",
];

#[test]
fn every_subcommand_help_has_examples_and_says_what_its_role_narrates() {
    let sb = Sandbox::new();
    let mut narrations = Vec::new();
    for sub in SUBCOMMANDS {
        let out = run(&sb, &[sub, "--help"], b"");
        assert!(out.status.success(), "{sub}: {}", testkit::stderr(&out));
        let help = testkit::stdout(&out);
        assert!(
            help.contains("\nExamples:\n"),
            "{sub} --help: no examples\n{help}"
        );
        // One -v for every role (global), and a paragraph of the role's own.
        assert!(help.contains("-v, --trace"), "{sub} --help: no -v\n{help}");
        let (_, after) = help
            .split_once("With -v it narrates ")
            .unwrap_or_else(|| panic!("{sub} --help: nothing says what -v narrates\n{help}"));
        let narration = after.split("\n\n").next().unwrap().to_owned();
        assert!(
            !narrations.contains(&narration),
            "{sub}: narration copied: {narration}"
        );
        narrations.push(narration);
    }
}

#[test]
fn trace_goes_before_or_after_the_subcommand() {
    for args in [
        &["-v", "path", "dir"][..],
        &["path", "-v", "dir"],
        &["path", "dir", "-v"],
    ] {
        // A fresh runtime dir each time, for `path` to make, and narrate.
        let sb = Sandbox::new();
        let out = run(&sb, args, b"");
        assert!(out.status.success(), "{args:?}: {}", testkit::stderr(&out));
        assert_eq!(
            testkit::stdout(&out).trim_end(),
            sb.runtime_dir().display().to_string(),
            "{args:?}"
        );
        assert!(
            testkit::stderr(&out).contains(" path] mkdir("),
            "{args:?}: {}",
            testkit::stderr(&out)
        );
    }
}

#[test]
fn defaults_are_shown_and_no_subcommand_means_demo() {
    let sb = Sandbox::new();
    let help = testkit::stdout(&run(&sb, &["server", "--help"], b""));
    for default in [
        "127.0.0.1:6380",
        "<runtime dir>/kv.sock",
        "<socket>.pid",
        "[default: 10000]",
        "[default: 20]",
    ] {
        assert!(
            help.contains(default),
            "server --help lacks {default}\n{help}"
        );
    }
    let top = testkit::stdout(&run(&sb, &["--help"], b""));
    assert!(
        top.contains("With no subcommand, `socket-demo` runs `demo`"),
        "{top}"
    );
}

/// `--generate man|complete-bash|complete-zsh|complete-fish`: the man page and completions
/// `make install` installs cover every subcommand (see `common::generate::check`).
#[test]
fn man_page_and_completions_cover_every_subcommand() {
    common::generate::check::binary(BIN, &SUBCOMMANDS);
}

/// The test hooks, the `worker` role and `demo --wait-for-signal-before-step`, are in no
/// `--help`, man page or completion script, and are usage errors, unless the environment
/// asks for them.
#[test]
fn the_test_hooks_are_nowhere_a_user_looks() {
    let sb = Sandbox::new();
    let mut texts = Vec::new();
    for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
        let out = run(&sb, &["--generate", kind], b"");
        assert!(out.status.success(), "{kind}: {}", testkit::stderr(&out));
        texts.push((kind.to_owned(), testkit::stdout(&out)));
    }
    for sub in std::iter::once("").chain(SUBCOMMANDS) {
        let args: Vec<&str> = [sub, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let out = run(&sb, &args, b"");
        texts.push((format!("{sub} --help"), testkit::stdout(&out)));
    }
    let hook = regex_free_word("worker");
    for (what, text) in &texts {
        assert!(
            !hook(text) && !text.contains("wait-for-signal"),
            "{what} names a test hook:\n{text}"
        );
    }
    // Without the variable, usage errors; with it, parsed (and run: no server to reach).
    let worker = ["worker", "--unix", "/nonexistent/kv.sock", "--id", "0"];
    let worker = [&worker[..], &["--counter", "c"]].concat();
    let out = run(&sb, &worker, b"");
    assert_eq!(out.status.code(), Some(2), "{}", testkit::stderr(&out));
    let out = run(&sb, &["demo", "--wait-for-signal-before-step", "3"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", testkit::stderr(&out));
    let mut cmd = sb.command(BIN);
    cmd.env(TEST_HOOKS, "1").args(&worker);
    let out = testkit::run(&mut cmd, b"");
    assert_eq!(out.status.code(), Some(1), "{}", testkit::stderr(&out));
    assert!(
        testkit::stderr(&out).contains("connect /nonexistent/kv.sock"),
        "{}",
        testkit::stderr(&out)
    );
}

/// A test for `word` standing alone (not inside `workers`, `worker_id`...).
fn regex_free_word(word: &'static str) -> impl Fn(&str) -> bool {
    move |text| {
        text.match_indices(word).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            !part(before) && !part(after)
        })
    }
}
