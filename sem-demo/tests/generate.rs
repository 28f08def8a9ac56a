//! `sem-demo --generate man|complete-bash|complete-zsh|complete-fish`: the man page and the
//! completions `make install` installs, from the real binary, checked as a user would find them
//! (see `common::generate::check`); and the help, which offers a user what a user can use.

use std::process::Command;

use common::generate::check;

const BIN: &str = env!("CARGO_BIN_EXE_sem-demo");

/// Every role, as a subcommand.
const ROLES: [&str; 11] = [
    "demo", "counter", "update", "bridge", "car", "run", "post", "wait", "trywait", "value",
    "unlink",
];

#[test]
fn man_page_and_completions_cover_every_subcommand() {
    check::binary(BIN, &ROLES);
}

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run sem-demo");
    assert!(out.status.success(), "sem-demo {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// No test hook (an option or a subcommand only tests use) reaches a user: `--help` lists the
/// roles and nothing else, bash completes the first word to exactly those, and no help text,
/// man page or completion script names a test-only setting. (sem-demo's tests drive the
/// roles a user has; it has no hook to hide.)
#[test]
fn the_help_man_page_and_completions_offer_the_roles_and_nothing_else() {
    let help = stdout_of(&["--help"]);
    let listed: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a Commands section")
        .lines()
        // "  demo     Play everything…"; a wrapped description is indented further.
        .filter_map(|l| l.strip_prefix("  ").filter(|rest| !rest.starts_with(' ')))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut expected = ROLES.to_vec();
    expected.push("help");
    assert_eq!(listed, expected, "{help}");

    let bash = stdout_of(&["--generate", "complete-bash"]);
    let mut offered = check::bash_complete(&bash, "sem-demo", &[""]);
    offered.retain(|w| !w.starts_with('-'));
    offered.sort();
    expected.sort();
    assert_eq!(offered, expected);

    let mut texts = vec![
        help,
        bash,
        stdout_of(&["--generate", "man"]),
        stdout_of(&["--generate", "complete-zsh"]),
        stdout_of(&["--generate", "complete-fish"]),
    ];
    texts.extend(ROLES.iter().map(|role| stdout_of(&[role, "--help"])));
    for text in texts {
        for hook in ["IPC_DEMO_TEST", "test hook", "test-only"] {
            assert!(!text.contains(hook), "{hook:?} in:\n{text}");
        }
    }
}
