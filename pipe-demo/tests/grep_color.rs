//! What scripts pass to grep out of habit: `--color` (GNU grep's escape sequences byte for
//! byte, with `GREP_COLORS` and the deprecated `GREP_COLOR`), `-a` and `--line-buffered`, each
//! compared with `LC_ALL=C grep` on the same input.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use common::testkit::{self, Sandbox};
use support::{assert_like_gnu, code, demo, gnu_grep, our_grep};

/// How long a test waits for a line; only reached when it is failing already.
const WAIT: Duration = Duration::from_secs(60);

/// Two files: matches at the start, middle and end of lines, a line with none, a CRLF line,
/// a last line without its newline.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(
        sb.join("one"),
        "foo bar foo\nbaz\nxfoo abc\r\nfoofoo\nab\n\nlast foo",
    )
    .unwrap();
    std::fs::write(sb.join("two"), "x foo\nnothing\n").unwrap();
    sb
}

/// `pipe-demo grep ARGS` and `grep ARGS` with `env` set, on a line of stdin.
fn both(sb: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> (Output, Output) {
    let run =
        |mut cmd: Command| testkit::run(cmd.envs(env.iter().copied()).args(args), b"stdin foo\n");
    (run(our_grep(sb)), run(gnu_grep(sb)))
}

fn assert_same(sb: &Sandbox, env: &[(&str, &str)], args: &[&str]) {
    let (ours, gnu) = both(sb, env, args);
    let what = format!("{env:?} grep {args:?}");
    assert_like_gnu(&what, &ours, &gnu);
    assert_eq!(testkit::stderr(&ours), "", "{what}");
}

#[test]
fn color_always_writes_gnu_greps_escape_sequences() {
    let sb = sandbox();
    let flag_sets: &[&[&str]] = &[
        &["foo", "one"],
        &["foo", "one", "two"],
        &["-n", "foo", "one"],
        &["-n", "-H", "-i", "FOO", "one", "-"],
        &["-v", "foo", "one"],
        &["-v", "-n", "foo", "one", "two"],
        &["-o", "-n", "foo", "one", "two"],
        &["-c", "foo", "one", "two"],
        &["-l", "foo", "one", "two", "-"],
        &["-L", "bar", "one", "two"],
        &["-w", "foo", "one"],
        &["-x", "ab", "one"],
        &["-E", "b|c|foo", "one"],
        &[r"a\|ab\|abc", "one"],
        &["", "one"],
        &["x*", "one"],
        &["-m", "2", "-n", "foo", "one"],
        &["-q", "foo", "one"],
    ];
    for colors in [
        "",
        "sl=1:cx=2",
        "sl=1:cx=2:rv",
        "ne",
        "ms=:sl=4",
        "mt=01;32:fn=:se=",
        "ln=33:ms=x1:fn=34",
    ] {
        for args in flag_sets {
            let args = [&["--color=always"][..], args].concat();
            assert_same(&sb, &[("GREP_COLORS", colors)], &args);
        }
    }
}

#[test]
fn color_spellings_and_when_to_color() {
    let sb = sandbox();
    for args in [
        &["--colour=always", "foo", "one"][..],
        &["--color=yes", "foo", "one"],
        &["--color=force", "foo", "one"],
        &["--color=never", "foo", "one"],
        &["--color=no", "foo", "one"],
        &["--color=none", "foo", "one"],
        // Into a pipe: auto means no colour, and `--color` alone means auto.
        &["--color=auto", "foo", "one"],
        &["--color=tty", "foo", "one"],
        &["--color", "foo", "one"],
        // Without `=`, the word is the pattern, as getopt reads an optional argument.
        &["--color", "always", "one"],
    ] {
        assert_same(&sb, &[], args);
    }
    // A WHEN it does not know is a usage error, exit 2 naming the values. (GNU grep 3.8
    // prints its --help to stdout and exits 0 here, which a script would take for success.)
    let (ours, _) = both(&sb, &[], &["--color=sometimes", "foo", "one"]);
    assert_eq!(code(&ours), 2);
    assert!(ours.stdout.is_empty());
    let err = testkit::stderr(&ours);
    assert!(
        err.contains("'sometimes'") && err.contains("[possible values: never, always, auto]"),
        "{err}"
    );
}

/// GREP_COLOR sets the match colour with GNU grep's deprecation warning, unless GREP_COLORS
/// sets both match colours; it is ignored without colour, or if it is not SGR.
#[test]
fn grep_color_is_honoured_with_gnu_greps_warning() {
    let sb = sandbox();
    for (env, args) in [
        (
            &[("GREP_COLOR", "01;32")][..],
            &["--color=always", "foo", "one"][..],
        ),
        (
            &[("GREP_COLOR", "4"), ("GREP_COLORS", "ms=7")],
            &["--color=always", "foo", "one"],
        ),
        (
            &[("GREP_COLOR", "4"), ("GREP_COLORS", "mt=7")],
            &["--color=always", "foo", "one"],
        ),
        (&[("GREP_COLOR", "red")], &["--color=always", "foo", "one"]),
        (&[("GREP_COLOR", "01;32")], &["foo", "one"]),
    ] {
        let (ours, gnu) = both(&sb, env, args);
        assert_eq!(code(&ours), code(&gnu), "{env:?}");
        assert_eq!(ours.stdout, gnu.stdout, "{env:?}");
        assert_eq!(
            testkit::stderr(&ours),
            testkit::stderr(&gnu).replace("grep: ", "pipe-demo: "),
            "{env:?}"
        );
    }
}

/// `-a`: every input is already searched as text, so it changes nothing, and the output is
/// GNU grep's with `-a` (without it, GNU grep says "binary file matches" instead).
#[test]
fn dash_a_is_accepted_and_text_is_text() {
    let sb = Sandbox::new();
    std::fs::write(sb.join("bin"), b"a\0b foo\nplain\n\xff\xfe foo\0\n").unwrap();
    for args in [
        &["-a", "foo", "bin"][..],
        &["--text", "-c", "foo", "bin"],
        &["-a", "-v", "foo", "bin"],
    ] {
        assert_same(&sb, &[], args);
    }
}

/// `--line-buffered` writes each line out before reading on. The first input is one full read
/// of whole lines (16384 lines of 64 bytes: 1 MiB, the read size), so no short read flushes
/// the output; the second is a FIFO that nobody opens for writing, so the search then waits
/// in open(2). The first file's match must reach the reader while it waits. (Without the flag
/// the line stays in the output buffer until the FIFO's writer comes and goes.)
#[test]
fn line_buffered_flushes_each_line_before_reading_on() {
    let sb = Sandbox::new();
    let mut big = Vec::with_capacity(1 << 20);
    big.extend_from_slice(format!("{:<63}\n", "the first line matches").as_bytes());
    while big.len() < 1 << 20 {
        big.extend_from_slice(format!("{:<63}\n", "filler").as_bytes());
    }
    std::fs::write(sb.join("big"), &big).unwrap();
    let fifo = sb.join("fifo");
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let mut cmd = demo(&sb, &["grep", "--line-buffered", "matches", "big", "fifo"]);
    let grep = testkit::spawn(&mut cmd);
    let mut out = grep.stdout_lines().unwrap();
    let line = out.wait_for(|_| true, WAIT).unwrap();
    assert_eq!(line, format!("big:{:<63}", "the first line matches"));
    // Dropping `grep` kills it, still waiting for the FIFO.
}

/// With `--line-buffered`, the output is the same as without.
#[test]
fn line_buffered_output_equals_gnu_greps() {
    let sb = sandbox();
    for args in [
        &["--line-buffered", "foo", "one", "two"][..],
        &["--line-buffered", "-v", "foo", "one"],
        &["--line-buffered", "-c", "-n", "foo", "one", "two"],
        &["--line-buffered", "-o", "--color=always", "o", "one"],
    ] {
        assert_same(&sb, &[], args);
    }
}
