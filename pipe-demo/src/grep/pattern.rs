//! From grep's pattern flags (`-e`, `-f`, `-G`, `-E`, `-F`, `-i`, `-w`, `-x`) to one regex, and
//! the search for the next line it matches.
//!
//! Each pattern is read in the syntax asked for: GNU grep's basic regular expressions by
//! default or with `-G` (translated into the regex crate's syntax by [`bre`]), the regex
//! crate's own syntax with `-E` (close to grep's extended ones), or as a fixed string with
//! `-F`. Several patterns (`-e A -e B`, the lines of `-f FILE`, the lines of one pattern that
//! holds newlines) select a line if any of them matches: they become one alternation,
//! `(?:A)|(?:B)`, searched in one pass. `-x` anchors the alternation to the whole line,
//! `^(?:…)$`; `-w` requires a non-word byte (or the line's edge) on both sides,
//! `(?:^|\W)(…)(?:\W|$)` with `\n` left out of `\W` so that a match never starts on the line
//! before. The regex engine then finds a match whose edges are word edges wherever one
//! exists (`-w foo` selects `foo foobar`'s line for its first word and not `foobar` alone).
//!
//! No pattern at all (`-f /dev/null`) matches nothing, as in grep.
//!
//! # What `-o` and `--color` show
//!
//! GNU grep shows the leftmost-longest match (POSIX's rule): `-o 'a\|ab'` prints `ab`. The
//! regex crate finds the leftmost-first one (`a`), so [`Matcher::matches`] takes only the
//! start from it and asks a DFA for the longest match from there ([`Dfa::longest`]).
//! With `-w` it does what GNU grep does: of the matches at the leftmost start, the longest
//! one that ends at a word edge, and if none does, the next start.
//!
//! # Finding the next matching line fast
//!
//! The regex runs over whole blocks; its engine finds the literal a match must start with
//! (`txt` in `txt$`, `Nov`) with a vectorised search, and runs its automaton only from there.
//! When no match can hold a newline (no `[^a]` or `\s` in a `-E` pattern; the BRE translation
//! never has one), the end of the first match is enough to know its line: the search asks only
//! for that (`shortest_match_at`), one forward scan, where finding the match's start as well
//! would take a second scan backwards.
//!
//! A pattern whose leading literal is on every line, or that has none, gets no help from the
//! engine's literal search: `^-rw.*file_[0-9]+\.md$` starts with `-rw`, which most `ls -l`
//! lines start with, and `[0-9]{2}:5[0-9]` and `[0-9] alice +[a-z]+` start with a class. Such
//! a pattern often holds another literal that every match must contain (`.md`, `:5`,
//! ` alice`). [`Matcher::tune`] takes those literals from the regex's syntax tree and counts
//! each in the first block of input. If the rarest one is on few lines, or if the pattern is a
//! concatenation around it (then a line is checked around the literal alone: see [`super::inner`]),
//! the search looks for that literal instead (`memmem`) and checks only the lines where it is,
//! as GNU grep and ripgrep do. A pattern that is one literal and nothing else (`Nov`,
//! `-F .txt.gz`) is looked for with `memmem`, and a line that holds it matches: no regex runs
//! at all.

use std::cmp::Reverse;
use std::ops::Range;

use common::{Error, Result, trace};
use memchr::memmem::{self, Finder};
use memchr::{memchr, memrchr};
use regex::bytes::{Regex, RegexBuilder};
use regex_syntax::hir::{Class, Hir, HirKind};

use super::bre;
use super::dfa::Dfa;
use super::inner::Inner;

/// How patterns are read (`-G`, `-E`, `-F`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Syntax {
    /// `-G`, the default: GNU grep's basic regular expressions (see [`bre`]).
    #[default]
    Basic,
    /// `-E`: the regex crate's syntax, close to grep's extended regular expressions.
    Extended,
    /// `-F`: literal strings.
    Fixed,
}

/// How patterns are read and what a match must cover.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub syntax: Syntax,
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
    /// The regex's syntax tree, which [`Matcher::tune`] looks into.
    hir: Option<Hir>,
    /// No match can hold a newline: where a match ends tells its line.
    within_lines: bool,
    /// With `-w`: the patterns without the word frame (whose group 1 is the match proper),
    /// for [`Matcher::matches`], which applies GNU grep's word rule.
    word: Option<Regex>,
    /// A DFA for the longest match at a given start (of the patterns alone, with `-w`).
    longest: Option<Dfa>,
    /// Literals that every match contains, in pattern order (see the module docs).
    required: Vec<Vec<u8>>,
    /// The first of them is where every match starts (the regex's own search looks for it).
    leading: bool,
    /// The literal to look for instead of running the regex over the block: the whole
    /// pattern when it is one literal, or one set by [`Matcher::tune`].
    rare: Option<Finder<'static>>,
    /// How a line that holds `rare` is checked around it, when the pattern allows
    /// (else the regex checks the whole line).
    inner: Option<Inner>,
    /// The pattern is exactly the literal in `rare`: a line that holds it matches, with no
    /// regex to run at all.
    exact: bool,
}

/// `[^[:alnum:]_\n]`: a byte that ends a word, on this line.
const NOT_WORD: &str = r"[^0-9A-Za-z_\n]";

impl Matcher {
    /// Compile `patterns` under `flags`. A bad pattern is a usage error (exit 2) naming it.
    pub fn new(patterns: &[String], flags: Flags) -> Result<Self> {
        let mut m = Matcher {
            re: None,
            hir: None,
            within_lines: false,
            word: None,
            longest: None,
            required: Vec::new(),
            leading: false,
            rare: None,
            inner: None,
            exact: false,
        };
        if patterns.is_empty() {
            return Ok(m);
        }
        let mut alternation = String::new();
        for (i, p) in patterns.iter().enumerate() {
            if i > 0 {
                alternation.push('|');
            }
            // Each one checked on its own first, so an error names the pattern at fault and
            // one pattern's `)` cannot close another's group.
            let p = match flags.syntax {
                Syntax::Fixed => regex::escape(p),
                Syntax::Extended => {
                    build(p, false, p)?;
                    p.clone()
                }
                Syntax::Basic => {
                    let re = bre::translate(p).map_err(|why| bad_regex(p, &why))?;
                    build(&re, false, p)?;
                    re
                }
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
            alternation.clone()
        };
        let shown = patterns.join("\\n");
        m.re = Some(build(&framed, flags.ignore_case, &shown)?);
        if word {
            m.word = Some(build(&alternation, flags.ignore_case, &shown)?);
        }
        let parse = |re: &str| {
            regex_syntax::ParserBuilder::new()
                .utf8(false)
                .unicode(false)
                .multi_line(true)
                .case_insensitive(flags.ignore_case)
                .build()
                .parse(re)
                .ok()
        };
        if let Some(hir) = parse(&framed) {
            required_literals(&hir, &mut m.required);
            m.leading = starts_with_literal(&hir);
            m.exact = matches!(hir.kind(), HirKind::Literal(_));
            m.within_lines = !holds_newline(&hir);
            m.hir = Some(hir);
        }
        let unframed = if word {
            parse(&alternation)
        } else {
            m.hir.clone()
        };
        m.longest = unframed.and_then(|hir| Dfa::new(&hir, false));
        // A literal with a newline cannot be inside one line; an empty one finds everything.
        m.required.retain(|l| !l.is_empty() && !l.contains(&b'\n'));
        // One literal (`Nov`, `-F .txt.gz`): look for it, and that is the whole search.
        m.exact &= m.required.len() == 1;
        if m.exact {
            m.rare = Some(Finder::new(&m.required[0]).into_owned());
        }
        Ok(m)
    }

    /// Choose how to search, from a sample of the input (its first block): by one of the
    /// literals every match contains, if it is rare there or a line can be checked around it
    /// (see the module docs).
    pub fn tune(&mut self, sample: &[u8]) {
        if self.exact {
            return;
        }
        let lines = memchr::memchr_iter(b'\n', sample).count().max(1);
        // Counting stops past two per line: more cannot change the choice. Of two literals as
        // frequent, the longer one is the faster to look for.
        let best = self
            .required
            .iter()
            .enumerate()
            .map(|(i, lit)| {
                let n = memmem::find_iter(sample, lit).take(2 * lines + 1).count();
                (n, Reverse(lit.len()), i)
            })
            .min();
        let Some((count, _, i)) = best else {
            return;
        };
        // The leading literal is what the regex engine looks for itself.
        if i == 0 && self.leading {
            return;
        }
        let lit = &self.required[i];
        let inner = self.hir.as_ref().and_then(|hir| Inner::new(hir, lit));
        // A literal on more than one line in four makes too many lines to run the regex on,
        // one by one; checking around the literal costs little enough per line, but not
        // several times per line.
        let rare = count * 4 <= lines;
        if !rare && (inner.is_none() || count > 2 * lines) {
            return;
        }
        trace!(
            "search: memmem for {:?} (on {count} of {lines} sampled lines), then {} on those lines",
            String::from_utf8_lossy(lit),
            if inner.is_some() {
                "DFAs on both sides of it"
            } else {
                "the regex"
            }
        );
        self.rare = Some(Finder::new(lit).into_owned());
        self.inner = inner;
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
            return self.find_line_by_literal(re, rare, b, pos);
        }
        if self.within_lines {
            if pos >= b.len() {
                return None;
            }
            // The match lies within one line, so the line that holds its end holds all of it
            // (an empty match at a line's start ends there too).
            let end = re.shortest_match_at(b, pos)?;
            if end == b.len() && b[end - 1] == b'\n' {
                // An empty match after the final newline: that is no line.
                return None;
            }
            let line_start = memrchr(b'\n', &b[pos..end]).map_or(pos, |i| pos + i + 1);
            let line_end = memchr(b'\n', &b[end..]).map_or(b.len(), |i| end + i);
            return Some((line_start, line_end));
        }
        while pos < b.len() {
            let m = re.find_at(b, pos)?;
            let start = m.start();
            if start >= b.len() {
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

    /// [`Matcher::find_line`] by a literal every match contains.
    fn find_line_by_literal(
        &self,
        re: &Regex,
        rare: &Finder<'_>,
        b: &[u8],
        mut pos: usize,
    ) -> Option<(usize, usize)> {
        while pos < b.len() {
            let at = pos + rare.find(&b[pos..])?;
            let line_start = memrchr(b'\n', &b[pos..at]).map_or(pos, |i| pos + i + 1);
            let line_end = memchr(b'\n', &b[at..]).map_or(b.len(), |i| at + i);
            if self.exact || self.line_matches(re, rare, &b[line_start..line_end], at - line_start)
            {
                return Some((line_start, line_end));
            }
            pos = line_end + 1;
        }
        None
    }

    /// Does `line` match, given that the literal `rare` is at `at`?
    fn line_matches(&self, re: &Regex, rare: &Finder<'_>, line: &[u8], mut at: usize) -> bool {
        let Some(inner) = &self.inner else {
            return re.is_match(line);
        };
        // Around each occurrence in turn (`ab` may sit in the line twice, the second one
        // the match's); a DFA that gives up hands the line to the regex.
        loop {
            match inner.matches_at(line, at) {
                Some(true) => return true,
                Some(false) => {}
                None => return re.is_match(line),
            }
            match rare.find(&line[at + 1..]) {
                Some(i) => at += 1 + i,
                None => return false,
            }
        }
    }

    /// The non-empty matches in `line` (one line, without its newline), for `-o` and
    /// `--color`: leftmost-longest, as GNU grep finds them (see the module docs).
    pub fn matches(
        &self,
        line: &[u8],
        mut each: impl FnMut(Range<usize>) -> Result<()>,
    ) -> Result<()> {
        let Some(re) = &self.re else {
            return Ok(());
        };
        let mut pos = 0;
        while pos <= line.len() {
            let Some((start, end)) = self.next_match(re, line, pos) else {
                break;
            };
            if end > start {
                each(start..end)?;
                pos = end;
            } else {
                // An empty match, or (-w) no whole word at this start: try the next byte.
                pos = start + 1;
            }
        }
        Ok(())
    }

    /// The leftmost-longest match in `line` at or after `pos`; with `-w`, the leftmost start
    /// of a match and the longest whole word there (none: an empty range).
    fn next_match(&self, re: &Regex, line: &[u8], pos: usize) -> Option<(usize, usize)> {
        let Some(plain) = &self.word else {
            let m = re.find_at(line, pos)?;
            let longest = self.longest.as_ref();
            let end = longest.and_then(|dfa| dfa.longest(line, m.start()..line.len()));
            return Some((m.start(), end.flatten().map_or(m.end(), |e| e.max(m.end()))));
        };
        let start = plain.find_at(line, pos)?.start();
        match self.longest_word(line, start) {
            Some(end) => Some((start, end.unwrap_or(start))),
            None => {
                // The DFA gave up: the word frame's group 1, leftmost-first.
                let mut locs = re.capture_locations();
                re.captures_read_at(&mut locs, line, pos)?;
                locs.get(1)
            }
        }
    }

    /// With `-w`: the end of the longest match at `start` that is a whole word, if any (GNU
    /// grep tries the longest, then ever shorter ones); None if the DFA gave up.
    fn longest_word(&self, line: &[u8], start: usize) -> Option<Option<usize>> {
        let word_byte = |i: usize| line.get(i).is_some_and(|&c| is_word(c));
        if start > 0 && word_byte(start - 1) {
            return Some(None);
        }
        let dfa = self.longest.as_ref()?;
        let mut limit = line.len();
        loop {
            let Some(end) = dfa.longest(line, start..limit)? else {
                return Some(None);
            };
            if !word_byte(end) {
                return Some(Some(end));
            }
            if end == start {
                return Some(None);
            }
            limit = end - 1;
        }
    }
}

/// A byte of a word: `[[:alnum:]_]`.
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// True if some match of `hir` may hold a newline (`[^a]`, `\s` or `\n` in a `-E` pattern).
fn holds_newline(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(lit) => lit.0.contains(&b'\n'),
        HirKind::Class(Class::Bytes(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= b'\n' && b'\n' <= r.end()),
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .any(|r| r.start() <= '\n' && '\n' <= r.end()),
        HirKind::Repetition(r) => holds_newline(&r.sub),
        HirKind::Capture(c) => holds_newline(&c.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(holds_newline),
    }
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
        .map_err(|e| bad_regex(shown, &regex_error(&e)))
}

/// A pattern that does not compile: a usage error (exit 2) naming it.
fn bad_regex(pattern: &str, why: &str) -> Error {
    Error::Usage(format!("bad regex '{pattern}': {why}"))
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

    fn flags(syntax: Syntax) -> Flags {
        Flags {
            syntax,
            ..Flags::default()
        }
    }

    fn matcher(patterns: &[&str], flags: Flags) -> Matcher {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        Matcher::new(&patterns, flags).unwrap()
    }

    fn found(m: &Matcher, text: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((s, e)) = m.find_line(text, pos) {
            out.push(String::from_utf8_lossy(&text[s..e]).into_owned());
            pos = e + 1;
        }
        out
    }

    fn lines(patterns: &[&str], flags: Flags, text: &[u8]) -> Vec<String> {
        found(&matcher(patterns, flags), text)
    }

    /// What `-o` would print for `line`.
    fn only(patterns: &[&str], flags: Flags, line: &[u8]) -> Vec<String> {
        let mut got = Vec::new();
        matcher(patterns, flags)
            .matches(line, |r| {
                got.push(String::from_utf8_lossy(&line[r]).into_owned());
                Ok(())
            })
            .unwrap();
        got
    }

    #[test]
    fn a_match_never_crosses_a_newline() {
        let ere = flags(Syntax::Extended);
        assert_eq!(lines(&["a[^x]*b"], ere, b"ax\nyb\nab\n"), ["ab"]);
        assert_eq!(lines(&[r"a\sb"], ere, b"a\nb\na b\n"), ["a b"]);
        assert!(lines(&["x\ny"], ere, b"x\ny\n").is_empty());
        // The BRE translation leaves the newline out of negated classes, so its matches stay
        // within lines and the forward-only search applies.
        let m = matcher(&["a[^x]*b"], Flags::default());
        assert!(m.within_lines);
        assert_eq!(found(&m, b"ax\nyb\nab\n"), ["ab"]);
        assert!(!matcher(&["a[^x]*b"], ere).within_lines);
    }

    #[test]
    fn empty_matches_find_their_own_line() {
        let bre = Flags::default();
        assert_eq!(lines(&["^$"], bre, b"a\n\nb\n"), [""]);
        assert_eq!(lines(&["x*"], bre, b"a\nb"), ["a", "b"]);
        assert_eq!(lines(&["$"], bre, b"a\n\n"), ["a", ""]);
        assert!(lines(&["^$"], bre, b"a\n").is_empty());
    }

    #[test]
    fn several_patterns_syntaxes_words_and_lines() {
        let text = b"a.c\nabc\nfoo bar\nfoobar\na+c\n";
        let f = Flags::default();
        assert_eq!(lines(&["a.c"], f, text), ["a.c", "abc", "a+c"]);
        assert_eq!(lines(&["a+c"], f, text), ["a+c"]);
        // `+` repeats in -E, and `\+` in a BRE: no line has `ac`.
        assert!(lines(&["a+c"], flags(Syntax::Extended), text).is_empty());
        assert!(lines(&[r"a\+c"], f, text).is_empty());
        let fixed = flags(Syntax::Fixed);
        assert_eq!(lines(&["a.c"], fixed, text), ["a.c"]);
        assert_eq!(
            lines(&["bar", "a.c"], fixed, text),
            ["a.c", "foo bar", "foobar"]
        );
        let word = Flags { word: true, ..f };
        assert_eq!(lines(&["foo"], word, text), ["foo bar"]);
        assert_eq!(lines(&[r"foo\|foobar"], word, text), ["foo bar", "foobar"]);
        let line = Flags { line: true, ..f };
        assert_eq!(
            lines(&["foo.*", "abc"], line, text),
            ["abc", "foo bar", "foobar"]
        );
        assert!(lines(&[], f, text).is_empty());
    }

    #[test]
    fn only_matching_is_leftmost_longest_like_gnu_grep() {
        let f = Flags::default();
        assert_eq!(only(&[r"a\|ab"], f, b"xab ab"), ["ab", "ab"]);
        assert_eq!(only(&["a", "abc"], f, b"abcd"), ["abc"]);
        assert_eq!(only(&["x*"], f, b"axxbx"), ["xx", "x"]);
        let ere = flags(Syntax::Extended);
        assert_eq!(only(&["(a|ab)(c|bcd)"], ere, b"abcd"), ["abcd"]);
    }

    #[test]
    fn only_matching_with_words_takes_the_longest_whole_word() {
        let word = Flags {
            word: true,
            ..Flags::default()
        };
        assert_eq!(
            only(&["foo"], word, b"foo foo,foox foo"),
            ["foo", "foo", "foo"]
        );
        // `foobar` is a word, `foob` is not: GNU grep tries the longest match first.
        assert_eq!(only(&[r"foo\|foob\|foobar"], word, b"foobar"), ["foobar"]);
        assert_eq!(only(&[r"foo\|foobar"], word, b"foobarx foo"), ["foo"]);
        // `foob` at 0 is no word, but the shorter `foo` would not be either: next start.
        assert_eq!(only(&[r"foo\|foob"], word, b"foobx foo"), ["foo"]);
    }

    #[test]
    fn a_rare_inner_literal_is_searched_for_and_lines_checked() {
        let mut text = Vec::new();
        for i in 0..400 {
            let ext = if i % 10 == 3 { "md" } else { "txt" };
            text.extend_from_slice(format!("-rw-r--r-- file_{i}.{ext}\n").as_bytes());
        }
        text.extend_from_slice(b"-rw-r--r-- not.md.txt\n-rw x.md\n");
        let ere = flags(Syntax::Extended);
        let pattern = [r"^-rw.*file_[0-9]+\.md$"];
        let plain = matcher(&pattern, ere);
        let mut tuned = matcher(&pattern, ere);
        assert_eq!(
            tuned.required,
            [b"-rw".to_vec(), b"file_".to_vec(), b".md".to_vec()]
        );
        assert!(tuned.leading);
        tuned.tune(&text);
        assert!(tuned.rare.is_some(), ".md is on 1 line in 10");
        // Before `.md` comes `^-rw.*`, which only the line's start ends: the regex checks.
        assert!(tuned.inner.is_none());
        assert_eq!(found(&tuned, &text).len(), 40);
        assert_eq!(found(&tuned, &text), found(&plain, &text));
        // A whole literal is looked for as it is, no regex involved.
        let exact = matcher(&["file_3"], Flags::default());
        assert!(exact.exact && exact.rare.is_some());
        assert!(matcher(&["a.c"], flags(Syntax::Fixed)).exact);
        let i = Flags {
            ignore_case: true,
            ..Flags::default()
        };
        assert!(!matcher(&["abc"], i).exact);
        // A leading literal is left to the regex engine, which looks for it itself.
        let mut lead = matcher(&["file_3[0-9]"], Flags::default());
        lead.tune(&text);
        assert!(lead.rare.is_none());
    }

    #[test]
    fn a_rare_literal_with_short_sides_is_checked_around() {
        let mut text = Vec::new();
        for i in 0..400 {
            let t = if i % 6 == 0 {
                format!("1{}:5{}", i % 10, i % 7)
            } else {
                "12:34".into()
            };
            text.extend_from_slice(format!("-rw {t} file_{i:03}4\n").as_bytes());
        }
        let pattern = [r"[0-9]\{2\}:5[0-9] file_[0-9]\{3\}4"];
        let plain = matcher(&pattern, Flags::default());
        let mut tuned = matcher(&pattern, Flags::default());
        tuned.tune(&text);
        assert!(tuned.rare.is_some() && tuned.inner.is_some());
        assert_eq!(found(&tuned, &text), found(&plain, &text));
        assert_eq!(found(&tuned, &text).len(), 67);
    }

    #[test]
    fn a_common_inner_literal_is_searched_for_when_lines_can_be_checked_around_it() {
        let mut text = Vec::new();
        for i in 0..400 {
            let who = if i % 7 == 0 { "bob" } else { "alice" };
            let n = if i % 5 == 0 { "x" } else { "3" };
            text.extend_from_slice(format!("-rw {n} {who}  staff {i}\n").as_bytes());
        }
        // ` alice` is on most lines, after a class and before a repetition.
        let pattern = [r"[0-9] alice *[a-z]\+"];
        let plain = matcher(&pattern, Flags::default());
        let mut tuned = matcher(&pattern, Flags::default());
        tuned.tune(&text);
        assert!(tuned.rare.is_some() && tuned.inner.is_some());
        let want = found(&plain, &text);
        assert_eq!(found(&tuned, &text), want);
        assert_eq!(
            want.len(),
            (0..400).filter(|i| i % 7 != 0 && i % 5 != 0).count()
        );
        // Without a concatenation around it (an alternation), the regex is left to search.
        let mut alt = matcher(&[r" alice [a-z]\+\|zzz alice"], Flags::default());
        alt.tune(&text);
        assert!(alt.rare.is_none());
    }

    #[test]
    fn bad_patterns_are_one_line_naming_the_pattern() {
        let e = |p: &str, syntax| {
            Matcher::new(&["ok".into(), p.into()], flags(syntax))
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(e("a(", Syntax::Extended), "bad regex 'a(': unclosed group");
        assert_eq!(
            e(r"a\(", Syntax::Basic),
            r"bad regex 'a\(': Unmatched ( or \("
        );
        assert_eq!(
            e(r"\(x\)\1", Syntax::Basic),
            r"bad regex '\(x\)\1': \1: back-references are not supported (the regex crate has none)"
        );
        // In a BRE, `a(` is two ordinary characters.
        assert!(Matcher::new(&["a(".into()], Flags::default()).is_ok());
    }
}
