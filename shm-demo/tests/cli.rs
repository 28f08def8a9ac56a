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
