//! `pipe-demo grep PATTERN [-v] [-c] [-i] [FILE...]`: a stdin-to-stdout filter for shell
//! pipelines, with grep's exit codes (0 a line was selected, 1 none, 2 an error).
//!
//! It behaves like `LC_ALL=C grep -E`: the input is bytes (it need not be UTF-8), `.` matches
//! any byte but newline, `-i` folds ASCII letters, and the pattern uses Rust's regex syntax,
//! which is close to grep's `-E`. Every input is searched as text (grep's `-a`).
//!
//! # Why it is fast
//!
//! It searches the buffer, not line by line: it reads a large block, cuts it after its last
//! newline, and asks the regex for the next match in the whole block. Only around a match does
//! it look for the line's boundaries (`memrchr`/`memchr`), write that line, and resume at the
//! next line. Lines that do not match are never looked at one by one, and nothing is allocated
//! or written per line: output goes through one large buffer.
//!
//! # Pitfall: a match must not cross a newline
//!
//! grep matches within lines, but a regex run over a block can match across one (`a[^x]*b`
//! happily eats `\n`). When a match runs past the end of the line it started on, that line is
//! checked again on its own; leftmost-first search guarantees no matching line is skipped.
//!
//! # Broken pipe
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe (`pipe-demo grep y | head -1`) fails with
//! EPIPE, which ends the program quietly with status 0, as the reader no longer wants output.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use common::{Context, Error, Result, trace};
use memchr::{memchr, memchr_iter, memrchr};
use regex::bytes::{Regex, RegexBuilder};

use crate::cli::GrepArgs;

/// Exit status when no line was selected.
const EXIT_NONE: u8 = 1;
/// Exit status for an error (bad pattern, unreadable file, failed write), as grep's.
const EXIT_ERROR: u8 = 2;
/// The first read size. Large reads from a file mean few syscalls; from a pipe a read returns
/// what is there (up to 64 KiB by default), and we search that.
const BLOCK: usize = 1 << 20;
/// The longest line searched: 256 MiB. The buffer holds one whole line, so a line longer than
/// memory (`pipe-demo grep x /dev/zero`: no newline, ever) would grow it until the allocator
/// aborts the process. Past this cap the input is refused with grep's "memory exhausted"
/// (exit 2), naming the file.
pub const MAX_LINE: usize = 256 << 20;
/// The end of the message for a line past [`MAX_LINE`].
const MEMORY_EXHAUSTED: &str = "memory exhausted";

/// Run the `grep` role.
pub fn run(args: &GrepArgs) -> Result<ExitCode> {
    let re = compile(&args.pattern, args.ignore_case)?;
    let opts = Options {
        invert: args.invert,
        count: args.count,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 17, stdout.lock());
    let inputs: Vec<String> = if args.files.is_empty() {
        vec!["-".to_owned()]
    } else {
        args.files.clone()
    };
    let with_names = inputs.len() > 1;
    let mut searcher = Searcher::new(&re, opts);
    let mut selected = 0u64;
    let mut errors = false;
    for name in &inputs {
        let prefix = with_names.then_some(name.as_bytes());
        let result = if name == "-" {
            trace!("read(0) until EOF");
            searcher.search(io::stdin().lock(), &mut out, prefix, "(standard input)")
        } else {
            File::open(name)
                .ctx("open", name)
                .and_then(|f| searcher.search(f, &mut out, prefix, name))
        };
        match result {
            Ok(n) => selected += n,
            // The reader has gone: stop quietly (finish() turns this into exit 0).
            Err(e) if e.is_broken_pipe() => return Err(e),
            // Like GNU grep, running out of memory ends the whole search.
            Err(e) if e.is_write_error() || e.is_memory_exhausted() => return fail(e),
            Err(e) => {
                // Like grep: report the file and go on with the next one; exit 2 at the end.
                let _ = writeln!(io::stderr().lock(), "pipe-demo: {e}");
                errors = true;
            }
        }
    }
    if let Err(e) = out.flush().ctx("write", "stdout") {
        return if e.is_broken_pipe() { Err(e) } else { fail(e) };
    }
    Ok(ExitCode::from(if errors {
        EXIT_ERROR
    } else if selected > 0 {
        0
    } else {
        EXIT_NONE
    }))
}

/// Report an error that ends the search, with grep's exit status 2.
fn fail(e: Error) -> Result<ExitCode> {
    let _ = writeln!(io::stderr().lock(), "pipe-demo: {e}");
    Ok(ExitCode::from(EXIT_ERROR))
}

trait Fatal {
    fn is_write_error(&self) -> bool;
    fn is_memory_exhausted(&self) -> bool;
}

impl Fatal for Error {
    fn is_write_error(&self) -> bool {
        matches!(self, Error::Sys { call, .. } if call == "write")
    }

    fn is_memory_exhausted(&self) -> bool {
        matches!(self, Error::Msg(m) if m.ends_with(MEMORY_EXHAUSTED))
    }
}

/// Compile `pattern` the way `LC_ALL=C grep -E` reads it (see the module docs). A bad pattern
/// is a usage error (exit 2) with a one-line message.
pub fn compile(pattern: &str, ignore_case: bool) -> Result<Regex> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .unicode(false)
        .case_insensitive(ignore_case)
        .build()
        .map_err(|e| Error::Usage(format!("bad regex '{pattern}': {}", regex_error(&e))))
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

/// What to select and how to report it.
#[derive(Clone, Copy, Debug)]
struct Options {
    invert: bool,
    count: bool,
}

/// The search loop's state: one buffer, reused for every input.
struct Searcher<'r> {
    re: &'r Regex,
    opts: Options,
    buf: Vec<u8>,
}

impl<'r> Searcher<'r> {
    fn new(re: &'r Regex, opts: Options) -> Self {
        Searcher {
            re,
            opts,
            buf: vec![0; BLOCK],
        }
    }

    /// Search one input; returns the number of selected lines.
    fn search(
        &mut self,
        mut input: impl Read,
        out: &mut impl Write,
        prefix: Option<&[u8]>,
        name: &str,
    ) -> Result<u64> {
        let mut selected = 0u64;
        // buf[..filled] holds bytes read but not yet searched: at most one partial line.
        let mut filled = 0;
        loop {
            if filled == self.buf.len() {
                // One line longer than the buffer: grow it (amortised; rare), up to MAX_LINE,
                // and fail cleanly rather than abort if even that much memory is not there.
                let more = self.buf.len().min(MAX_LINE - self.buf.len());
                if more == 0 || self.buf.try_reserve_exact(more).is_err() {
                    return Err(Error::msg(format!(
                        "{name}: a line longer than {} MiB: {MEMORY_EXHAUSTED}",
                        self.buf.len() >> 20
                    )));
                }
                self.buf.resize(self.buf.len() + more, 0);
            }
            let requested = self.buf.len() - filled;
            let n = match input.read(&mut self.buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).ctx("read", name),
            };
            if n == 0 {
                // EOF: what is left is a last line without its newline.
                if filled > 0 {
                    selected += self.block(&self.buf[..filled], out, prefix)?;
                }
                break;
            }
            let end = filled + n;
            // Search only complete lines; the partial last one waits for the next read.
            match memrchr(b'\n', &self.buf[filled..end]) {
                Some(i) => {
                    let cut = filled + i + 1;
                    selected += self.block(&self.buf[..cut], out, prefix)?;
                    self.buf.copy_within(cut..end, 0);
                    filled = end - cut;
                }
                None => filled = end,
            }
            // A short read means the input has nothing more for now: a pipe or a terminal fed
            // live (`tail -f log | pipe-demo grep ERROR`). Flush what was selected before the
            // next read blocks, so matches reach the reader now rather than when the buffer
            // fills: behind `| head -3` a never-ending input would otherwise wait forever. A
            // file gives full reads until its end, so this costs it nothing.
            if n < requested {
                out.flush().ctx("write", "stdout")?;
            }
        }
        if self.opts.count {
            if let Some(p) = prefix {
                out.write_all(p).ctx("write", "stdout")?;
                out.write_all(b":").ctx("write", "stdout")?;
            }
            writeln!(out, "{selected}").ctx("write", "stdout")?;
        }
        Ok(selected)
    }

    /// Search `b`, a run of whole lines (the last may lack its newline at EOF), writing the
    /// selected lines. Returns how many were selected.
    fn block(&self, b: &[u8], out: &mut impl Write, prefix: Option<&[u8]>) -> Result<u64> {
        let Options { invert, count } = self.opts;
        let mut selected = 0u64;
        // Start of the bytes not yet accounted for (a line start).
        let mut pos = 0;
        // Contiguous selected lines are written with one write_all.
        let mut run = 0..0;
        while pos < b.len() {
            let Some(m) = self.re.find_at(b, pos) else {
                break;
            };
            let start = m.start();
            if start >= b.len() {
                // An empty match after the final newline: that is no line.
                break;
            }
            let line_start = memrchr(b'\n', &b[pos..start]).map_or(pos, |i| pos + i + 1);
            let line_end = memchr(b'\n', &b[start..]).map_or(b.len(), |i| start + i);
            let next = (line_end + 1).min(b.len());
            let matched = m.end() <= line_end || self.re.is_match(&b[line_start..line_end]);
            if !matched {
                // The match crossed a newline and the line alone does not match. No line
                // before it matched either (the search is leftmost-first), so for `-v` all
                // lines from `pos` through this one are selected.
                if invert {
                    selected += self.emit_gap(b, pos..next, out, prefix, count)?;
                }
                pos = next;
                continue;
            }
            if invert {
                selected += self.emit_gap(b, pos..line_start, out, prefix, count)?;
            } else {
                selected += 1;
                if !count {
                    if prefix.is_none() && run.end == line_start && !run.is_empty() {
                        run.end = next;
                    } else {
                        write_lines(&b[run.clone()], out, prefix)?;
                        run = line_start..next;
                    }
                }
            }
            pos = next;
        }
        if invert {
            selected += self.emit_gap(b, pos..b.len(), out, prefix, count)?;
        } else if !count {
            write_lines(&b[run], out, prefix)?;
        }
        Ok(selected)
    }

    /// With `-v`: the lines in `gap` are all unmatched, so all selected.
    fn emit_gap(
        &self,
        b: &[u8],
        gap: std::ops::Range<usize>,
        out: &mut impl Write,
        prefix: Option<&[u8]>,
        count: bool,
    ) -> Result<u64> {
        let region = &b[gap];
        if region.is_empty() {
            return Ok(0);
        }
        let lines = memchr_iter(b'\n', region).count() + usize::from(region.last() != Some(&b'\n'));
        if !count {
            write_lines(region, out, prefix)?;
        }
        Ok(lines as u64)
    }
}

/// Write whole lines, adding the newline a last line at EOF may lack (as grep does), and the
/// `file:` prefix when several files are searched.
fn write_lines(region: &[u8], out: &mut impl Write, prefix: Option<&[u8]>) -> Result<()> {
    if region.is_empty() {
        return Ok(());
    }
    let w = |out: &mut dyn Write, bytes: &[u8]| out.write_all(bytes).ctx("write", "stdout");
    match prefix {
        None => w(out, region)?,
        Some(p) => {
            for line in region.split_inclusive(|&c| c == b'\n') {
                w(out, p)?;
                w(out, b":")?;
                w(out, line)?;
            }
        }
    }
    if region.last() != Some(&b'\n') {
        w(out, b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grep(pattern: &str, input: &[u8], invert: bool, count: bool) -> (String, u64) {
        let re = compile(pattern, false).unwrap();
        let mut s = Searcher::new(&re, Options { invert, count });
        let mut out = Vec::new();
        let n = s.search(input, &mut out, None, "test").unwrap();
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn selects_whole_lines() {
        let input = b"a.txt\nb.md\nc.txt\nd.txt.gz\ne.txt";
        assert_eq!(grep("txt$", input, false, false).0, "a.txt\nc.txt\ne.txt\n");
        assert_eq!(grep("txt$", input, true, false).0, "b.md\nd.txt.gz\n");
        assert_eq!(grep("txt$", input, false, true).0, "3\n");
        assert_eq!(grep("txt$", input, true, true).0, "2\n");
    }

    #[test]
    fn a_match_never_crosses_a_newline() {
        let input = b"ax\nyb\nab\n";
        assert_eq!(grep("a[^x]*b", input, false, false).0, "ab\n");
        assert_eq!(grep("a[^x]*b", input, true, false).0, "ax\nyb\n");
        assert_eq!(grep("x\ny", input, false, false).0, "");
    }

    #[test]
    fn empty_lines_and_empty_matches() {
        let input = b"\na\n\n";
        assert_eq!(grep("^$", input, false, true).0, "2\n");
        assert_eq!(grep("", input, false, true).0, "3\n");
        assert_eq!(grep("", b"", false, true).0, "0\n");
    }

    #[test]
    fn non_utf8_input_is_fine() {
        let input = b"\xff\xfe txt\nok\n";
        assert_eq!(grep("txt$", input, false, true).1, 1);
        assert_eq!(grep("^.. txt$", input, false, true).1, 1);
    }

    #[test]
    fn bad_regex_is_one_line() {
        let e = compile("a(", false).unwrap_err().to_string();
        assert_eq!(e, "bad regex 'a(': unclosed group");
    }
}
