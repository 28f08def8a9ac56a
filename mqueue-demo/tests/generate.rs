//! `mqueue-demo --generate man|complete-bash|complete-zsh|complete-fish`: the man page and the
//! completions `make install` installs, from the real binary, checked as a user would find them
//! (see `common::generate::check`); and nothing in them, nor in any `--help`, that a user
//! cannot use.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mqueue-demo");

const SUBCOMMANDS: [&str; 9] = [
    "demo", "run", "worker", "submit", "results", "status", "purge", "unlink", "path",
];

#[test]
fn man_page_and_completions_cover_every_subcommand() {
    common::generate::check::binary(BIN, &SUBCOMMANDS);
}

/// What only the tests, the benchmark or the roles themselves used is not offered to users:
/// the benchmark's hop (`examples/bench_hop.rs` now), `submit`'s send times (an environment
/// variable the demo sets), and the options by which the demo and the supervisor tied their
/// children (`run --parent`, `worker --supervisor`; PR_SET_PDEATHSIG now). clap hides an
/// option from `--help` but not from the completions, so each of these is looked for in
/// both.
#[test]
fn no_test_hook_or_benchmark_is_in_the_help_man_page_or_completions() {
    let output = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut texts = vec![("--help".to_owned(), output(&["--help"]))];
    for sub in SUBCOMMANDS {
        texts.push((format!("{sub} --help"), output(&[sub, "--help"])));
    }
    for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
        texts.push((format!("--generate {kind}"), output(&["--generate", kind])));
    }
    for (what, text) in &texts {
        for hook in [
            "bench-hop",
            "bench_hop",
            "--stamp",
            "--parent",
            "--supervisor",
        ] {
            assert!(!text.contains(hook), "{hook} in {what}:\n{text}");
        }
    }
    // And the hidden subcommand is gone, not only hidden.
    let out = Command::new(BIN).args(["bench-hop"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
