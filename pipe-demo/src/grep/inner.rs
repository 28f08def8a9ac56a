//! Checking a line around the literal that every match contains, instead of running the whole
//! regex over the line.
//!
//! A pattern like `[0-9] alice +[a-z]+` is a concatenation `P L S` around a literal `L`
//! (` alice`). Once `memmem` has found `L` at `at` in a line, the line matches if, for some
//! such `at`, `P` matches a piece of the line that ends at `at` and `S` a piece that starts
//! where `L` ends. Both are anchored searches that stop at the first match state: `P` runs
//! backwards from `at` (a reverse DFA), `S` forwards from `at + |L|`. They read a few bytes on
//! each side of the literal, where the regex would scan the line from its start and then scan
//! back to find where the match began; on lines that all hold the literal, that is most of
//! the time the search takes. This is how GNU grep (its "must" string) and the regex crate's
//! own reverse-inner strategy work; the crate picks that strategy only for some patterns.
//!
//! The two sides are lazy DFAs ([`Dfa`]) built from the same syntax tree as the regex.
//! Look-around at the edges (`\<` before the literal, `$` after `S`) sees the bytes beyond
//! the searched span, so it means what it means in the whole regex.

use regex_syntax::hir::{Hir, HirKind, Look};

use super::dfa::Dfa;

/// The verifier for one literal of one regex.
pub struct Inner {
    /// The literal's length.
    len: usize,
    /// `P`, read backwards; None when nothing comes before the literal.
    before: Option<Dfa>,
    /// `S`; None when nothing comes after it.
    after: Option<Dfa>,
}

impl Inner {
    /// A verifier for `hir` around `lit`, if `lit` is one of the pieces `hir` is a
    /// concatenation of (groups are looked through: they change what is captured, not what
    /// matches), its two sides compile, and it pays.
    ///
    /// It does not pay for a side that is anchored at the line's far edge and may be any
    /// length (`^-rw.*file_` before `.md`): that side's search can only end at the edge, so it
    /// reads as much of the line as the regex would, and the reverse DFA reads it more slowly
    /// than the regex's forward one.
    pub fn new(hir: &Hir, lit: &[u8]) -> Option<Inner> {
        let mut pieces = Vec::new();
        flatten(hir, &mut pieces);
        let k = pieces
            .iter()
            .position(|h| matches!(h.kind(), HirKind::Literal(l) if &*l.0 == lit))?;
        let side = |range: &[&Hir], reverse: bool| -> Option<Option<Dfa>> {
            if range.is_empty() {
                return Some(None);
            }
            let hir = Hir::concat(range.iter().map(|&h| h.clone()).collect());
            let edge = if reverse { range.first() } else { range.last() };
            let anchored = edge.is_some_and(|h| match h.kind() {
                HirKind::Look(look) => matches!(
                    look,
                    Look::Start
                        | Look::StartLF
                        | Look::StartCRLF
                        | Look::End
                        | Look::EndLF
                        | Look::EndCRLF
                ),
                _ => false,
            });
            if anchored && hir.properties().maximum_len().is_none() {
                return None;
            }
            Dfa::new(&hir, reverse).map(Some)
        };
        Some(Inner {
            len: lit.len(),
            before: side(&pieces[..k], true)?,
            after: side(&pieces[k + 1..], false)?,
        })
    }

    /// Does `line` (one line, without its newline) have a match whose literal is the one at
    /// `at`? None if a DFA gave up (then the caller asks the regex).
    #[inline]
    pub fn matches_at(&self, line: &[u8], at: usize) -> Option<bool> {
        if let Some(before) = &self.before {
            if !before.anchored_match(line, 0..at)? {
                return Some(false);
            }
        }
        match &self.after {
            Some(after) => after.anchored_match(line, at + self.len..line.len()),
            None => Some(true),
        }
    }
}

/// The pieces `hir` is a concatenation of, with groups looked through.
fn flatten<'h>(hir: &'h Hir, out: &mut Vec<&'h Hir>) {
    match hir.kind() {
        HirKind::Concat(subs) => subs.iter().for_each(|s| flatten(s, out)),
        HirKind::Capture(c) => flatten(&c.sub, out),
        _ => out.push(hir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hir(re: &str) -> Hir {
        regex_syntax::ParserBuilder::new()
            .utf8(false)
            .unicode(false)
            .multi_line(true)
            .build()
            .parse(re)
            .unwrap()
    }

    /// The verdict for every occurrence of `lit` in `line`.
    fn verdicts(re: &str, lit: &str, line: &str) -> Vec<bool> {
        let inner = Inner::new(&hir(re), lit.as_bytes()).unwrap();
        line.match_indices(lit)
            .map(|(at, _)| inner.matches_at(line.as_bytes(), at).unwrap())
            .collect()
    }

    #[test]
    fn both_sides_are_checked_around_each_occurrence() {
        let re = "[0-9] alice +[a-z]+";
        assert_eq!(verdicts(re, " alice", "-rw 3 alice  staff"), [true]);
        assert_eq!(verdicts(re, " alice", "-rw x alice  staff"), [false]);
        assert_eq!(verdicts(re, " alice", "-rw 3 alice  9"), [false]);
        assert_eq!(verdicts(re, " alice", "x alice b 3 alice c"), [false, true]);
    }

    #[test]
    fn look_around_sees_past_the_searched_span() {
        // `\b` before the literal needs the literal's first byte; `$` the line's end.
        assert_eq!(verdicts(r"x\bab$", "ab", "xab"), [false]);
        assert_eq!(verdicts(r"x \bab$", "ab", "x ab"), [true]);
        assert_eq!(verdicts(r"x \bab$", "ab", "x abc"), [false]);
        assert_eq!(verdicts(r"^\d{1,4}ab", "ab", "12ab"), [true]);
        assert_eq!(verdicts(r"^\d{1,4}ab", "ab", " 12ab"), [false]);
    }

    #[test]
    fn groups_are_looked_through_and_nested_literals_are_not_pieces() {
        assert_eq!(
            verdicts(r"(?:^|\W)(a+ key=[0-9])", " key=", "aa key=1"),
            [true]
        );
        assert!(Inner::new(&hir("(?:key)+x"), b"key").is_none());
        assert!(Inner::new(&hir("key|x"), b"key").is_none());
        // A side that must read up to the line's edge is left to the regex.
        assert!(Inner::new(&hir(r"^-rw.*file_[0-9]+\.md$"), b".md").is_none());
        assert!(Inner::new(&hir(r"^-rw [0-9]{1,4}\.md$"), b"-rw ").is_some());
        assert!(Inner::new(&hir(r"x.md [0-9]*$"), b".md").is_none());
        // The literal alone: nothing to check on either side.
        assert_eq!(verdicts("key", "key", "a key"), [true]);
    }
}
