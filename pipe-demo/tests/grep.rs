//! The `grep` role against GNU grep (`LC_ALL=C grep`, with the same arguments) on 100k
//! generated lines.

mod support;

use common::testkit::{self, Sandbox};
use support::{assert_like_gnu, code, gnu_grep, recipe, run};

/// How long a test waits for a line; only reached when it is failing already.
const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// 100k lines like `ls -l` output, from a fixed-seed generator, so every run sees the same.
fn lines() -> Vec<u8> {
    let exts = ["txt", "md", "TXT", "jpg", "txt.gz", "csv", "log", "Txt"];
    let months = ["Jan", "Feb", "Nov", "Dec"];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    for i in 0..100_000u64 {
        let r = next();
        if r % 97 == 0 {
            out.push(b'\n'); // an empty line now and then
            continue;
        }
        let line = format!(
            "-rw-r--r-- {} user staff {:>8} {} {:>2} {:02}:{:02} file{}_{}.{}\n",
            r % 9 + 1,
            r % 100_000_000,
            months[(r >> 8) as usize % months.len()],
            (r >> 16) % 28 + 1,
            (r >> 24) % 24,
            (r >> 32) % 60,
            i,
            r % 1000,
            exts[(r >> 40) as usize % exts.len()],
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

#[test]
fn equals_gnu_grep_for_patterns_and_flags() {
    let sb = Sandbox::new();
    let input = lines();
    let file = sb.join("big.txt");
    std::fs::write(&file, &input).unwrap();
    let f = file.to_str().unwrap();
    // Each kind of pattern as a BRE (the default) and, where it has ERE operators, with -E.
    let patterns: [(&[&str], &str); 13] = [
        (&[], "txt$"),
        (&[], "^-rw"),
        (&["-E"], "Nov|Dec"),
        (&[], r"Nov\|Dec"),
        (&["-E"], "file1[0-9]{3}_"),
        (&["-G"], r"file1[0-9]\{3\}_"),
        (&[], "^$"),
        (&[], " 0[0-9]:5"),
        (&[], "nothing-matches-this"),
        (&[], r"t.t\.gz$"),
        // The literal in the middle, on every line, after a class, before a repetition.
        (&[], r"[0-9] user staff \+[0-9]\+"),
        (&["-E"], "[0-9] user +staff +[1-4]+ "),
        (&[], r"[[:digit:]] user *[[:alpha:]]\{5\} *[0-9]*5 "),
    ];
    let flag_sets: [&[&str]; 6] = [&[], &["-v"], &["-c"], &["-i"], &["-v", "-c"], &["-i", "-v"]];
    for (syntax, pattern) in patterns {
        for flags in flag_sets {
            let flags = [syntax, flags].concat();
            let mut args = vec!["grep"];
            args.extend_from_slice(&flags);
            args.extend_from_slice(&["--", pattern]);
            // Half the runs read stdin, half a named file.
            let stdin = flags.len() % 2 == 0;
            let ours = if stdin {
                run(&sb, &args, &input)
            } else {
                args.push(f);
                run(&sb, &args, b"")
            };
            let mut gnu = gnu_grep(&sb);
            gnu.args(&flags).args(["--", pattern]);
            let theirs = if stdin {
                testkit::run(&mut gnu, &input)
            } else {
                testkit::run(gnu.arg(f), b"")
            };
            let what = format!("grep {flags:?} {pattern:?} (stdin: {stdin})");
            assert_like_gnu(&what, &ours, &theirs);
            assert_eq!(ours.stderr, b"", "{what}");
        }
    }
}

#[test]
fn several_files_are_prefixed_like_grep() {
    let sb = Sandbox::new();
    std::fs::write(sb.join("one"), "a.txt\nb.md\n").unwrap();
    std::fs::write(sb.join("two"), "c.txt\n").unwrap();
    for flags in [&[][..], &["-c"][..]] {
        let mut args = vec!["grep"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["txt$", "one", "two"]);
        let ours = run(&sb, &args, b"");
        let mut gnu = sb.command("grep");
        gnu.args(flags).args(["txt$", "one", "two"]);
        let theirs = testkit::run(&mut gnu, b"");
        assert_eq!(
            testkit::stdout(&ours),
            testkit::stdout(&theirs),
            "{flags:?}"
        );
        assert_eq!(code(&ours), 0);
    }
}

#[test]
fn exit_codes_follow_grep() {
    let sb = Sandbox::new();
    assert_eq!(code(&run(&sb, &["grep", "x"], b"x\n")), 0);
    let none = run(&sb, &["grep", "x"], b"a\nb\n");
    assert_eq!(code(&none), 1);
    assert_eq!(none.stdout, b"");
    // A missing file: reported in one line naming it, the others still searched, exit 2.
    std::fs::write(sb.join("there"), "x\n").unwrap();
    let missing = run(&sb, &["grep", "x", "nosuch", "there"], b"");
    assert_eq!(code(&missing), 2);
    assert_eq!(testkit::stdout(&missing), "there:x\n");
    assert_eq!(
        testkit::stderr(&missing),
        "pipe-demo: open nosuch: No such file or directory\n"
    );
}

/// A line longer than memory (/dev/zero has no newline) used to grow the buffer until the
/// allocator aborted the process (exit 134, a backtrace). Now it stops at the documented cap,
/// with GNU grep's "memory exhausted", naming the file, exit 2.
#[test]
fn a_line_longer_than_the_cap_fails_cleanly_like_grep() {
    let sb = Sandbox::new();
    let out = run(&sb, &["grep", "x", "/dev/zero"], b"");
    assert_eq!(code(&out), 2, "{}", testkit::stderr(&out));
    assert_eq!(out.stdout, b"");
    assert_eq!(
        testkit::stderr(&out),
        "pipe-demo: /dev/zero: a line longer than 256 MiB: memory exhausted\n"
    );
}

#[test]
fn a_bad_regex_exits_2_with_a_clear_message() {
    let sb = Sandbox::new();
    for (args, why) in [
        (&["-E", "a("][..], "unclosed group"),
        (&[r"a\("], r"Unmatched ( or \("),
    ] {
        let out = run(&sb, &[&["grep"][..], args].concat(), b"a(\n");
        assert_eq!(code(&out), 2, "{args:?}");
        assert_eq!(out.stdout, b"");
        assert_eq!(
            testkit::stderr(&out),
            format!("pipe-demo: bad regex '{}': {why}\n", args[args.len() - 1])
        );
    }
}

#[test]
fn input_need_not_be_utf8_and_a_last_line_may_lack_its_newline() {
    let sb = Sandbox::new();
    let input = b"\xff\xfe.txt\nplain\n\xc3(.txt";
    let out = run(&sb, &["grep", "txt$"], input);
    assert_eq!(code(&out), 0);
    assert_eq!(out.stdout, b"\xff\xfe.txt\n\xc3(.txt\n");
}

#[test]
fn a_closed_pipe_downstream_ends_it_quietly() {
    // `yes` never ends by itself: this returns only if pipe-demo stops at the broken pipe
    // (and yes then at its own). The deadline turns a hang into a failure.
    let sb = Sandbox::new();
    let out = recipe(&sb, "yes | pipe-demo grep y | head -1", b"");
    assert_eq!(code(&out), 0);
    assert_eq!(testkit::stdout(&out), "y\n");
    assert_eq!(testkit::stderr(&out), "", "no message, no panic");
}

#[test]
fn grep_exit_status_is_0_on_a_broken_pipe() {
    let sb = Sandbox::new();
    let out = recipe(
        &sb,
        "yes | { pipe-demo grep y; echo $? >&2; } | head -1",
        b"",
    );
    assert_eq!(testkit::stdout(&out), "y\n");
    assert_eq!(testkit::stderr(&out), "0\n");
}

#[test]
fn recipe_ls_into_grep() {
    // README recipe: ls -l | pipe-demo grep 'txt$'
    let sb = Sandbox::new();
    for f in ["a.txt", "b.md", "c.txt"] {
        std::fs::write(sb.join(f), f).unwrap();
    }
    let ours = recipe(&sb, "ls -l | pipe-demo grep 'txt$'", b"");
    let theirs = recipe(&sb, "ls -l | grep 'txt$'", b"");
    assert_eq!(code(&ours), 0);
    assert_eq!(testkit::stdout(&ours), testkit::stdout(&theirs));
    assert_eq!(testkit::stdout(&ours).lines().count(), 2);
}

#[test]
fn live_input_is_passed_on_before_eof() {
    // `tail -f log | pipe-demo grep ERROR` must show each match as it comes, not when its
    // output buffer fills or its input ends: stdin stays open here, and the match must arrive.
    let sb = Sandbox::new();
    let mut cmd = sb.command(support::BIN);
    cmd.args(["grep", "ERROR"])
        .stdin(std::process::Stdio::piped());
    let grep = testkit::spawn(&mut cmd);
    let mut stdin = grep.take_stdin().unwrap();
    let mut out = grep.stdout_lines().unwrap();
    std::io::Write::write_all(&mut stdin, b"info ok\nERROR disk full\ninfo ok\n").unwrap();
    let line = out.wait_for(|_| true, WAIT).unwrap();
    assert_eq!(line, "ERROR disk full");
    std::io::Write::write_all(&mut stdin, b"ERROR again\n").unwrap();
    assert_eq!(out.wait_for(|_| true, WAIT).unwrap(), "ERROR again");
    drop(stdin);
    assert!(grep.wait_timeout(WAIT).unwrap().success());
}
