//! The command line: every subcommand's `--help` ends with an example that runs as written.

mod support;

use common::testkit::{self, Sandbox};

#[test]
fn every_subcommand_help_has_an_example() {
    let sb = Sandbox::new();
    for sub in [
        "server", "put", "get", "del", "list", "stats", "watch", "destroy", "writer", "reader",
        "demo", "path",
    ] {
        let out = testkit::run(sb.command(support::BIN).args([sub, "--help"]), b"");
        let help = testkit::stdout(&out);
        assert!(out.status.success(), "{sub} --help: {out:?}");
        let example = help
            .split_once("Example")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{sub} --help has no example:\n{help}"));
        assert!(
            example.contains(&format!("shm-demo {sub}")),
            "{sub}'s example does not run it:\n{help}"
        );
    }
}

/// The test hook (a writer that stops inside its critical section) is an environment
/// variable only the tests and the demo set: no option, so no word of it in any `--help`, the
/// man page or a shell's completions, and the old option is a usage error.
#[test]
fn the_test_hook_is_in_no_help_man_page_or_completion() {
    let sb = Sandbox::new();
    let mut texts = Vec::new();
    for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
        let out = testkit::run(sb.command(support::BIN).args(["--generate", kind]), b"");
        assert!(out.status.success(), "--generate {kind}: {out:?}");
        texts.push((format!("--generate {kind}"), testkit::stdout(&out)));
    }
    for sub in [
        "", "server", "put", "get", "del", "list", "stats", "watch", "destroy", "writer", "reader",
        "demo", "path",
    ] {
        let args: Vec<&str> = [sub, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let out = testkit::run(sb.command(support::BIN).args(&args), b"");
        texts.push((format!("{sub} --help"), testkit::stdout(&out)));
    }
    for (what, text) in &texts {
        for word in [
            "critical-section",
            "critical_section",
            "CRITICAL_SECTION",
            "test hook",
        ] {
            assert!(!text.contains(word), "{what} mentions {word:?}:\n{text}");
        }
    }
    for args in [["put", "k", "v"].as_slice(), &["del", "k"]] {
        let out = testkit::run(
            sb.command(support::BIN)
                .args(args)
                .arg("--stop-in-critical-section"),
            b"",
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}
