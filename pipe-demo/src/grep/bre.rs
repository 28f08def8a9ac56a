//! GNU grep's basic regular expressions (`grep PATTERN`, `grep -G`), translated into the
//! regex crate's syntax, so that `pipe-demo grep 'fo\+'` means what `grep 'fo\+'` means.
//!
//! The rules are those of GNU grep 3.8 in the C locale (`LC_ALL=C grep -G`), which extends
//! POSIX's BRE:
//!
//! - `\(` `\)` group, `\|` separates alternatives, `*` `\+` `\?` `\{m,n\}` (also `\{m\}`,
//!   `\{m,\}`, `\{,n\}`) repeat; `(`, `)`, `|`, `+`, `?`, `{` and `}` alone are ordinary
//!   characters.
//! - A repetition operator where nothing precedes it but zero-width tokens (at the start of
//!   the pattern, of a group or of an alternative, after `^` or `\<`) is an ordinary character:
//!   `*a` matches `*a`, `\(*\)` matches `*`, `\{1\}a` matches `{1}a`.
//! - `^` is an anchor only first in the pattern, a group or an alternative, `$` only last;
//!   elsewhere they are ordinary characters (`a^b`, `a$b`).
//! - `\<` `\>` (word start, word end), `\b` `\B`, `\w` `\W`, `\s` `\S`, `` \` `` and `\'`
//!   (here the line's start and end). Any other escaped character is that character (`\.`,
//!   `\d` is `d`, as GNU grep treats it).
//! - Bracket expressions: ranges by byte value, `]` first is literal, `\` is literal inside,
//!   the POSIX classes `[:alpha:]`…`[:xdigit:]`, and one-byte collating symbols `[.-.]` and
//!   equivalence classes `[=a=]`. `[:space:]` without the outer brackets is an error, as in
//!   GNU grep.
//! - The pattern is bytes: a byte above 0x7f is one character (the C locale), not part of a
//!   UTF-8 sequence.
//!
//! Back-references (`\1`…`\9`) are the one construct the regex crate cannot express (it runs
//! in linear time, which a back-reference rules out): they are refused with an error that
//! names them, never translated into something that matches differently. Malformed patterns
//! get GNU grep's own messages (`Unmatched ( or \(`, `Invalid range end`…).
//!
//! No translated class ever matches a newline (a negated class leaves it out), so a match
//! never runs from one line into the next, as in grep, which matches line by line.

use std::fmt::Write;

/// The largest count an interval may give (POSIX's RE_DUP_MAX in glibc).
const DUP_MAX: u32 = 0x7fff;

/// `Unmatched [ …`: a bracket expression with no end.
const UNMATCHED_BRACKET: &str = "Unmatched [, [^, [:, [., or [=";
/// A range that ends below its start, or at a class.
const BAD_RANGE: &str = "Invalid range end";

/// Translate one BRE `pattern` into the regex crate's syntax (to be compiled with Unicode off
/// and multi-line on, as `pattern.rs` does), or say why it cannot be, in GNU grep's words.
pub fn translate(pattern: &str) -> Result<String, String> {
    let mut t = Translator {
        p: pattern.as_bytes(),
        i: 0,
        out: String::with_capacity(pattern.len() * 2),
        at_start: true,
        after_open: true,
        atom: 0,
        repeated: false,
        zero_width: false,
        groups: Vec::new(),
        closed: 0,
    };
    t.run()?;
    Ok(t.out)
}

struct Translator<'p> {
    p: &'p [u8],
    /// The next byte of `p` to read.
    i: usize,
    out: String,
    /// Nothing but zero-width tokens since the start of the pattern, of a group or of an
    /// alternative: a repetition operator here is an ordinary character.
    at_start: bool,
    /// The previous token was the start of the pattern, `\(` or `\|`: `^` here is an anchor.
    after_open: bool,
    /// Where in `out` the last atom (what a repetition applies to) begins.
    atom: usize,
    /// That atom already carries a repetition (`a*` repeated again needs a group).
    repeated: bool,
    /// That atom is an assertion (`\<`), which the regex crate repeats only inside a group.
    zero_width: bool,
    /// Where in `out` each open group begins.
    groups: Vec<usize>,
    /// The number of groups closed so far (what a back-reference may refer to).
    closed: usize,
}

impl Translator<'_> {
    fn run(&mut self) -> Result<(), String> {
        while let Some(&c) = self.p.get(self.i) {
            self.i += 1;
            let after_open = std::mem::replace(&mut self.after_open, false);
            match c {
                b'\\' => self.escape()?,
                b'[' => self.bracket()?,
                b'*' if !self.at_start => self.repeat("*"),
                b'^' if after_open => self.assertion("^"),
                b'$' if self.at_end() => self.assertion("$"),
                b'.' => self.atom_str("."),
                _ => self.literal(c),
            }
        }
        if !self.groups.is_empty() {
            return Err("Unmatched ( or \\(".into());
        }
        Ok(())
    }

    /// After a `\`.
    fn escape(&mut self) -> Result<(), String> {
        let Some(&c) = self.p.get(self.i) else {
            return Err("Trailing backslash".into());
        };
        self.i += 1;
        match c {
            b'(' => {
                self.groups.push(self.out.len());
                self.out.push_str("(?:");
                self.at_start = true;
                self.after_open = true;
            }
            b')' => {
                let start = self
                    .groups
                    .pop()
                    .ok_or_else(|| "Unmatched ) or \\)".to_owned())?;
                self.out.push(')');
                self.closed += 1;
                self.set_atom(start, false);
            }
            b'|' => {
                self.out.push('|');
                self.at_start = true;
                self.after_open = true;
            }
            b'{' if !self.at_start => self.interval()?,
            b'+' if !self.at_start => self.repeat("+"),
            b'?' if !self.at_start => self.repeat("?"),
            b'1'..=b'9' => {
                let n = usize::from(c - b'0');
                return Err(if n <= self.closed {
                    format!("\\{n}: back-references are not supported (the regex crate has none)")
                } else {
                    "Invalid back reference".into()
                });
            }
            b'<' => self.assertion(r"\<"),
            b'>' => self.assertion(r"\>"),
            b'b' => self.assertion(r"\b"),
            b'B' => self.assertion(r"\B"),
            // The buffer's edges are the line's: grep matches one line at a time.
            b'`' => self.assertion("^"),
            b'\'' => self.assertion("$"),
            b'w' => self.atom_str("[0-9A-Za-z_]"),
            b'W' => self.atom_str(r"[^0-9A-Za-z_\n]"),
            b's' => self.atom_str(r"[\t\x0B\x0C\r ]"),
            b'S' => self.atom_str(r"[^\t\n\x0B\x0C\r ]"),
            _ => self.literal(c),
        }
        Ok(())
    }

    /// True if a `$` just read is last in the pattern, a group or an alternative.
    fn at_end(&self) -> bool {
        let rest = &self.p[self.i..];
        rest.is_empty() || rest.starts_with(b"\\)") || rest.starts_with(b"\\|")
    }

    /// Note that `out[start..]` is the last atom.
    fn set_atom(&mut self, start: usize, zero_width: bool) {
        self.atom = start;
        self.repeated = false;
        self.zero_width = zero_width;
        if !zero_width {
            self.at_start = false;
        }
    }

    fn atom_str(&mut self, s: &str) {
        self.set_atom(self.out.len(), false);
        self.out.push_str(s);
    }

    fn assertion(&mut self, s: &str) {
        self.set_atom(self.out.len(), true);
        self.out.push_str(s);
    }

    fn literal(&mut self, c: u8) {
        self.set_atom(self.out.len(), false);
        push_byte(&mut self.out, c, false);
    }

    /// Apply `op` to the last atom (never at the start: the callers check).
    fn repeat(&mut self, op: &str) {
        // `a*` then `\?` must not read as the lazy `a*?`, and `\<*` needs a group for the
        // regex crate: group the atom first.
        if self.repeated || self.zero_width {
            self.out.insert_str(self.atom, "(?:");
            self.out.push(')');
            self.zero_width = false;
        }
        self.out.push_str(op);
        self.repeated = true;
    }

    /// After `\{` that follows an atom: `m\}`, `m,\}`, `,n\}`, `m,n\}` or `,\}`.
    fn interval(&mut self) -> Result<(), String> {
        let rest = &self.p[self.i..];
        let len = rest
            .windows(2)
            .position(|w| w == b"\\}")
            .ok_or_else(|| "Unmatched \\{".to_owned())?;
        let body = &rest[..len];
        self.i += len + 2;
        let invalid = || "Invalid content of \\{\\}".to_owned();
        let number = |digits: &[u8]| -> Result<Option<u32>, String> {
            if digits.is_empty() {
                return Ok(None);
            }
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(invalid());
            }
            // Saturate just past the limit: the size is checked below, after the order.
            Ok(Some(digits.iter().fold(0u32, |n, d| {
                (n * 10 + u32::from(d - b'0')).min(DUP_MAX + 1)
            })))
        };
        let (min, max) = match body.iter().position(|&c| c == b',') {
            None => {
                let n = number(body)?.ok_or_else(invalid)?;
                (n, Some(n))
            }
            Some(comma) => (
                number(&body[..comma])?.unwrap_or(0),
                number(&body[comma + 1..])?,
            ),
        };
        if max.is_some_and(|max| max < min) {
            return Err(invalid());
        }
        if min.max(max.unwrap_or(0)) > DUP_MAX {
            return Err("Regular expression too big".into());
        }
        let op = match max {
            Some(max) if max == min => format!("{{{min}}}"),
            Some(max) => format!("{{{min},{max}}}"),
            None => format!("{{{min},}}"),
        };
        self.repeat(&op);
        Ok(())
    }

    /// After `[`: a bracket expression, emitted as a class of bytes.
    fn bracket(&mut self) -> Result<(), String> {
        let negated = self.p.get(self.i) == Some(&b'^');
        if negated {
            self.i += 1;
        }
        let mut set = ByteSet::default();
        // GNU grep refuses `[:alpha:]`, a class missing its outer brackets: a plain list of
        // bytes that starts and ends with `:` and holds something else.
        let (mut plain, mut colon_edges, mut other) = (true, false, false);
        let mut first = true;
        loop {
            let Some(&c) = self.p.get(self.i) else {
                return Err(UNMATCHED_BRACKET.into());
            };
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            if first {
                colon_edges = c == b':';
            }
            first = false;
            match self.bracket_item()? {
                Item::Byte(lo) => {
                    if self.range_follows() {
                        self.i += 1;
                        let Item::Byte(hi) = self.bracket_item()? else {
                            return Err(BAD_RANGE.into());
                        };
                        if hi < lo || self.range_follows() {
                            return Err(BAD_RANGE.into());
                        }
                        set.insert_range(lo, hi);
                        plain = false;
                    } else {
                        set.insert(lo);
                        other |= lo != b':';
                        // Only the last byte's colon counts for the edge test.
                        if self.p.get(self.i) == Some(&b']') {
                            colon_edges &= lo == b':';
                        }
                    }
                }
                Item::Set(s) => {
                    if self.range_follows() {
                        return Err(BAD_RANGE.into());
                    }
                    set.union(&s);
                    plain = false;
                }
            }
        }
        if plain && colon_edges && other {
            return Err("character class syntax is [[:space:]], not [:space:]".into());
        }
        self.set_atom(self.out.len(), false);
        // A negated class is written as such (`[^a]`), not as the bytes it leaves, so that
        // -i folds the bytes it names before negating: `-i '[^a]'` excludes `A` too.
        if negated {
            set.insert(b'\n');
        } else {
            set.remove(b'\n');
        }
        if set.is_empty() {
            // Only possible for a list of nothing but newlines, which no line holds.
            self.out.push_str(r"[^\x00-\xFF]");
            return Ok(());
        }
        self.out.push('[');
        if negated {
            self.out.push('^');
        }
        for (lo, hi) in set.ranges() {
            push_byte(&mut self.out, lo, true);
            if hi > lo {
                self.out.push('-');
                push_byte(&mut self.out, hi, true);
            }
        }
        self.out.push(']');
        Ok(())
    }

    /// True if the next bytes make a range: `-` followed by something other than `]`.
    fn range_follows(&self) -> bool {
        self.p.get(self.i) == Some(&b'-') && !matches!(self.p.get(self.i + 1), Some(b']') | None)
    }

    /// One item of a bracket expression: a byte, `[.c.]`, `[=c=]` or `[:class:]`.
    fn bracket_item(&mut self) -> Result<Item, String> {
        let p = &self.p[self.i..];
        let Some(&c) = p.first() else {
            return Err(UNMATCHED_BRACKET.into());
        };
        let delim = match p.get(1) {
            Some(&d @ (b':' | b'.' | b'=')) if c == b'[' => d,
            _ => {
                self.i += 1;
                return Ok(Item::Byte(c));
            }
        };
        let body = &p[2..];
        let len = body
            .windows(2)
            .position(|w| w == [delim, b']'])
            .ok_or_else(|| UNMATCHED_BRACKET.to_owned())?;
        let name = &body[..len];
        self.i += 2 + len + 2;
        match (delim, name) {
            (b':', _) => class(name)
                .map(Item::Set)
                .ok_or_else(|| "Invalid character class name".into()),
            // In the C locale a collating element is one byte; an equivalence class is the
            // byte itself, and cannot end a range.
            (b'.', &[c]) => Ok(Item::Byte(c)),
            (b'=', &[c]) => {
                let mut s = ByteSet::default();
                s.insert(c);
                Ok(Item::Set(s))
            }
            _ => Err("Invalid collation character".into()),
        }
    }
}

/// An item of a bracket expression.
enum Item {
    /// A byte, which may start or end a range.
    Byte(u8),
    /// A class or an equivalence class, which may not.
    Set(ByteSet),
}

/// The POSIX class `name` in the C locale.
fn class(name: &[u8]) -> Option<ByteSet> {
    let test: fn(&u8) -> bool = match name {
        b"alpha" => u8::is_ascii_alphabetic,
        b"upper" => u8::is_ascii_uppercase,
        b"lower" => u8::is_ascii_lowercase,
        b"digit" => u8::is_ascii_digit,
        b"xdigit" => u8::is_ascii_hexdigit,
        b"alnum" => u8::is_ascii_alphanumeric,
        b"punct" => u8::is_ascii_punctuation,
        b"graph" => u8::is_ascii_graphic,
        b"print" => |c| c.is_ascii_graphic() || *c == b' ',
        b"cntrl" => u8::is_ascii_control,
        // isspace in C: space, \t \n \v \f \r (Rust's is_ascii_whitespace leaves out \v).
        b"space" => |c| matches!(c, b' ' | b'\t'..=b'\r'),
        b"blank" => |c| matches!(c, b' ' | b'\t'),
        _ => return None,
    };
    let mut s = ByteSet::default();
    for c in 0..=255u8 {
        if test(&c) {
            s.insert(c);
        }
    }
    Some(s)
}

/// A set of bytes.
#[derive(Clone, Copy, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, c: u8) {
        self.0[usize::from(c >> 6)] |= 1 << (c & 63);
    }

    fn remove(&mut self, c: u8) {
        self.0[usize::from(c >> 6)] &= !(1 << (c & 63));
    }

    fn contains(&self, c: u8) -> bool {
        self.0[usize::from(c >> 6)] & (1 << (c & 63)) != 0
    }

    fn insert_range(&mut self, lo: u8, hi: u8) {
        for c in lo..=hi {
            self.insert(c);
        }
    }

    fn union(&mut self, other: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// The set as maximal runs `(first, last)`, in order.
    fn ranges(&self) -> Vec<(u8, u8)> {
        let mut out: Vec<(u8, u8)> = Vec::new();
        for c in 0..=255u8 {
            if !self.contains(c) {
                continue;
            }
            match out.last_mut() {
                Some((_, hi)) if u16::from(*hi) + 1 == u16::from(c) => *hi = c,
                _ => out.push((c, c)),
            }
        }
        out
    }
}

/// Write byte `c` so that the regex crate reads it as that byte, in a class or outside one.
fn push_byte(out: &mut String, c: u8, in_class: bool) {
    let escape = if in_class {
        matches!(c, b'[' | b']' | b'\\' | b'^' | b'-' | b'&' | b'~')
    } else {
        regex_syntax::is_meta_character(char::from(c))
    };
    if c.is_ascii_alphanumeric() || (c.is_ascii_graphic() && !escape) || c == b' ' {
        out.push(char::from(c));
    } else if escape {
        out.push('\\');
        out.push(char::from(c));
    } else {
        // Control bytes and, with Unicode off, any byte above 0x7f.
        let _ = write!(out, "\\x{c:02X}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(bre: &str) -> String {
        translate(bre).unwrap_or_else(|e| panic!("{bre:?}: {e}"))
    }

    #[test]
    fn operators_and_ordinary_characters() {
        assert_eq!(ok(r"fo\+"), "fo+");
        assert_eq!(ok(r"a\|b"), "a|b");
        assert_eq!(ok(r"\(ab\)*c\?"), "(?:ab)*c?");
        assert_eq!(
            ok(r"a\{2,3\}b\{2\}c\{1,\}d\{,4\}e\{,\}"),
            "a{2,3}b{2}c{1,}d{0,4}e{0,}"
        );
        assert_eq!(ok("a+b?c{1}(x)|y"), r"a\+b\?c\{1\}\(x\)\|y");
        assert_eq!(ok(r"\.\*\[\]\^\$\\"), r"\.\*\[\]\^\$\\");
        assert_eq!(ok(r"\d\n\/"), "dn/");
        assert_eq!(ok("#&~- "), r"\#\&\~\- ");
    }

    #[test]
    fn a_repetition_with_nothing_before_it_is_a_character() {
        assert_eq!(ok("*a"), r"\*a");
        assert_eq!(ok(r"\(*a\)"), r"(?:\*a)");
        assert_eq!(ok(r"a\|*b"), r"a|\*b");
        assert_eq!(ok("^*a"), r"^\*a");
        assert_eq!(ok(r"\<*a"), r"\<\*a");
        assert_eq!(ok(r"\+a\?"), r"\+a?");
        assert_eq!(ok(r"\{1\}a"), r"\{1\}a");
        assert_eq!(ok("**"), r"\**");
    }

    #[test]
    fn a_repeated_repetition_is_grouped() {
        assert_eq!(ok("a**"), "(?:a*)*");
        assert_eq!(ok(r"a*\?"), "(?:a*)?");
        assert_eq!(ok(r"a\{1\}*"), "(?:a{1})*");
        assert_eq!(ok(r"a\<*b"), r"a(?:\<)*b");
        assert_eq!(ok(r"\(a\)\{2\}"), "(?:a){2}");
    }

    #[test]
    fn anchors_only_at_the_edges() {
        assert_eq!(ok("^a$"), "^a$");
        assert_eq!(ok("a^b$c"), r"a\^b\$c");
        assert_eq!(ok("^^a$$"), r"^\^a\$$");
        assert_eq!(ok(r"\(^a$\)\|^b$"), "(?:^a$)|^b$");
        assert_eq!(ok("$a"), r"\$a");
        assert_eq!(ok(r"\`a\'"), "^a$");
        assert_eq!(ok(r"\<a\>\bb\B"), r"\<a\>\bb\B");
    }

    #[test]
    fn brackets_become_byte_classes() {
        assert_eq!(ok("[abc]"), "[a-c]");
        assert_eq!(ok("[]a]"), r"[\]a]");
        assert_eq!(ok("[^]a]"), r"[^\x0A\]a]");
        assert_eq!(ok(r"[a\]"), r"[\\a]");
        assert_eq!(ok("[a-]"), r"[\-a]");
        assert_eq!(ok("[%--]"), r"[%-\-]");
        assert_eq!(ok("[[:digit:]x]"), "[0-9x]");
        assert_eq!(ok("[[:space:]]"), r"[\x09\x0B-\x0D ]");
        assert_eq!(ok("[^[:alnum:]_]"), r"[^\x0A0-9A-Z_a-z]");
        assert_eq!(ok("[[.-.][=a=]]"), r"[\-a]");
        assert_eq!(ok("[[.a.]-c]"), "[a-c]");
        assert_eq!(ok("[a[]"), r"[\[a]");
        assert_eq!(ok("[::]"), "[:]");
        assert_eq!(ok("[:a-z:]"), "[:a-z]");
        assert_eq!(ok("[\u{e9}]"), r"[\xA9\xC3]");
        assert_eq!(ok("\u{e9}*"), r"\xC3\xA9*");
    }

    #[test]
    fn errors_are_gnu_greps() {
        for (bad, why) in [
            ("a\\", "Trailing backslash"),
            (r"\(a", "Unmatched ( or \\("),
            (r"a\)", "Unmatched ) or \\)"),
            ("[a", UNMATCHED_BRACKET),
            ("[]", UNMATCHED_BRACKET),
            ("[[:alpha:]", UNMATCHED_BRACKET),
            ("[[.]]", UNMATCHED_BRACKET),
            ("[[:foo:]]", "Invalid character class name"),
            ("[[.ab.]]", "Invalid collation character"),
            ("[b-a]", BAD_RANGE),
            ("[a-c-e]", BAD_RANGE),
            ("[[:alpha:]-z]", BAD_RANGE),
            ("[[=a=]-c]", BAD_RANGE),
            (
                "[:space:]",
                "character class syntax is [[:space:]], not [:space:]",
            ),
            (
                "[^:a:]",
                "character class syntax is [[:space:]], not [:space:]",
            ),
            (r"a\{1", "Unmatched \\{"),
            (r"a\{1,2", "Unmatched \\{"),
            (r"a\{2,1\}", "Invalid content of \\{\\}"),
            (r"a\{1a\}", "Invalid content of \\{\\}"),
            (r"a\{\}", "Invalid content of \\{\\}"),
            (r"a\{32768\}", "Regular expression too big"),
            (r"a\{1,99999999999\}", "Regular expression too big"),
            (r"a\1", "Invalid back reference"),
        ] {
            assert_eq!(translate(bad).unwrap_err(), why, "{bad:?}");
        }
        assert_eq!(
            translate(r"\(x\)\1").unwrap_err(),
            r"\1: back-references are not supported (the regex crate has none)"
        );
        assert_eq!(ok(r"a\{32767\}"), "a{32767}");
    }
}
