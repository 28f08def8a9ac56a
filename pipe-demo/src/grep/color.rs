//! `--color`: GNU grep's highlighting, the same escape sequences byte for byte.
//!
//! Each coloured piece is written as `ESC [ SGR m ESC [ K`, the piece, `ESC [ m ESC [ K`
//! (Select Graphic Rendition, then "erase to the end of the line", which keeps a background
//! colour from running on to the line's end when the terminal scrolls). The SGR parameters
//! are GNU grep's defaults, `ms=01;31:mc=01;31:sl=:cx=:fn=35:ln=32:bn=32:se=36` (bold red
//! matches, magenta file names, green line numbers, cyan separators), changed by the
//! environment as GNU grep 3.8 changes them:
//!
//! - `GREP_COLORS`, a `:`-separated list of `name=SGR` (SGR: digits and `;`) and booleans:
//!   `mt` sets `ms` and `mc`; `ms` a match in a selected line; `mc` in a context line (there
//!   are none here); `sl` and `cx` selected and context lines; `fn`, `ln`, `bn`, `se` file
//!   names, line numbers, byte offsets (no `-b` here) and separators; `rv` swaps `sl` and `cx`
//!   with `-v`; `ne` leaves out the `ESC [ K`. Unknown names are skipped; parsing stops,
//!   silently, at the first malformed entry, keeping what came before it.
//! - `GREP_COLOR` (deprecated) sets `mt` if it is digits and `;`, unless `GREP_COLORS` sets
//!   both match colours; when it takes effect, a warning says so, as GNU grep's does.

use std::io::{self, Write};

/// The colours, as SGR parameter strings (empty: that piece is not coloured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Colors {
    /// `ms`: a match in a selected line.
    pub selected_match: String,
    /// `mc`: a match in a context line (parsed, for `mt`; unused without context lines).
    pub context_match: String,
    /// `sl`: the rest of a selected line.
    pub selected_line: String,
    /// `cx`: the rest of a context line (with `rv` and `-v`: of a selected line).
    pub context_line: String,
    /// `fn`: a file name.
    pub file_name: String,
    /// `ln`: a line number.
    pub line_number: String,
    /// `se`: the `:` after a file name or a line number.
    pub separator: String,
    /// `rv`: with `-v`, selected lines take `cx`.
    pub reverse: bool,
    /// `ne`: no "erase to the end of the line" after each sequence.
    pub no_erase: bool,
}

impl Default for Colors {
    fn default() -> Self {
        Colors {
            selected_match: "01;31".into(),
            context_match: "01;31".into(),
            selected_line: String::new(),
            context_line: String::new(),
            file_name: "35".into(),
            line_number: "32".into(),
            separator: "36".into(),
            reverse: false,
            no_erase: false,
        }
    }
}

impl Colors {
    /// The colours that `GREP_COLOR` and `GREP_COLORS` ask for, and the warning to print if
    /// the deprecated `GREP_COLOR` took effect.
    pub fn from_env() -> (Colors, Option<String>) {
        let var = |name| std::env::var(name).ok();
        Colors::parse(var("GREP_COLOR").as_deref(), var("GREP_COLORS").as_deref())
    }

    fn parse(legacy: Option<&str>, colors: Option<&str>) -> (Colors, Option<String>) {
        let mut c = Colors::default();
        // Which match colours still come from GREP_COLOR.
        let (mut ms_legacy, mut mc_legacy) = (false, false);
        let legacy = legacy.filter(|v| !v.is_empty() && is_sgr(v));
        if let Some(v) = legacy {
            c.selected_match = v.to_owned();
            c.context_match = v.to_owned();
            (ms_legacy, mc_legacy) = (true, true);
        }
        for entry in colors.unwrap_or("").split(':') {
            let (name, value) = match entry.split_once('=') {
                // `=x` and `a=b=c` are malformed, and so is a value that is not SGR.
                Some(("", _)) => break,
                Some((_, v)) if v.contains('=') || !is_sgr(v) => break,
                Some((n, v)) => (n, Some(v)),
                None => (entry, None),
            };
            let slot = match name {
                "mt" | "ms" => Some(&mut c.selected_match),
                "mc" => Some(&mut c.context_match),
                "sl" => Some(&mut c.selected_line),
                "cx" => Some(&mut c.context_line),
                "fn" => Some(&mut c.file_name),
                "ln" => Some(&mut c.line_number),
                "se" => Some(&mut c.separator),
                _ => None,
            };
            if let (Some(slot), Some(v)) = (slot, value) {
                *slot = v.to_owned();
                ms_legacy &= !matches!(name, "mt" | "ms");
                mc_legacy &= name != "mc";
            }
            // The booleans act whether or not a value came with them, as in GNU grep.
            match name {
                "mt" => {
                    c.context_match = c.selected_match.clone();
                    mc_legacy = ms_legacy;
                }
                "rv" => c.reverse = true,
                "ne" => c.no_erase = true,
                _ => {}
            }
        }
        let warning = legacy
            .filter(|_| ms_legacy || mc_legacy)
            .map(|v| format!("warning: GREP_COLOR='{v}' is deprecated; use GREP_COLORS='mt={v}'"));
        (c, warning)
    }

    /// Write `text` in colour `sgr` (as is if `sgr` is empty).
    pub fn paint(&self, out: &mut impl Write, sgr: &str, text: &[u8]) -> io::Result<()> {
        self.start(out, sgr)?;
        out.write_all(text)?;
        self.end(out, sgr)
    }

    /// Start colour `sgr`, if it is not empty.
    pub fn start(&self, out: &mut impl Write, sgr: &str) -> io::Result<()> {
        if sgr.is_empty() {
            return Ok(());
        }
        write!(out, "\x1b[{sgr}m")?;
        self.erase(out)
    }

    /// End colour `sgr`, if it is not empty.
    pub fn end(&self, out: &mut impl Write, sgr: &str) -> io::Result<()> {
        if sgr.is_empty() {
            return Ok(());
        }
        out.write_all(b"\x1b[m")?;
        self.erase(out)
    }

    fn erase(&self, out: &mut impl Write) -> io::Result<()> {
        if self.no_erase {
            return Ok(());
        }
        out.write_all(b"\x1b[K")
    }
}

/// SGR parameters: digits and `;` only, which keeps anything else away from the terminal.
fn is_sgr(v: &str) -> bool {
    v.bytes().all(|c| c.is_ascii_digit() || c == b';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(legacy: Option<&str>, colors: &str) -> (Colors, Option<String>) {
        Colors::parse(legacy, Some(colors))
    }

    #[test]
    fn grep_colors_sets_what_it_names_and_stops_at_the_first_malformed_entry() {
        let (c, _) = parse(None, "ms=01;32:ln=33:bogus=1:fn=");
        assert_eq!(c.selected_match, "01;32");
        assert_eq!(c.context_match, "01;31");
        assert_eq!((c.line_number.as_str(), c.file_name.as_str()), ("33", ""));
        let (c, _) = parse(None, "ln=33:ms=x1:fn=34");
        assert_eq!((c.line_number.as_str(), c.file_name.as_str()), ("33", "35"));
        assert_eq!(c.selected_match, "01;31");
        let (c, _) = parse(None, "=3:ln=33");
        assert_eq!(c, Colors::default());
        let (c, _) = parse(None, "mt=4:sl=1:cx=2:rv=1:ne");
        assert_eq!(
            (c.selected_match.as_str(), c.context_match.as_str()),
            ("4", "4")
        );
        assert!(c.reverse && c.no_erase);
        // `ms` with no value keeps the default.
        assert_eq!(parse(None, "ms").0, Colors::default());
    }

    #[test]
    fn grep_color_is_used_with_a_warning_unless_grep_colors_overrides_it() {
        let (c, w) = parse(Some("01;32"), "");
        assert_eq!(c.selected_match, "01;32");
        assert_eq!(
            w.as_deref(),
            Some("warning: GREP_COLOR='01;32' is deprecated; use GREP_COLORS='mt=01;32'")
        );
        // One match colour still from GREP_COLOR: still a warning.
        assert!(parse(Some("01;32"), "ms=4").1.is_some());
        let (c, w) = parse(Some("01;32"), "mt=4");
        assert_eq!(c.selected_match, "4");
        assert!(w.is_none());
        // Not SGR: ignored, no warning.
        assert_eq!(parse(Some("red"), ""), (Colors::default(), None));
    }

    #[test]
    fn sequences_are_gnu_greps() {
        let mut out = Vec::new();
        let c = Colors::default();
        c.paint(&mut out, "01;31", b"foo").unwrap();
        c.paint(&mut out, "", b"-").unwrap();
        assert_eq!(out, b"\x1b[01;31m\x1b[Kfoo\x1b[m\x1b[K-");
        out.clear();
        let ne = Colors {
            no_erase: true,
            ..Colors::default()
        };
        ne.paint(&mut out, "32", b"7").unwrap();
        assert_eq!(out, b"\x1b[32m7\x1b[m");
    }
}
