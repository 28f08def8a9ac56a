//! The README's cross-demo shell recipes, run as written, so they stay true.
//!
//! They combine binaries of several workspace members. `make test` (`cargo test --workspace`)
//! builds every member's binaries before any test runs, next to this crate's own; a test run
//! of this crate alone may find them missing or stale, and says so.

mod support;

use std::path::PathBuf;

use common::testkit::{self, Sandbox};
use support::{Daemon, after_stamp, lines_of};

/// The directory holding this workspace's binaries, with a check that `names` are built.
fn bin_dir(names: &[&str]) -> PathBuf {
    let dir = PathBuf::from(support::BIN)
        .parent()
        .expect("a binary lives in a directory")
        .to_owned();
    for name in names {
        assert!(
            dir.join(name).is_file(),
            "{name} is not built in {}: run the whole suite (`make test`, i.e. \
             `cargo test --workspace`), which builds every demo",
            dir.display()
        );
    }
    dir
}

/// `bash -o pipefail -c SCRIPT` in the sandbox, with the demos first on PATH.
fn bash(sb: &Sandbox, script: &str, names: &[&str]) -> std::process::Output {
    let path = std::env::join_paths(std::iter::once(bin_dir(names)).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH entries have no colon");
    let mut cmd = sb.command("bash");
    cmd.args(["-o", "pipefail", "-c", script]).env("PATH", path);
    testkit::run(&mut cmd, b"")
}

#[test]
fn recipe_ls_through_pipe_demo_grep_into_the_log_daemon() {
    // README: ls -l | pipe-demo grep 'txt$' | fifo-demo log
    let sb = Sandbox::new();
    let files = sb.join("files");
    std::fs::create_dir(&files).unwrap();
    for f in ["notes.txt", "main.rs", "todo.txt", "Cargo.toml"] {
        std::fs::write(files.join(f), f).unwrap();
    }
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    let out = bash(
        &sb,
        "cd files && ls -l | pipe-demo grep 'txt$' | fifo-demo log",
        &["pipe-demo", "fifo-demo"],
    );
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let log = daemon.log.clone();
    daemon.stop();
    let lines = lines_of(&log);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, name) in lines.iter().zip(["notes.txt", "todo.txt"]) {
        let record = after_stamp(line);
        assert!(record.starts_with("pid="), "{record}");
        assert!(
            !record.starts_with("pid=?"),
            "a fifo-demo writer names its pid: {record}"
        );
        assert!(record.ends_with(name), "{record}");
    }
}

#[test]
fn recipe_signal_daemon_ticks_through_pipe_demo_grep_into_head() {
    // README: signal-demo daemon --config cfg.toml --pid-file d.pid |
    //     pipe-demo grep '^tick' | head -n 3
    // When head has its lines, the broken pipe travels upstream: grep and then the daemon
    // stop quietly with status 0, and the daemon removes its pid file.
    let sb = Sandbox::new();
    std::fs::write(sb.join("cfg.toml"), "message = \"hi\"\ninterval_ms = 20\n").unwrap();
    let out = bash(
        &sb,
        "signal-demo daemon --config cfg.toml --pid-file d.pid \
         | pipe-demo grep '^tick' | head -n 3",
        &["signal-demo", "pipe-demo"],
    );
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        testkit::stderr(&out)
    );
    assert_eq!(
        testkit::stdout(&out),
        "tick 1: hi\ntick 2: hi\ntick 3: hi\n"
    );
    assert_eq!(
        testkit::stderr(&out),
        "",
        "a broken pipe ends every stage quietly"
    );
    assert!(
        !sb.join("d.pid").exists(),
        "the daemon removed its pid file"
    );
}
