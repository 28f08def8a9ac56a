//! The daemon's configuration file: a small TOML table, read at start and again on SIGHUP.
//!
//! ```toml
//! message = "hello"     # printed on every tick (one line, at most 200 bytes)
//! interval_ms = 500     # time between ticks, 10..=3600000
//! work_ms = 0           # how long one tick's work takes (simulated), 0..=3600000; default 0
//! ```
//!
//! Every error names the file and line, as a compiler would, so `reload failed:` tells the
//! operator exactly what to fix: `cfg.toml:3: unknown key 'colour'`. Unknown keys are errors,
//! not ignored: a misspelt `intervall_ms` silently ignored is a reload that "worked" and changed
//! nothing.

use std::fmt;
use std::io::{Read, Write};
use std::ops::{Range, RangeInclusive};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use common::cleanup::Unlink;
use common::out::escape;
use common::{Context, Error, Result};
use serde::Deserialize;
use toml::Spanned;

/// Bounds on `interval_ms`: below 10 ms the demo would only flood its output.
pub const INTERVAL_MS: RangeInclusive<u64> = 10..=3_600_000;
/// Bounds on `work_ms`.
pub const WORK_MS: RangeInclusive<u64> = 0..=3_600_000;
/// The longest accepted message, in bytes.
pub const MAX_MESSAGE: usize = 200;
/// A config file larger than this is refused before it is read into memory.
pub const MAX_FILE: u64 = 64 * 1024;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Printed on every tick.
    pub message: String,
    /// Time between ticks.
    pub interval_ms: u64,
    /// Simulated work per tick.
    pub work_ms: u64,
}

/// The file as TOML sees it, with the position of every value for error messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    message: Spanned<String>,
    interval_ms: Spanned<i64>,
    #[serde(default)]
    work_ms: Option<Spanned<i64>>,
}

impl Config {
    /// Read and validate the config file at `path`. Errors read `path:line: cause`, or
    /// `open path: cause` when the file cannot be read at all.
    ///
    /// Only a regular file is read. A FIFO at `path` would block `open` until a writer came
    /// (and no signal but SIGKILL reaches a process blocked there), a device could be
    /// anything, so the file is opened with `O_NONBLOCK` (which makes opening a FIFO with no
    /// writer return at once) and its type checked with `fstat` on what was opened, never on
    /// the path, which could be swapped in between.
    pub fn load(path: &Path) -> Result<Config> {
        let file = crate::file::open_regular(path, false)?;
        let mut text = String::new();
        // Read at most one byte more than allowed, so an oversized file is detected without
        // reading all of it (it could be /dev/zero).
        file.take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .ctx("read", path.display())?;
        if text.len() as u64 > MAX_FILE {
            return Err(Error::msg(format!(
                "{}: larger than {MAX_FILE} bytes; not a config file?",
                path.display()
            )));
        }
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and validate config text; `name` is the file name used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Config> {
        let at = |span: Option<Range<usize>>, cause: &str| {
            let line = span.map_or(1, |s| line_of(text, s.start));
            // The cause may quote the file's text: shown escaped, like the message itself.
            Error::msg(escape(format!("{name}:{line}: {cause}").as_bytes()))
        };
        let raw: Raw = toml::from_str(text).map_err(|e| at(e.span(), &rephrase(e.message())))?;
        let message = raw.message.get_ref();
        if message.contains(['\n', '\r']) {
            return Err(at(Some(raw.message.span()), "message must be one line"));
        }
        if message.len() > MAX_MESSAGE {
            return Err(at(
                Some(raw.message.span()),
                &format!("message is {} bytes; at most {MAX_MESSAGE}", message.len()),
            ));
        }
        let bounded = |v: &Spanned<i64>, key: &str, range: &RangeInclusive<u64>| {
            u64::try_from(*v.get_ref())
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    at(
                        Some(v.span()),
                        &format!(
                            "{key} = {} is out of range {}..={}",
                            v.get_ref(),
                            range.start(),
                            range.end()
                        ),
                    )
                })
        };
        let interval_ms = bounded(&raw.interval_ms, "interval_ms", &INTERVAL_MS)?;
        let work_ms = match &raw.work_ms {
            Some(w) => bounded(w, "work_ms", &WORK_MS)?,
            None => 0,
        };
        Ok(Config {
            message: message.clone(),
            interval_ms,
            work_ms,
        })
    }

    /// The message as it may be printed. It comes from a file someone else may have written,
    /// and a terminal obeys some characters: ESC sequences, BEL, the bidi overrides that
    /// reorder a line (U+202E). `common::out::escape` makes those visible (`\x1b`,
    /// `\u{202e}`) instead of letting them act on the operator's terminal or log viewer.
    pub fn shown_message(&self) -> String {
        escape(self.message.as_bytes())
    }

    /// What changed from `old` to `self`, for the reload line: `interval_ms 500 -> 200`.
    pub fn diff(&self, old: &Config) -> String {
        let mut parts = Vec::new();
        if self.interval_ms != old.interval_ms {
            parts.push(format!(
                "interval_ms {} -> {}",
                old.interval_ms, self.interval_ms
            ));
        }
        if self.work_ms != old.work_ms {
            parts.push(format!("work_ms {} -> {}", old.work_ms, self.work_ms));
        }
        if self.message != old.message {
            parts.push(format!(
                "message \"{}\" -> \"{}\"",
                old.shown_message(),
                self.shown_message()
            ));
        }
        if parts.is_empty() {
            "no changes".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "interval_ms {}, work_ms {}, message \"{}\"",
            self.interval_ms,
            self.work_ms,
            self.shown_message()
        )
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// serde's messages speak of "fields" and use backquotes; a config file has keys.
/// `` unknown field `colour`, expected one of ... `` becomes `unknown key 'colour'` (the keys are
/// listed in the module docs and in `--help`).
fn rephrase(msg: &str) -> String {
    let msg = msg.trim();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((key, _)) = rest.split_once('`') {
            return format!("unknown key '{key}'");
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some((key, _)) = rest.split_once('`') {
            return format!("missing key '{key}'");
        }
    }
    // Anything else (a syntax error, a string where a number belongs) on one line.
    msg.replace('`', "'").replace('\n', " ")
}

/// Create a config file at `path` for the demo: O_EXCL (never over someone
/// else's file), mode 0600, and guarded, so it is removed when the guard drops.
pub fn create_file(path: &Path, text: &str) -> Result<Unlink> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .ctx("open(O_CREAT|O_EXCL)", path.display())?;
    let guard = Unlink::path(path);
    f.write_all(text.as_bytes()).ctx("write", path.display())?;
    Ok(guard)
}

/// Replace the config file at `path` atomically: write a sibling, then rename(2) it over
/// `path`. Rewriting in place would let a SIGHUP that arrives mid-write read half a file.
pub fn replace_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("toml.new");
    let guard = create_file(&tmp, text)?;
    std::fs::rename(&tmp, path).ctx("rename", tmp.display())?;
    common::trace!("rename({}, {})", tmp.display(), path.display());
    // Renamed away: nothing is left for the guard to remove.
    let _ = guard.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "cfg.toml").unwrap_err().to_string()
    }

    #[test]
    fn good_config_parses() {
        let c = Config::parse("message = \"hi\"\ninterval_ms = 500\n", "c").unwrap();
        assert_eq!(
            c,
            Config {
                message: "hi".into(),
                interval_ms: 500,
                work_ms: 0
            }
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "message = \"hi\"\ninterval_ms = 500\ncolour = \"red\"\n";
        assert_eq!(err(text), "cfg.toml:3: unknown key 'colour'");
        let text = "message = \"hi\"\n\ninterval_ms = 5\n";
        assert_eq!(
            err(text),
            "cfg.toml:3: interval_ms = 5 is out of range 10..=3600000"
        );
        let text = "message = \"hi\"\ninterval_ms = -1\n";
        assert!(err(text).starts_with("cfg.toml:2: interval_ms = -1 is out of range"));
        let text = "message = \"hi\"\ninterval_ms = \"fast\"\n";
        assert!(err(text).starts_with("cfg.toml:2: "), "{}", err(text));
        assert!(err("message = \"hi\"\n").contains("missing key 'interval_ms'"));
        assert!(err("message = \"hi\ninterval_ms = 5\n").starts_with("cfg.toml:1: "));
    }

    #[test]
    fn diff_lists_changes() {
        let a = Config::parse("message = \"a\"\ninterval_ms = 500\n", "c").unwrap();
        let b = Config::parse("message = \"a\"\ninterval_ms = 200\n", "c").unwrap();
        assert_eq!(b.diff(&a), "interval_ms 500 -> 200");
        assert_eq!(a.diff(&a), "no changes");
        let c = Config::parse(
            "message = \"a\\u001b]0;x\\u0007\"\ninterval_ms = 200\n",
            "c",
        )
        .unwrap();
        assert_eq!(c.diff(&b), "message \"a\" -> \"a\\x1b]0;x\\x07\"");
    }
}
