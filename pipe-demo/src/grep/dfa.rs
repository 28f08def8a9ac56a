//! Anchored searches that the `regex` crate's API does not offer: backwards from a point, and
//! "the longest match starting here". Both use the lazy DFA that `regex` itself runs on
//! (`regex_automata::hybrid`), built from the same syntax tree as the pattern.
//!
//! The search of one line is single-threaded, so each DFA keeps its cache in a `RefCell`.
//! Look-around at a span's edges (`\<`, `$`) sees the bytes beyond the span, so it means
//! what it means in the whole line. A lazy DFA may give up on a pathological pattern (its
//! cache thrashing); then these return None and the caller falls back to the regex.

use std::cell::RefCell;
use std::ops::Range;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::Hir;

/// A lazy DFA for one pattern, searching forwards or backwards.
pub struct Dfa {
    dfa: DFA,
    cache: RefCell<Cache>,
    reverse: bool,
}

impl Dfa {
    /// A DFA for `hir`, reading backwards if `reverse`. It reports every match it passes
    /// (`MatchKind::All`), so a search can stop at the first or go on to the longest.
    pub fn new(hir: &Hir, reverse: bool) -> Option<Dfa> {
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .reverse(reverse)
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_from_hir(hir)
            .ok()?;
        // A pattern too big for the cache builds anyway; its searches may give up.
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .skip_cache_capacity_check(true),
            )
            .build_from_nfa(nfa)
            .ok()?;
        let cache = RefCell::new(dfa.create_cache());
        Some(Dfa {
            dfa,
            cache,
            reverse,
        })
    }

    /// Does a match lie in `line[span]` that starts at `span.start` (forwards) or ends at
    /// `span.end` (backwards)? Stops at the first match state.
    #[inline]
    pub fn anchored_match(&self, line: &[u8], span: Range<usize>) -> Option<bool> {
        let input = Input::new(line)
            .range(span)
            .anchored(Anchored::Yes)
            .earliest(true);
        let mut cache = self.cache.borrow_mut();
        let found = if self.reverse {
            self.dfa.try_search_rev(&mut cache, &input)
        } else {
            self.dfa.try_search_fwd(&mut cache, &input)
        };
        found.ok().map(|m| m.is_some())
    }

    /// The end of the longest match in `line[span]` that starts at `span.start` (a forward
    /// DFA), or Some(None) if there is none.
    pub fn longest(&self, line: &[u8], span: Range<usize>) -> Option<Option<usize>> {
        debug_assert!(!self.reverse);
        let input = Input::new(line).range(span).anchored(Anchored::Yes);
        let mut cache = self.cache.borrow_mut();
        let found = self.dfa.try_search_fwd(&mut cache, &input).ok()?;
        Some(found.map(|m| m.offset()))
    }
}
