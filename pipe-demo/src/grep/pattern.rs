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
//!
//! # Finding the next matching line fast
//!
//! The regex runs over whole blocks; its engine finds the literal a match must start with
//! (`txt` in `txt$`, `Nov`) with a vectorised search, and runs its automaton only from there.
//! A pattern whose leading literal is on every line, or that has none, gets no such help:
//! `^-rw.*file_[0-9]+\.md$` starts with `-rw`, which most `ls -l` lines start with, and
//! `[0-9]{2}:5[0-9]` starts with a class. Such a pattern often holds a rarer literal that every
//! match must contain (`.md`, `:5`). [`Matcher::tune`] takes those literals from the regex's
//! syntax tree, counts each in the first block of input, and if the rarest one is on few
//! lines, the search looks for it instead (`memmem`) and runs the regex only on the lines
//! where it is, as GNU grep and ripgrep do. A pattern that is one literal and nothing else
//! (`Nov`, `-F .txt.gz`) is looked for with `memmem`, and a line that holds it matches: no
//! regex runs at all.

use std::ops::Range;

use common::{Error, Result, trace};
use memchr::memmem::{self, Finder};
use memchr::{memchr, memrchr};
use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Hir, HirKind};

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
    /// Literals that every match contains, in pattern order (see the module docs).
    required: Vec<Vec<u8>>,
    /// The first of them is where every match starts (the regex's own search looks for it).
    leading: bool,
    /// The literal to look for instead of running the regex over the block: the whole
    /// pattern when it is one literal, or one set by [`Matcher::tune`].
    rare: Option<Finder<'static>>,
    /// The pattern is exactly the literal in `rare`: a line that holds it matches, with no
    /// regex to run at all.
    exact: bool,
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
                required: Vec::new(),
                leading: false,
                rare: None,
                exact: false,
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
        let re = build(&framed, flags.ignore_case, &shown)?;
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .unicode(false)
            .multi_line(true)
            .case_insensitive(flags.ignore_case)
            .build()
            .parse(&framed);
        let (mut required, mut leading, mut exact) = (Vec::new(), false, false);
        if let Ok(hir) = hir {
            required_literals(&hir, &mut required);
            leading = starts_with_literal(&hir);
            exact = matches!(hir.kind(), HirKind::Literal(_));
        }
        // A literal with a newline cannot be inside one line; an empty one finds everything.
        required.retain(|l| !l.is_empty() && !l.contains(&b'\n'));
        // One literal (`Nov`, `-F .txt.gz`): look for it, and that is the whole search.
        exact &= required.len() == 1;
        let rare = exact.then(|| Finder::new(&required[0]).into_owned());
        Ok(Matcher {
            re: Some(re),
            word,
            required,
            leading,
            rare,
            exact,
        })
    }

    /// Choose how to search, from a sample of the input (its first block): by the literals
    /// every match contains, if one of them is rare there (see the module docs).
    pub fn tune(&mut self, sample: &[u8]) {
        if self.exact {
            return;
        }
        let lines = memchr::memchr_iter(b'\n', sample).count().max(1);
        // Counting stops past one per line: more cannot change the choice.
        let best = self
            .required
            .iter()
            .enumerate()
            .map(|(i, lit)| (memmem::find_iter(sample, lit).take(lines + 1).count(), i))
            .min();
        let Some((count, i)) = best else {
            return;
        };
        // The leading literal is what the regex engine looks for itself; a literal on more
        // than one line in four makes too many lines to check one by one.
        if (i == 0 && self.leading) || count * 4 > lines {
            return;
        }
        let lit = &self.required[i];
        trace!(
            "search: memmem for {:?} (on {count} of {lines} sampled lines), regex on those lines",
            String::from_utf8_lossy(lit)
        );
        self.rare = Some(Finder::new(lit).into_owned());
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
        if let Some(rare) = &self.rare {
            return find_line_by_literal((!self.exact).then_some(re), rare, b, pos);
        }
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

/// [`Matcher::find_line`] by a literal every match contains: each line that holds it is
/// checked with the regex `re`, on its own (if there is more to the pattern than the literal).
fn find_line_by_literal(
    re: Option<&Regex>,
    rare: &Finder<'_>,
    b: &[u8],
    mut pos: usize,
) -> Option<(usize, usize)> {
    while pos < b.len() {
        let at = pos + rare.find(&b[pos..])?;
        let line_start = memrchr(b'\n', &b[pos..at]).map_or(pos, |i| pos + i + 1);
        let line_end = memchr(b'\n', &b[at..]).map_or(b.len(), |i| at + i);
        if re.is_none_or(|re| re.is_match(&b[line_start..line_end])) {
            return Some((line_start, line_end));
        }
        pos = line_end + 1;
    }
    None
}

/// The literals that every match of `hir` contains, in order: those of a concatenation, of
/// a group, of a repetition that happens at least once. An alternation promises none.
fn required_literals(hir: &Hir, out: &mut Vec<Vec<u8>>) {
    match hir.kind() {
        HirKind::Literal(lit) => out.push(lit.0.to_vec()),
        HirKind::Capture(c) => required_literals(&c.sub, out),
        HirKind::Repetition(r) if r.min >= 1 => required_literals(&r.sub, out),
        HirKind::Concat(subs) => {
            for sub in subs {
                required_literals(sub, out);
            }
        }
        _ => {}
    }
}

/// True if every match of `hir` starts with its first required literal (after `^`).
fn starts_with_literal(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(_) => true,
        HirKind::Capture(c) => starts_with_literal(&c.sub),
        HirKind::Concat(subs) => subs
            .iter()
            .find(|s| !matches!(s.kind(), HirKind::Look(_)))
            .is_some_and(starts_with_literal),
        _ => false,
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
    fn a_rare_inner_literal_is_searched_for_and_lines_checked_by_the_regex() {
        let mut text = Vec::new();
        for i in 0..400 {
            let ext = if i % 10 == 3 { "md" } else { "txt" };
            text.extend_from_slice(format!("-rw-r--r-- file_{i}.{ext}\n").as_bytes());
        }
        text.extend_from_slice(b"-rw-r--r-- not.md.txt\n-rw x.md\n");
        let pattern = [r"^-rw.*file_[0-9]+\.md$".to_owned()];
        let plain = Matcher::new(&pattern, Flags::default()).unwrap();
        let mut tuned = Matcher::new(&pattern, Flags::default()).unwrap();
        assert_eq!(
            tuned.required,
            [b"-rw".to_vec(), b"file_".to_vec(), b".md".to_vec()]
        );
        assert!(tuned.leading);
        tuned.tune(&text);
        assert!(tuned.rare.is_some(), ".md is on 1 line in 10");
        let all = |m: &Matcher| {
            let mut found = Vec::new();
            let mut pos = 0;
            while let Some((s, e)) = m.find_line(&text, pos) {
                found.push(s..e);
                pos = e + 1;
            }
            found
        };
        assert_eq!(all(&tuned).len(), 40);
        assert_eq!(all(&tuned), all(&plain));
        // A whole literal is looked for as it is, no regex involved.
        let exact = Matcher::new(&["file_3".to_owned()], Flags::default()).unwrap();
        assert!(exact.exact && exact.rare.is_some());
        let fixed = Flags {
            fixed: true,
            ..Flags::default()
        };
        assert!(Matcher::new(&["a.c".to_owned()], fixed).unwrap().exact);
        let i = Flags {
            ignore_case: true,
            ..Flags::default()
        };
        assert!(!Matcher::new(&["abc".to_owned()], i).unwrap().exact);
        // A leading literal is left to the regex engine, which looks for it itself.
        let mut lead = Matcher::new(&["file_3[0-9]".to_owned()], Flags::default()).unwrap();
        lead.tune(&text);
        assert!(lead.rare.is_none());
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
