//! From grep's pattern flags (`-e`, `-f`, `-F`, `-i`, `-w`, `-x`) to one regex, and the
//! search for the next line it matches.
//!
//! Several patterns (`-e A -e B`, the lines of `-f FILE`, the lines of one pattern that holds
//! newlines) select a line if any of them matches: they become one alternation, `(?:A)|(?:B)`,
//! searched in one pass. `-F` escapes each pattern; `-x` anchors the alternation to the whole
//! line, `^(?:…)$`; `-w` requires a non-word byte (or the line's edge) on both sides,
//! `(?:^|\W)(…)(?:\W|$)` with `\n` left out of `\W` so that a match never starts on the line
//! before. The regex engine then finds a match whose edges are word edges wherever one
//! exists (`-w foo` selects `foo foobar`'s line for its first word and not `foobar` alone),
//! and group 1 is what `-o` prints.
//!
//! No pattern at all (`-f /dev/null`) matches nothing, as in grep.

use std::ops::Range;

use common::{Error, Result};
use memchr::{memchr, memrchr};
use regex::bytes::{Regex, RegexBuilder};

/// How patterns are read and what a match must cover.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// `-F`: the patterns are literal strings.
    pub fixed: bool,
    /// `-i`: ASCII letters match either case.
    pub ignore_case: bool,
    /// `-w`: the match must be a whole word.
    pub word: bool,
    /// `-x`: the match must be the whole line (wins over `-w`, as in grep).
    pub line: bool,
}

/// The compiled patterns.
pub struct Matcher {
    /// None when there is no pattern: nothing matches.
    re: Option<Regex>,
    /// The regex has the `-w` frame: the match proper is group 1.
    word: bool,
}

/// `[^[:alnum:]_\n]`: a byte that ends a word, on this line.
const NOT_WORD: &str = r"[^0-9A-Za-z_\n]";

impl Matcher {
    /// Compile `patterns` under `flags`. A bad pattern is a usage error (exit 2) naming it.
    pub fn new(patterns: &[String], flags: Flags) -> Result<Self> {
        if patterns.is_empty() {
            return Ok(Matcher {
                re: None,
                word: false,
            });
        }
        let mut alternation = String::new();
        for (i, p) in patterns.iter().enumerate() {
            if i > 0 {
                alternation.push('|');
            }
            // Each one checked on its own first, so an error names the pattern at fault and
            // one pattern's `)` cannot close another's group.
            let p = if flags.fixed {
                regex::escape(p)
            } else {
                compile(p, false)?;
                p.clone()
            };
            alternation.push_str("(?:");
            alternation.push_str(&p);
            alternation.push(')');
        }
        let word = flags.word && !flags.line;
        let framed = if flags.line {
            format!("^(?:{alternation})$")
        } else if word {
            format!("(?:^|{NOT_WORD})({alternation})(?:{NOT_WORD}|$)")
        } else {
            alternation
        };
        let shown = patterns.join("\\n");
        Ok(Matcher {
            re: Some(build(&framed, flags.ignore_case, &shown)?),
            word,
        })
    }

    /// The next line of `b` at or after `pos` (a line start) that matches: the line's start
    /// and its end (the index of its `\n`, or `b.len()`).
    ///
    /// The regex runs over the whole block, not line by line, and only around a match are
    /// the line's edges looked for. A match may run past the end of the line it started on
    /// (`a[^x]*b` eats `\n`): that line is then checked on its own. Leftmost-first search
    /// guarantees that no line before the match would have matched.
    #[inline]
    pub fn find_line(&self, b: &[u8], mut pos: usize) -> Option<(usize, usize)> {
        let re = self.re.as_ref()?;
        while pos < b.len() {
            let m = re.find_at(b, pos)?;
            let start = m.start();
            if start >= b.len() {
                // An empty match after the final newline: that is no line.
                return None;
            }
            let line_start = memrchr(b'\n', &b[pos..start]).map_or(pos, |i| pos + i + 1);
            let line_end = memchr(b'\n', &b[start..]).map_or(b.len(), |i| start + i);
            if m.end() <= line_end || re.is_match(&b[line_start..line_end]) {
                return Some((line_start, line_end));
            }
            pos = line_end + 1;
        }
        None
    }

    /// The non-empty matches in `line` (one line, without its newline), for `-o`.
    pub fn matches(
        &self,
        line: &[u8],
        mut each: impl FnMut(Range<usize>) -> Result<()>,
    ) -> Result<()> {
        let Some(re) = &self.re else {
            return Ok(());
        };
        if !self.word {
            for m in re.find_iter(line) {
                if !m.is_empty() {
                    each(m.range())?;
                }
            }
            return Ok(());
        }
        // With the -w frame the match proper is group 1, and the next search starts where it
        // ends, so the byte after one word can be the byte before the next (`foo foo`).
        let mut locs = re.capture_locations();
        let mut pos = 0;
        while pos <= line.len() {
            let Some(whole) = re.captures_read_at(&mut locs, line, pos) else {
                break;
            };
            let (s, e) = locs.get(1).unwrap_or((whole.start(), whole.end()));
            if e > s {
                each(s..e)?;
            }
            pos = if e > pos { e } else { pos + 1 };
        }
        Ok(())
    }
}

/// Compile one pattern the way `LC_ALL=C grep -E` reads it: bytes, not UTF-8 (`.` is any byte
/// but newline), `^`/`$` at line edges, ASCII case folding with `ignore_case`. A bad pattern
/// is a usage error (exit 2) with a one-line message.
pub fn compile(pattern: &str, ignore_case: bool) -> Result<Regex> {
    build(pattern, ignore_case, pattern)
}

fn build(regex: &str, ignore_case: bool, shown: &str) -> Result<Regex> {
    RegexBuilder::new(regex)
        .multi_line(true)
        .unicode(false)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| Error::Usage(format!("bad regex '{shown}': {}", regex_error(&e))))
}

/// The regex crate's syntax errors span several lines (the pattern, a caret, the cause);
/// keep the cause.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(
            || {
                text.lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim()
                    .to_owned()
            },
            str::to_owned,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(patterns: &[&str], flags: Flags, text: &[u8]) -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let m = Matcher::new(&patterns, flags).unwrap();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((s, e)) = m.find_line(text, pos) {
            out.push(String::from_utf8_lossy(&text[s..e]).into_owned());
            pos = e + 1;
        }
        out
    }

    #[test]
    fn a_match_never_crosses_a_newline() {
        let f = Flags::default();
        assert_eq!(lines(&["a[^x]*b"], f, b"ax\nyb\nab\n"), ["ab"]);
        assert!(lines(&["x\ny"], f, b"x\ny\n").is_empty());
    }

    #[test]
    fn several_patterns_fixed_strings_words_and_lines() {
        let text = b"a.c\nabc\nfoo bar\nfoobar\n";
        let f = Flags::default();
        assert_eq!(lines(&["a.c"], f, text), ["a.c", "abc"]);
        let fixed = Flags { fixed: true, ..f };
        assert_eq!(lines(&["a.c"], fixed, text), ["a.c"]);
        assert_eq!(
            lines(&["bar", "a.c"], fixed, text),
            ["a.c", "foo bar", "foobar"]
        );
        let word = Flags { word: true, ..f };
        assert_eq!(lines(&["foo"], word, text), ["foo bar"]);
        assert_eq!(lines(&["foo|foobar"], word, text), ["foo bar", "foobar"]);
        let line = Flags { line: true, ..f };
        assert_eq!(
            lines(&["foo.*", "abc"], line, text),
            ["abc", "foo bar", "foobar"]
        );
        assert!(lines(&[], f, text).is_empty());
    }

    #[test]
    fn only_matching_with_words_reuses_the_boundary() {
        let m = Matcher::new(
            &["foo".to_owned()],
            Flags {
                word: true,
                ..Flags::default()
            },
        )
        .unwrap();
        let mut got = Vec::new();
        m.matches(b"foo foo,foox foo", |r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, [0..3, 4..7, 13..16]);
    }

    #[test]
    fn bad_regex_is_one_line_naming_the_pattern() {
        let e = Matcher::new(&["ok".into(), "a(".into()], Flags::default());
        assert_eq!(
            e.err().unwrap().to_string(),
            "bad regex 'a(': unclosed group"
        );
    }
}
