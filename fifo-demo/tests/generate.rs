//! `fifo-demo --generate man|complete-bash|complete-zsh|complete-fish`: the man page and the
//! completions `make install` installs, from the real binary, checked as a user would find them
//! (see `common::generate::check`).

#[test]
fn man_page_and_completions_cover_every_subcommand() {
    common::generate::check::binary(
        env!("CARGO_BIN_EXE_fifo-demo"),
        &["demo", "daemon", "log", "cleanup", "path"],
    );
}

/// Nothing in the help, the man page or the completions that a user cannot use: exactly these
/// roles and options (a test hook would go behind a test-only environment variable; fifo-demo
/// has none, and its benchmark is `bench/throughput.sh`, outside the binary).
#[test]
fn help_man_and_completions_offer_only_what_a_user_can_use() {
    let top = ["--trace", "--generate", "--help", "--version"];
    let roles = ["demo", "daemon", "log", "cleanup", "path", "help"];
    let first: Vec<&str> = top.iter().chain(&roles).copied().collect();
    common::generate::check::offers_only(
        env!("CARGO_BIN_EXE_fifo-demo"),
        &[
            ("", &first),
            (
                "demo",
                &["--writers", "--lines", "--keep", "--trace", "--help"],
            ),
            (
                "daemon",
                &[
                    "--fifo",
                    "--log",
                    "--pid-file",
                    "--drain-timeout",
                    "--trace",
                    "--help",
                ],
            ),
            ("log", &["--fifo", "--trace", "--help"]),
            ("cleanup", &["--fifo", "--pid-file", "--trace", "--help"]),
            (
                "path",
                &[
                    "--fifo",
                    "--pid-file",
                    "--trace",
                    "--help",
                    "fifo",
                    "pid-file",
                    "dir",
                ],
            ),
        ],
    );
}
