//! `pipe-demo grep [OPTIONS] PATTERN [FILE...]`: a filter for shell pipelines that takes the
//! flags scripts pass to grep (`-q -s -e -f -G -E -F -i -v -w -x -c -n -o -l -L -H -h -m -a
//! --color --line-buffered`), with GNU grep's output formats and exit codes: 0 a line was
//! selected, 1 none, 2 an error (but 0 with `-q` once a line is selected, errors or not).
//!
//! It behaves like `LC_ALL=C grep`: the input is bytes (it need not be UTF-8), `.` matches any
//! byte but newline, `-i` folds ASCII letters, and PATTERN is a basic regular expression as
//! GNU grep reads it (`fo\+`, `a\|b`, `\{2\}`; translated into the regex crate's syntax by
//! [`bre`]). `-E` takes the regex crate's own syntax, which is close to grep's `-E`; `-F`
//! fixed strings. Back-references (`\(x\)\1`), which the regex crate cannot run, are refused
//! with an error naming them, never matched differently. `-o` and `--color` show the
//! leftmost-longest match, as grep does ([`pattern`]); `--color=always` writes GNU grep's
//! escape sequences and reads `GREP_COLORS` as it does ([`color`]). Every input is searched
//! as text, so `-a` changes nothing, and `-h` means "no file names", as in grep, so `--help`
//! has no short form here.
//!
//! What it shows: the reading end of a pipeline, done fast. The calls, per input:
//!
//! ```text
//! open(FILE) (or fd 0 for stdin or `-`)
//! read(fd, 1 MiB block) ... until EOF      the regex runs over the whole block, not per line
//! write(1, 128 KiB buffer) when it fills, when the input pauses, and once at the end
//!                                          (--line-buffered: after every line)
//! ```
//!
//! The search itself is in [`search`], the patterns in [`pattern`] (with [`inner`] and [`dfa`]
//! for the searches the regex crate's API does not offer).
//!
//! # Pitfalls
//!
//! - **Broken pipe.** Rust ignores SIGPIPE, so a write to a closed pipe (`pipe-demo grep y |
//!   head -1`) fails with EPIPE, which ends the program quietly with status 0, as the reader no
//!   longer wants output.
//! - **A line with no end** (`pipe-demo grep x /dev/zero`): lines are capped at 256 MiB, then
//!   the run fails with grep's "memory exhausted" (exit 2) instead of growing until the
//!   allocator aborts.
//! - **A write per line** would cost a system call per match: output goes through one buffer,
//!   flushed when full and at the end.

mod bre;
mod color;
mod dfa;
mod inner;
mod pattern;
mod search;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use common::{Context, Error, Result, trace};

use crate::cli::{ColorWhen, GrepArgs};
use color::Colors;
pub use pattern::compile;
use pattern::{Flags, Matcher, Syntax};
use search::{MEMORY_EXHAUSTED, Mode, Options, Searcher};

/// Exit status when no line was selected.
const EXIT_NONE: u8 = 1;
/// Exit status for an error (bad pattern, unreadable file, failed write), as grep's.
const EXIT_ERROR: u8 = 2;
/// The name grep gives stdin in prefixes and lists.
const STDIN_NAME: &str = "(standard input)";

/// Run the `grep` role.
pub fn run(args: &GrepArgs) -> Result<ExitCode> {
    // PATTERN comes first unless -e or -f gave the patterns; everything else is a file.
    let mut operands = args.operands.iter();
    let mut patterns = Vec::new();
    if args.regexp.is_empty() && args.pattern_files.is_empty() {
        let p = operands.next().ok_or_else(|| {
            Error::Usage("no PATTERN: pipe-demo grep [OPTIONS] PATTERN [FILE...]".into())
        })?;
        patterns.extend(p.split('\n').map(str::to_owned));
    }
    for p in &args.regexp {
        // A pattern with newlines is several patterns, as in grep.
        patterns.extend(p.split('\n').map(str::to_owned));
    }
    for f in &args.pattern_files {
        patterns.extend(read_patterns(f)?);
    }
    let flags = Flags {
        syntax: if args.fixed_strings {
            Syntax::Fixed
        } else if args.extended_regexp {
            Syntax::Extended
        } else {
            Syntax::Basic
        },
        ignore_case: args.ignore_case,
        word: args.word_regexp,
        line: args.line_regexp,
    };
    let matcher = Matcher::new(&patterns, flags)?;
    if args.max_count == Some(0) {
        // -m 0: grep stops before it reads (or even opens) anything.
        return Ok(ExitCode::from(EXIT_NONE));
    }

    let inputs: Vec<&str> = match operands.as_slice() {
        [] => vec!["-"],
        files => files.iter().map(String::as_str).collect(),
    };
    let mode = if args.quiet {
        Mode::Quiet
    } else if args.files_with_matches {
        Mode::FilesWith
    } else if args.files_without_match {
        Mode::FilesWithout
    } else if args.count {
        Mode::Count
    } else {
        Mode::Lines
    };
    let opts = Options {
        mode,
        invert: args.invert_match,
        line_number: args.line_number,
        only_matching: args.only_matching,
        max_count: args.max_count,
        // grep names the file when it searches several, unless -h; -H always.
        with_name: args.with_filename || (inputs.len() > 1 && !args.no_filename),
        line_buffered: args.line_buffered,
    };
    let colors = match args.color {
        ColorWhen::Never => None,
        ColorWhen::Always => Some(()),
        // GNU grep's test: a terminal that is not a dumb one.
        ColorWhen::Auto => (io::stdout().is_terminal()
            && std::env::var_os("TERM").is_some_and(|t| t != "dumb"))
        .then_some(()),
    }
    .map(|()| {
        let (colors, warning) = Colors::from_env();
        if let Some(w) = warning {
            let _ = writeln!(io::stderr().lock(), "pipe-demo: {w}");
        }
        colors
    });

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 17, stdout.lock());
    let mut searcher = Searcher::new(matcher, opts, colors);
    let mut selected = 0u64;
    let mut errors = false;
    for &name in &inputs {
        let result = if name == "-" {
            trace!("read(0) until EOF");
            searcher.search(io::stdin().lock(), &mut out, STDIN_NAME)
        } else {
            File::open(name)
                .ctx("open", name)
                .and_then(|f| searcher.search(f, &mut out, name))
        };
        match result {
            Ok(n) => selected += n,
            // The reader has gone: stop quietly (finish() turns this into exit 0).
            Err(e) if e.is_broken_pipe() => return Err(e),
            // Like GNU grep, a failed write and running out of memory end the whole search.
            Err(e) if is_write_error(&e) || is_memory_exhausted(&e) => return fail(e),
            Err(e) => {
                // Like grep: report the file (unless -s) and go on with the next one; exit 2
                // at the end.
                if !args.no_messages {
                    let _ = writeln!(io::stderr().lock(), "pipe-demo: {e}");
                }
                errors = true;
            }
        }
        if mode == Mode::Quiet && selected > 0 {
            // -q: the answer is known; grep does not even open the other files.
            break;
        }
    }
    if let Err(e) = out.flush().ctx("write", "stdout") {
        return if e.is_broken_pipe() { Err(e) } else { fail(e) };
    }
    Ok(ExitCode::from(if mode == Mode::Quiet && selected > 0 {
        0
    } else if errors {
        EXIT_ERROR
    } else if selected > 0 {
        0
    } else {
        EXIT_NONE
    }))
}

/// The patterns of `-f FILE`, one per line (`-` is stdin). An empty file holds no pattern
/// (and matches nothing); an empty line is the empty pattern (and matches everything).
fn read_patterns(file: &str) -> Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(BufReader::new(File::open(file).ctx("open", file)?))
    };
    let mut patterns = Vec::new();
    for line in reader.split(b'\n') {
        let line = line.ctx("read", file)?;
        let text = String::from_utf8(line)
            .map_err(|_| Error::Usage(format!("-f {file}: a pattern is not valid UTF-8")))?;
        patterns.push(text);
    }
    Ok(patterns)
}

/// Report an error that ends the search, with grep's exit status 2.
fn fail(e: Error) -> Result<ExitCode> {
    let _ = writeln!(io::stderr().lock(), "pipe-demo: {e}");
    Ok(ExitCode::from(EXIT_ERROR))
}

fn is_write_error(e: &Error) -> bool {
    matches!(e, Error::Sys { call, .. } if call == "write")
}

fn is_memory_exhausted(e: &Error) -> bool {
    matches!(e, Error::Msg(m) if m.ends_with(MEMORY_EXHAUSTED))
}
