//! `pipe-demo grep` with the flags scripts pass to grep, each compared with GNU grep
//! (`LC_ALL=C grep`, given the same arguments) on the same input: output byte for byte, and
//! exit status.

mod support;

use std::process::Output;

use common::testkit::{self, Sandbox};
use support::{assert_like_gnu, code, gnu_grep, recipe, run};

/// A few thousand lines with what the flags need: words and non-words (`foo bar`,
/// `foobar`, `FOO`), numbers, ls -l-like lines, empty lines, no newline at the end.
fn input() -> Vec<u8> {
    let mut out = Vec::new();
    let words = [
        "foo bar", "foobar", "FOO", "a.c", "abc", "x foo_y", "-rw foo", "",
    ];
    for i in 0..3000u32 {
        let w = words[(i % 8) as usize];
        let ext = ["txt", "md", "TXT", "txt.gz"][(i % 7 % 4) as usize];
        out.extend_from_slice(
            format!(
                "-rw-r--r-- 1 user {:>6} Nov {:>2} file{i}.{ext} {w}\n",
                i * 37,
                i % 28
            )
            .as_bytes(),
        );
        if i % 13 == 0 {
            out.extend_from_slice(format!("{w}\n").as_bytes());
        }
    }
    out.extend_from_slice(b"last line foo without newline");
    out
}

/// The sandbox with `one` (the input), `two` (a little), `empty`, and pattern files.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::write(sb.join("one"), input()).unwrap();
    std::fs::write(sb.join("two"), "foo\nnothing here\nfoo bar\n").unwrap();
    std::fs::write(sb.join("empty"), "").unwrap();
    std::fs::write(sb.join("pats"), "a\\.c\nfile1[0-9]\\.md\n").unwrap();
    std::fs::write(sb.join("nopats"), "").unwrap();
    sb
}

fn gnu(sb: &Sandbox, args: &[&str], stdin: &[u8]) -> Output {
    testkit::run(gnu_grep(sb).args(args), stdin)
}

/// Run `args` through both, on stdin and on files; assert the same output and status.
fn same_as_gnu(sb: &Sandbox, args: &[&str]) {
    let stdin = input();
    let with_files = |files: &[&'static str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(files);
        all
    };
    for (how, args, stdin) in [
        ("stdin", args.to_vec(), &stdin[..]),
        ("one file", with_files(&["one"]), &b""[..]),
        (
            "three files",
            with_files(&["one", "two", "empty"]),
            &b""[..],
        ),
    ] {
        let mut ours_args = vec!["grep"];
        ours_args.extend_from_slice(&args);
        let ours = run(sb, &ours_args, stdin);
        let theirs = gnu(sb, &args, stdin);
        let what = format!("grep {args:?} on {how}");
        assert_like_gnu(&what, &ours, &theirs);
        assert_eq!(testkit::stderr(&ours), "", "{what}");
    }
}

#[test]
fn fixed_strings_words_and_whole_lines() {
    let sb = sandbox();
    for args in [
        &["-F", "a.c"][..],
        &["-F", "-i", "TXT"],
        &["-F", "-x", "foo bar"],
        &["-F", "-w", "foo"],
        &["-w", "foo"],
        &["-w", "-i", "foo"],
        &["-w", "foo\\|foobar"],
        &["-E", "-w", "foo|foobar"],
        &["-w", "-v", "foo"],
        &["-x", "foo bar\\|abc"],
        &["-E", "-x", "foo bar|abc"],
        &["-x", "-c", ""],
        &["-E", "Nov|Dec"],
        &["-G", "Nov\\|Dec"],
    ] {
        same_as_gnu(&sb, args);
    }
}

#[test]
fn several_patterns_with_e_and_f() {
    let sb = sandbox();
    for args in [
        &["-e", "foo", "-e", "md$"][..],
        &["-e", "-rw-r", "-c"],
        &["-e", "a.c", "-F", "-e", "abc"],
        &["-f", "pats"],
        &["-f", "pats", "-e", "FOO"],
        &["-f", "nopats"],
        &["-v", "-c", "-f", "nopats"],
        &["-w", "-f", "pats"],
    ] {
        same_as_gnu(&sb, args);
    }
}

#[test]
fn numbers_and_only_matching() {
    let sb = sandbox();
    for args in [
        &["-n", "txt$"][..],
        &["-n", "-v", "txt$"],
        &["-n", "-c", "foo"],
        &["-o", "[0-9]\\+"],
        &["-E", "-o", "[0-9]+"],
        &["-o", "-n", "foo"],
        &["-o", "-i", "-w", "foo"],
        &["-o", "-v", "foo"],
        &["-o", "-c", "o"],
    ] {
        same_as_gnu(&sb, args);
    }
}

#[test]
fn file_lists_quiet_and_names() {
    let sb = sandbox();
    for args in [
        &["-l", "foo"][..],
        &["-l", "zzz"],
        &["-L", "nothing"],
        &["-L", "foo"],
        &["-l", "-v", "foo"],
        &["-q", "foo"],
        &["-q", "zzz"],
        &["-H", "foo"],
        &["-h", "foo"],
        &["-H", "-c", "foo"],
        &["-h", "-n", "-o", "bar"],
        &["-Hh", "abc"],
        &["-hH", "abc"],
    ] {
        same_as_gnu(&sb, args);
    }
}

#[test]
fn max_count() {
    let sb = sandbox();
    for args in [
        &["-m", "3", "txt$"][..],
        &["-m", "2", "-v", "txt$"],
        &["-m", "2", "-c", "txt$"],
        &["-m", "1", "-n", "-o", "o"],
        &["-m", "5", "-n", "-v", "-H", "file"],
        &["-m", "0", "foo"],
        &["-m0", "-c", "foo"],
        &["-m", "100000", "foo"],
    ] {
        same_as_gnu(&sb, args);
    }
}

/// Missing files: reported (unless -s) and the others searched, exit 2; but with -q a
/// selected line makes it 0, as in grep.
#[test]
fn missing_files_with_s_and_q() {
    let sb = sandbox();
    let cases: [(&[&str], i32, bool); 5] = [
        (&["foo", "nosuch", "two"], 2, true),
        (&["-s", "foo", "nosuch", "two"], 2, false),
        (&["-q", "foo", "nosuch", "two"], 0, true),
        (&["-qs", "foo", "nosuch"], 2, false),
        (&["-L", "foo", "nosuch"], 2, true),
    ];
    for (args, status, message) in cases {
        let mut ours_args = vec!["grep"];
        ours_args.extend_from_slice(args);
        let ours = run(&sb, &ours_args, b"");
        let theirs = gnu(&sb, args, b"");
        assert_eq!(code(&theirs), status, "GNU grep {args:?}");
        assert_eq!(code(&ours), status, "{args:?}");
        assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
        let err = testkit::stderr(&ours);
        if message {
            assert_eq!(
                err, "pipe-demo: open nosuch: No such file or directory\n",
                "{args:?}"
            );
        } else {
            assert_eq!(err, "", "{args:?}");
        }
    }
}

/// `-h` is grep's --no-filename, not help: `xargs pipe-demo grep -h PATTERN` prints the lines
/// without names, exactly as `xargs grep -h PATTERN` does (it used to print the help).
#[test]
fn recipe_xargs_grep_h() {
    let sb = sandbox();
    let ours = recipe(
        &sb,
        "printf 'one\\ntwo\\n' | xargs pipe-demo grep -h 'foo bar'",
        b"",
    );
    let theirs = recipe(&sb, "printf 'one\\ntwo\\n' | xargs grep -h 'foo bar'", b"");
    assert_eq!(code(&ours), 0, "{}", testkit::stderr(&ours));
    assert_eq!(ours.stdout, theirs.stdout);
    assert!(!testkit::stdout(&ours).contains("Usage"));
}

#[test]
fn usage_errors_exit_2() {
    let sb = sandbox();
    for args in [
        &["grep"][..],
        &["grep", "-m", "x", "foo"],
        &["grep", "--nosuch", "foo"],
        &["grep", "-E", "-F", "foo"],
    ] {
        let out = run(&sb, args, b"");
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&sb, &["grep", "--help"], b"");
    assert_eq!(code(&out), 0);
    assert!(testkit::stdout(&out).contains("-h, --no-filename"));
}
