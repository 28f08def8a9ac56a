//! The command line's promises: every subcommand's `--help` has examples, and its `-v` says
//! what that role narrates.

mod support;

use common::testkit::{self, Sandbox};
use support::run;

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
fn every_subcommand_help_has_examples_and_its_own_trace_text() {
    let sb = Sandbox::new();
    let mut traces = Vec::new();
    for sub in SUBCOMMANDS {
        let out = run(&sb, &[sub, "--help"], b"");
        assert!(out.status.success(), "{sub}: {}", testkit::stderr(&out));
        let help = testkit::stdout(&out);
        assert!(
            help.contains("\nExamples:\n"),
            "{sub} --help: no examples\n{help}"
        );
        // The option's text, wrapped over lines up to the next option.
        let (_, after) = help
            .split_once("-v, --trace")
            .unwrap_or_else(|| panic!("{sub} --help: no -v\n{help}"));
        let trace = after.split("\n  -").next().unwrap().to_owned();
        let trace = trace.split("\n      --").next().unwrap().to_owned();
        assert!(!traces.contains(&trace), "{sub}: -v help copied: {trace}");
        traces.push(trace);
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
    common::generate::check::binary(env!("CARGO_BIN_EXE_socket-demo"), &SUBCOMMANDS);
}
