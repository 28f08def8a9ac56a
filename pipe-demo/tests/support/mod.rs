//! Helpers shared by pipe-demo's integration tests: run the real binary, and run the same
//! thing through `sh` to compare, both with a deadline.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use common::testkit::{self, Sandbox};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pipe-demo");

/// `pipe-demo ARGS` in the sandbox.
pub fn demo(sb: &Sandbox, args: &[&str]) -> Command {
    let mut cmd = sb.command(BIN);
    cmd.args(args);
    cmd
}

/// Run `pipe-demo ARGS` with `input` on stdin.
pub fn run(sb: &Sandbox, args: &[&str], input: &[u8]) -> Output {
    testkit::run(&mut demo(sb, args), input)
}

/// Run `script` with `sh -c` in the sandbox, positional parameters `params`, `input` on stdin.
pub fn sh(sb: &Sandbox, script: &str, params: &[&str], input: &[u8]) -> Output {
    let mut cmd = sb.command("sh");
    cmd.args(["-c", script, "sh"]).args(params);
    testkit::run(&mut cmd, input)
}

/// Run `script` with `bash -o pipefail -c`.
pub fn bash_pipefail(sb: &Sandbox, script: &str, input: &[u8]) -> Output {
    let mut cmd = sb.command("bash");
    cmd.args(["-o", "pipefail", "-c", script]);
    testkit::run(&mut cmd, input)
}

/// Run `script` with `sh -c`, with the binary's directory first in PATH, so that scripts
/// can say `pipe-demo` as a user would.
pub fn recipe(sb: &Sandbox, script: &str, input: &[u8]) -> Output {
    let dir = Path::new(BIN)
        .parent()
        .expect("the binary lives in a directory");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = sb.command("sh");
    cmd.args(["-c", script]).env("PATH", path);
    testkit::run(&mut cmd, input)
}

/// GNU grep in the sandbox, as the grep tests compare with it: `LC_ALL=C` (bytes, as ours
/// reads them), and no `GREP_COLOR`/`GREP_COLORS` from the test's own environment.
pub fn gnu_grep(sb: &Sandbox) -> Command {
    let mut cmd = sb.command("grep");
    cmd.env("LC_ALL", "C")
        .env_remove("GREP_COLOR")
        .env_remove("GREP_COLORS");
    cmd
}

/// `pipe-demo grep` in the same environment as [`gnu_grep`].
pub fn our_grep(sb: &Sandbox) -> Command {
    let mut cmd = demo(sb, &["grep"]);
    cmd.env("LC_ALL", "C")
        .env_remove("GREP_COLOR")
        .env_remove("GREP_COLORS");
    cmd
}

/// Assert that `ours` exited as `gnu` did and wrote the same bytes to stdout; `what` names
/// the case, and a failure shows the first lines of both.
pub fn assert_like_gnu(what: &str, ours: &Output, gnu: &Output) {
    assert_eq!(code(ours), code(gnu), "{what}: {}", testkit::stderr(ours));
    let head = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .take(8)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        ours.stdout == gnu.stdout,
        "{what}: output differs from GNU grep's:\nours:\n{}\nGNU grep's:\n{}",
        head(&ours.stdout),
        head(&gnu.stdout)
    );
}

/// The exit code, or a panic naming the signal that killed the process instead.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status))
}

/// A directory with a few files, three of them `*.txt`.
pub fn sample_dir(sb: &Sandbox, name: &str, files: &[&str]) -> std::path::PathBuf {
    let dir = sb.join(name);
    std::fs::create_dir(&dir).unwrap();
    for f in files {
        std::fs::write(dir.join(f), f.as_bytes()).unwrap();
    }
    dir
}

/// The sample files used by the filter tests.
pub const FILES: &[&str] = &["a.txt", "b.md", "c.txt", "d.txt.gz", "e.txt", "f.csv"];
