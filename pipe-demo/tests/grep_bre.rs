//! `pipe-demo grep`'s default syntax, GNU grep's basic regular expressions, side by side with
//! `LC_ALL=C grep` on the same patterns and input: the selected lines, what `-o` prints (the
//! leftmost-longest match), the counts with `-i`, and the exit status. Malformed patterns get
//! GNU grep's own message, and a back-reference a clear error instead of a silent difference.

mod support;

use common::testkit::{self, Sandbox};
use support::{assert_like_gnu, code, gnu_grep, run};

/// Lines that tell the operators from ordinary characters, anchors from `^`/`$` in the middle,
/// and bracket expressions' edge cases apart.
const INPUT: &[u8] = b"\
fo foo fooo f
*a x*a a*b aaa ab
a+b a?b aab {1}a a{1} a{2,3} (x) x a|b
a^b a$b $a ^a a$ ^^a
word words sword a_word wo-rd
tab\there  spaces   end
a.b a-b ]x \\y %,- [z]
ABC abc AbC 123 0x1F
x\x80\xff bytes \xc3\xa9t\xc3\xa9
abcabc ababab
\r
";

/// Valid BREs, each with what GNU grep reads in it.
const PATTERNS: &[&str] = &[
    // GNU's operators, and their characters without a backslash.
    r"fo\+",
    "fo*",
    r"fo\?o",
    r"a\|b",
    r"\(ab\)*c",
    r"\(ab\)\{2\}",
    r"a\{2\}",
    r"a\{1,2\}b",
    r"a\{,2\}b",
    r"a\{2,\}",
    r"o\{0\}f",
    "a+b",
    "a?b",
    "{1}",
    "a{2,3}",
    "(x)",
    r"a|b",
    // A repetition with nothing before it is a character.
    "*a",
    r"\(*a\)",
    r"x\|*a",
    "^*a",
    r"\{1\}a",
    r"\+b",
    "a**",
    r"a*\?b",
    // Anchors only at the edges.
    "a^b",
    "a$b",
    "$a",
    "^^a",
    "a$$",
    r"\(^fo\)",
    r"x\|^fo",
    r"\(f$\)",
    r"^tab\|end$",
    r"\`fo",
    r"\.b\'",
    // GNU's escapes.
    r"\<wo",
    r"rd\>",
    r"\bwo",
    r"\Bor",
    r"\w\+",
    r"\W\+",
    r"\s\+",
    r"\S\+d",
    r"\.\*\[",
    r"\d",
    // Bracket expressions.
    "[abc]",
    "[]a]",
    "[^]a ]",
    r"[a\]",
    "[a-]",
    "[%--]",
    "[[:digit:]]\\+",
    "[[:space:]]",
    "[^[:alnum:]_ ]",
    "[[:upper:][:punct:]]",
    "[[:xdigit:]]\\{2\\}",
    "[[:blank:]][[:graph:]]",
    "[[:cntrl:]]",
    "[[.-.][=a=]]",
    "[[.a.]-c]",
    "[a[]",
    "[::]",
    "[:a-z:]",
    "[^a-z ]\\{2,\\}",
    // Bytes above 0x7f are characters of their own (the C locale).
    "[\u{80}-\u{ff}]",
    ".\\{3\\}",
    // Alternatives of different lengths: -o shows the longest, as GNU grep.
    r"ab\|abcabc",
    r"\(a\|ab\)\(c\|bcab\)",
    r"\(\)\|a",
];

fn gnu(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    testkit::run(gnu_grep(sb).args(args), INPUT)
}

fn ours(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    run(sb, &[&["grep"][..], args].concat(), INPUT)
}

#[test]
fn basic_regular_expressions_mean_what_gnu_grep_says() {
    let sb = Sandbox::new();
    for pattern in PATTERNS {
        for flags in [
            &[][..],
            &["-o"],
            &["-c", "-i"],
            &["-w"],
            &["-G", "-x", "-c"],
        ] {
            let args = [flags, &["-e", pattern]].concat();
            let (o, g) = (ours(&sb, &args), gnu(&sb, &args));
            assert_like_gnu(&format!("grep {args:?}"), &o, &g);
            assert_eq!(testkit::stderr(&o), "", "grep {args:?}");
        }
    }
}

/// `-o -w`: of the matches at the leftmost start, the longest that is a whole word, as GNU
/// grep prints them. (Patterns that match non-word bytes or nothing at all are left out: for
/// the matches after a line's first one, GNU grep's retry of shorter matches reads a shortened
/// line, and what it prints then depends on that: `-o -w '[a-z]*'` prints the `x` of `0x1F`.)
#[test]
fn only_matching_whole_words_like_gnu_grep() {
    let sb = Sandbox::new();
    for pattern in [
        r"fo\+",
        "fo*",
        r"\w\+",
        r"a\|ab",
        r"ab\|abcabc",
        r"b\|ba\|bar",
        r"wo\|word\|words",
        "[[:alpha:]]\\{3\\}",
    ] {
        for flags in [&["-o", "-w"][..], &["-o", "-w", "-i", "-n"]] {
            let args = [flags, &["-e", pattern]].concat();
            let (o, g) = (ours(&sb, &args), gnu(&sb, &args));
            assert_like_gnu(&format!("grep {args:?}"), &o, &g);
        }
    }
}

#[test]
fn several_bres_from_e_and_f_and_newlines() {
    let sb = Sandbox::new();
    std::fs::write(sb.join("pats"), "a\\{2\\}\n^tab\n[[:digit:]]\\+\n").unwrap();
    for args in [
        &["-e", r"fo\+", "-e", r"\<a\|b\>"][..],
        &["-f", "pats"],
        &["-o", "-f", "pats", "-e", r"x\*a"],
        &["fo\\+\n^\\$a"],
        &["-c", "-v", "-f", "pats"],
    ] {
        let (o, g) = (ours(&sb, args), gnu(&sb, args));
        assert_like_gnu(&format!("grep {args:?}"), &o, &g);
    }
}

/// A malformed BRE: exit 2 and nothing on stdout, as GNU grep, with GNU grep's message after
/// our `bad regex 'PATTERN': `.
#[test]
fn malformed_patterns_get_gnu_greps_message() {
    let sb = Sandbox::new();
    for pattern in [
        "a\\",
        r"\(a",
        r"a\)",
        "[a",
        "[]",
        "[[:alpha:]",
        "[[:foo:]]",
        "[[.ab.]]",
        "[b-a]",
        "[a-c-e]",
        "[:space:]",
        r"a\{1",
        r"a\{1,2",
        r"a\{2,1\}",
        r"a\{1a\}",
        r"a\{32768\}",
        r"a\1",
    ] {
        let (o, g) = (ours(&sb, &["-e", pattern]), gnu(&sb, &["-e", pattern]));
        assert_eq!((code(&o), code(&g)), (2, 2), "{pattern:?}");
        assert!(o.stdout.is_empty() && g.stdout.is_empty(), "{pattern:?}");
        let why = testkit::stderr(&g);
        let why = why.strip_prefix("grep: ").unwrap_or(&why);
        assert_eq!(
            testkit::stderr(&o),
            format!("pipe-demo: bad regex '{pattern}': {why}"),
            "{pattern:?}"
        );
    }
}

/// GNU grep matches `\(x\)\1`; the regex crate cannot. Refusing it names the construct,
/// where matching something else would be a silent difference.
#[test]
fn a_back_reference_is_a_clear_error() {
    let sb = Sandbox::new();
    for pattern in [r"\(a\)\1", r"\(o\)\1"] {
        assert_eq!(
            code(&gnu(&sb, &[pattern])),
            0,
            "GNU grep supports {pattern:?}"
        );
        let o = ours(&sb, &[pattern]);
        assert_eq!(code(&o), 2, "{pattern:?}");
        assert_eq!(o.stdout, b"");
        assert_eq!(
            testkit::stderr(&o),
            format!(
                "pipe-demo: bad regex '{pattern}': \\1: back-references are not supported \
                 (the regex crate has none)\n"
            )
        );
    }
}

/// `-G`, `-E` and `-F` name the syntax; two different ones are refused, as GNU grep refuses
/// them ("conflicting matchers"), and the same one twice is fine.
#[test]
fn syntax_flags_conflict_like_gnu_greps() {
    let sb = Sandbox::new();
    for args in [
        &["-G", "-E", "a"][..],
        &["-E", "-F", "a"],
        &["-F", "-G", "a"],
    ] {
        let o = ours(&sb, args);
        assert_eq!((code(&o), code(&gnu(&sb, args))), (2, 2), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    for args in [
        &["-E", "-E", "a+b"][..],
        &["-G", "-G", r"a\+b"],
        &["-F", "-F", "a+b"],
    ] {
        let (o, g) = (ours(&sb, args), gnu(&sb, args));
        assert_eq!(code(&o), 0, "{args:?}: {}", testkit::stderr(&o));
        assert_eq!(o.stdout, g.stdout, "{args:?}");
    }
}

/// `--help` and the man page say which syntax is the default and what is not supported.
#[test]
fn help_and_man_page_name_the_syntax() {
    let sb = Sandbox::new();
    let help = testkit::stdout(&run(&sb, &["grep", "--help"], b""));
    let man = testkit::stdout(&run(&sb, &["--generate", "man"], b""));
    for (what, text) in [("--help", &help), ("the man page", &man)] {
        for want in [
            "PATTERN is a basic regular expression (BRE), read as GNU grep reads it",
            "Not supported: back",
            "GREP_COLORS is\nread as GNU grep reads it",
        ] {
            assert!(text.contains(want), "{what} lacks {want:?}:\n{text}");
        }
    }
}
