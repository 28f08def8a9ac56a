//! `shm-demo --generate man|complete-bash|complete-zsh|complete-fish`: the man page and the
//! completions `make install` installs, from the real binary, checked as a user would find them
//! (see `common::generate::check`).

#[test]
fn man_page_and_completions_cover_every_subcommand() {
    common::generate::check::binary(
        env!("CARGO_BIN_EXE_shm-demo"),
        &[
            "demo", "server", "put", "get", "del", "list", "stats", "watch", "destroy", "path",
            "writer", "reader",
        ],
    );
}
