//! `signal-demo --generate man|complete-bash|complete-zsh|complete-fish`: the man page and the
//! completions `make install` installs, from the real binary, checked as a user would find them
//! (see `common::generate::check`).

#[test]
fn man_page_and_completions_cover_every_subcommand() {
    common::generate::check::binary(
        env!("CARGO_BIN_EXE_signal-demo"),
        &["demo", "daemon", "send"],
    );
}

/// Nothing in the help, the man page or the completions that a user cannot use: exactly these
/// roles and options. The latency benchmark is `examples/latency.rs`, outside the binary (see
/// also `tests/cli.rs`, `the_benchmark_is_not_a_subcommand_of_the_demo`).
#[test]
fn help_man_and_completions_offer_only_what_a_user_can_use() {
    common::generate::check::offers_only(
        env!("CARGO_BIN_EXE_signal-demo"),
        &[
            (
                "",
                &[
                    "--trace",
                    "--generate",
                    "--help",
                    "--version",
                    "demo",
                    "daemon",
                    "send",
                    "help",
                ],
            ),
            ("demo", &["--interval-ms", "--trace", "--help"]),
            ("daemon", &["--config", "--pid-file", "--trace", "--help"]),
            (
                "send",
                &[
                    "--pid",
                    "--pid-file",
                    "--value",
                    "--count",
                    "--trace",
                    "--help",
                ],
            ),
        ],
    );
}
