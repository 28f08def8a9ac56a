//! `ipc-bench --generate man|complete-bash|complete-zsh|complete-fish`: the man page and the
//! completions `make install` installs, from the real binary, checked as a user would find them
//! (see `common::generate::check`); and the help, which offers a user what a user can use.

use std::process::Command;

use common::generate::check;

const BIN: &str = env!("CARGO_BIN_EXE_ipc-bench");

/// Every option a user has, long form.
const OPTIONS: [&str; 5] = ["--quick", "--only", "--json", "--trace", "--out"];

#[test]
fn man_page_and_completions_cover_every_option() {
    check::binary(BIN, &OPTIONS);
}

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run ipc-bench");
    assert!(out.status.success(), "ipc-bench {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// No test hook (an option only tests use) reaches a user: `--help` lists the options above
/// and clap's own, bash completes `--` to exactly those and `--generate`, and no help text, man page or
/// completion script names a test-only setting. (ipc-bench's tests run it as a user does; it
/// has no hook to hide.)
#[test]
fn the_help_man_page_and_completions_offer_the_options_and_nothing_else() {
    let help = stdout_of(&["--help"]);
    let mut listed: Vec<&str> = help
        .lines()
        // "      --only <LIST>", "  -v, --trace"
        .filter_map(|l| l.trim_start().split(", ").find(|w| w.starts_with("--")))
        .filter_map(|w| w.split(' ').next())
        .collect();
    listed.sort_unstable();
    let mut expected = OPTIONS.to_vec();
    expected.extend(["--help", "--version"]);
    expected.sort_unstable();
    assert_eq!(listed, expected, "{help}");

    let bash = stdout_of(&["--generate", "complete-bash"]);
    let mut offered = check::bash_complete(&bash, "ipc-bench", &["--"]);
    offered.sort();
    // `--generate`, hidden from the help, is for packagers (`make install`), not a test hook.
    expected.push("--generate");
    expected.sort_unstable();
    assert_eq!(offered, expected);

    for text in [
        help,
        bash,
        stdout_of(&["--generate", "man"]),
        stdout_of(&["--generate", "complete-zsh"]),
        stdout_of(&["--generate", "complete-fish"]),
    ] {
        for hook in ["IPC_DEMO_TEST", "test hook", "test-only"] {
            assert!(!text.contains(hook), "{hook:?} in:\n{text}");
        }
    }
}
