//! The search loop: big blocks in, selected lines (or counts, or names) out.
//!
//! It searches the buffer, not line by line: it reads a large block, cuts it after its last
//! newline, and asks the matcher for the next matching line in the whole block. Lines that do
//! not match are never looked at one by one, and nothing is allocated or written per line:
//! output goes through one large buffer, and a run of adjacent selected lines is written with
//! one copy. Line numbers (`-n`) are counted only when asked for, and only up to each line
//! printed.

use std::io::{self, Read, Write};
use std::ops::Range;

use common::{Context, Error, Result};
use memchr::memchr_iter;

use super::color::Colors;
use super::pattern::Matcher;

/// The first read size. Large reads from a file mean few syscalls; from a pipe a read returns
/// what is there (up to 64 KiB by default), and we search that.
const BLOCK: usize = 1 << 20;
/// The longest line searched: 256 MiB. The buffer holds one whole line, so a line longer than
/// memory (`pipe-demo grep x /dev/zero`: no newline, ever) would grow it until the allocator
/// aborts the process. Past this cap the input is refused with grep's "memory exhausted"
/// (exit 2), naming the file.
pub const MAX_LINE: usize = 256 << 20;
/// The end of the message for a line past [`MAX_LINE`].
pub const MEMORY_EXHAUSTED: &str = "memory exhausted";

/// What is written for an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The selected lines (or with `-o`, their matches).
    Lines,
    /// `-c`: the number of selected lines.
    Count,
    /// `-l`: the input's name if a line is selected.
    FilesWith,
    /// `-L`: the input's name if no line is selected.
    FilesWithout,
    /// `-q`: nothing.
    Quiet,
}

/// How lines are selected and shown.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub mode: Mode,
    /// `-v`: select the lines that do not match.
    pub invert: bool,
    /// `-n`: prefix lines with their number.
    pub line_number: bool,
    /// `-o`: print each match, not the line.
    pub only_matching: bool,
    /// `-m NUM`: stop reading an input after NUM selected lines.
    pub max_count: Option<u64>,
    /// Prefix lines (and counts) with the input's name.
    pub with_name: bool,
    /// `--line-buffered`: flush the output after each line, not when the buffer fills.
    pub line_buffered: bool,
}

/// The search loop's state: one buffer, reused for every input.
pub struct Searcher {
    matcher: Matcher,
    opts: Options,
    /// `--color`: GNU grep's escape sequences around matches, names, numbers, separators.
    colors: Option<Colors>,
    buf: Vec<u8>,
    /// The matcher has seen its sample of the input ([`Matcher::tune`]).
    tuned: bool,
}

/// One input's progress.
struct Input<'n> {
    name: &'n [u8],
    selected: u64,
    /// Newlines in the blocks before this one (for `-n`).
    lines_before: u64,
    /// `-n` within the block: `counted` newlines found in `b[..counted_to]`.
    counted_to: usize,
    counted: u64,
    /// Adjacent selected lines not yet written (a range of the block).
    run: Range<usize>,
    /// Enough was seen (`-l`, `-L`, `-q`, `-m`): stop reading.
    done: bool,
}

impl Searcher {
    pub fn new(matcher: Matcher, opts: Options, colors: Option<Colors>) -> Self {
        Searcher {
            matcher,
            opts,
            colors,
            buf: vec![0; BLOCK],
            tuned: false,
        }
    }

    /// Search one input, named `name` in messages and prefixes; the number of selected lines.
    pub fn search(
        &mut self,
        mut input: impl Read,
        out: &mut impl Write,
        name: &str,
    ) -> Result<u64> {
        let mut st = Input {
            name: name.as_bytes(),
            selected: 0,
            lines_before: 0,
            counted_to: 0,
            counted: 0,
            run: 0..0,
            done: self.opts.max_count == Some(0),
        };
        // buf[..filled] holds bytes read but not yet searched: at most one partial line.
        let mut filled = 0;
        while !st.done {
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
                    self.block(&self.buf[..filled], out, &mut st)?;
                }
                break;
            }
            let end = filled + n;
            if !self.tuned {
                self.matcher.tune(&self.buf[..end]);
                self.tuned = true;
            }
            // Search only complete lines; the partial last one waits for the next read.
            match memchr::memrchr(b'\n', &self.buf[filled..end]) {
                Some(i) => {
                    let cut = filled + i + 1;
                    self.block(&self.buf[..cut], out, &mut st)?;
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
        match self.opts.mode {
            Mode::Count => {
                if self.opts.with_name {
                    self.name_prefix(out, st.name)?;
                }
                writeln!(out, "{}", st.selected).ctx("write", "stdout")?;
            }
            Mode::FilesWith if st.selected > 0 => self.name_line(out, st.name)?,
            Mode::FilesWithout if st.selected == 0 => self.name_line(out, st.name)?,
            _ => {}
        }
        self.line_done(out)?;
        Ok(st.selected)
    }

    /// Search `b`, a run of whole lines (the last may lack its newline at EOF).
    fn block(&self, b: &[u8], out: &mut impl Write, st: &mut Input<'_>) -> Result<()> {
        let mut pos = 0;
        while pos < b.len() && !st.done {
            let Some((line_start, line_end)) = self.matcher.find_line(b, pos) else {
                break;
            };
            let next = (line_end + 1).min(b.len());
            if self.opts.invert {
                self.gap(b, pos..line_start, out, st)?;
            } else {
                self.select(b, line_start..next, out, st)?;
            }
            pos = next;
        }
        if self.opts.invert && !st.done {
            self.gap(b, pos..b.len(), out, st)?;
        }
        let run = std::mem::replace(&mut st.run, 0..0);
        write_lines(&b[run], out)?;
        if self.opts.line_number {
            st.lines_before += st.counted + count_lines(&b[st.counted_to..]);
            st.counted_to = 0;
            st.counted = 0;
        }
        Ok(())
    }

    /// One selected line, `line` (with its newline, if it has one).
    fn select(
        &self,
        b: &[u8],
        line: Range<usize>,
        out: &mut impl Write,
        st: &mut Input<'_>,
    ) -> Result<()> {
        st.selected += 1;
        if self.opts.max_count.is_some_and(|m| st.selected >= m) {
            st.done = true;
        }
        if self.nothing_per_line(st) {
            return Ok(());
        }
        if self.as_they_are() && !self.opts.only_matching {
            // The common case: adjacent lines go out as one slice.
            return add_to_run(b, line, out, st);
        }
        let number = self.line_number(b, line.start, st);
        let text = without_newline(&b[line]);
        if self.opts.only_matching {
            self.matcher.matches(text, |m| {
                self.prefix(out, st.name, number)?;
                self.paint(out, |c| &c.selected_match, &text[m])?;
                out.write_all(b"\n").ctx("write", "stdout")
            })?;
        } else {
            self.prefix(out, st.name, number)?;
            self.line(out, text, true)?;
        }
        self.line_done(out)
    }

    /// With `-v`: the lines in `gap` all fail to match, so all are selected.
    fn gap(
        &self,
        b: &[u8],
        gap: Range<usize>,
        out: &mut impl Write,
        st: &mut Input<'_>,
    ) -> Result<()> {
        let mut region = &b[gap.clone()];
        if region.is_empty() {
            return Ok(());
        }
        let mut lines = count_lines(region) + u64::from(region.last() != Some(&b'\n'));
        if let Some(max) = self.opts.max_count {
            let room = max - st.selected;
            if lines >= room {
                // Only the first `room` lines of the gap: cut after the room-th newline.
                lines = room;
                st.done = true;
                if let Some(i) =
                    memchr_iter(b'\n', region).nth(usize::try_from(room).unwrap_or(usize::MAX) - 1)
                {
                    region = &region[..=i];
                }
            }
        }
        st.selected += lines;
        if self.nothing_per_line(st) {
            return Ok(());
        }
        if self.opts.only_matching {
            // `-o -v` prints nothing: the selected lines have no match to print (as grep).
            return Ok(());
        }
        if self.as_they_are() {
            return add_to_run(b, gap.start..gap.start + region.len(), out, st);
        }
        let mut number = self.line_number(b, gap.start, st);
        for line in region.split_inclusive(|&c| c == b'\n') {
            self.prefix(out, st.name, number)?;
            self.line(out, without_newline(line), false)?;
            number = number.map(|n| n + 1);
        }
        // All the gap's lines are written: with --line-buffered, none waits in the buffer.
        self.line_done(out)
    }

    /// True if selected lines go out exactly as they are in the input: no prefix, no colour,
    /// no flush per line.
    fn as_they_are(&self) -> bool {
        !self.opts.line_number
            && !self.opts.with_name
            && self.colors.is_none()
            && !self.opts.line_buffered
    }

    /// True if this mode prints nothing per selected line (`-c`, `-l`, `-L`, `-q`). For `-l`,
    /// `-L` and `-q` one selected line is all there is to know: the input is done.
    fn nothing_per_line(&self, st: &mut Input<'_>) -> bool {
        match self.opts.mode {
            Mode::Lines => false,
            Mode::Count => true,
            Mode::FilesWith | Mode::FilesWithout | Mode::Quiet => {
                st.done = true;
                true
            }
        }
    }

    /// The number of the line starting at `start`, if `-n` asks for it.
    fn line_number(&self, b: &[u8], start: usize, st: &mut Input<'_>) -> Option<u64> {
        if !self.opts.line_number {
            return None;
        }
        st.counted += count_lines(&b[st.counted_to..start]);
        st.counted_to = start;
        Some(st.lines_before + st.counted + 1)
    }

    /// `name:` and `number:`, as asked for.
    fn prefix(&self, out: &mut impl Write, name: &[u8], number: Option<u64>) -> Result<()> {
        if self.opts.with_name {
            self.name_prefix(out, name)?;
        }
        let Some(n) = number else {
            return Ok(());
        };
        match &self.colors {
            None => write!(out, "{n}:").ctx("write", "stdout"),
            Some(c) => {
                c.start(out, &c.line_number)
                    .and_then(|()| write!(out, "{n}"))
                    .and_then(|()| c.end(out, &c.line_number))
                    .ctx("write", "stdout")?;
                self.paint(out, |c| &c.separator, b":")
            }
        }
    }

    /// `name:`, before a line or a count.
    fn name_prefix(&self, out: &mut impl Write, name: &[u8]) -> Result<()> {
        self.paint(out, |c| &c.file_name, name)?;
        self.paint(out, |c| &c.separator, b":")
    }

    /// `name` alone on a line (`-l`, `-L`).
    fn name_line(&self, out: &mut impl Write, name: &[u8]) -> Result<()> {
        self.paint(out, |c| &c.file_name, name)?;
        out.write_all(b"\n").ctx("write", "stdout")
    }

    /// A selected line's text (without its newline), then a newline. With `--color`, as GNU
    /// grep's prline does: each match in the match colour (unless `-v`: the line has none),
    /// the text before each in the line colour, and the rest of the line, but for a `\r`
    /// before the newline, in the line colour.
    fn line(&self, out: &mut impl Write, text: &[u8], matching: bool) -> Result<()> {
        let w = |out: &mut dyn Write, bytes: &[u8]| out.write_all(bytes).ctx("write", "stdout");
        let Some(c) = &self.colors else {
            w(out, text)?;
            return w(out, b"\n");
        };
        let line_color = if self.opts.invert && c.reverse {
            &c.context_line
        } else {
            &c.selected_line
        };
        let mut done = 0;
        if matching && !c.selected_match.is_empty() {
            self.matcher.matches(text, |m| {
                c.start(out, line_color).ctx("write", "stdout")?;
                w(out, &text[done..m.start])?;
                c.paint(out, &c.selected_match, &text[m.clone()])
                    .ctx("write", "stdout")?;
                done = m.end;
                Ok(())
            })?;
        }
        let tail_end = text.len() - usize::from(text.ends_with(b"\r"));
        if !line_color.is_empty() && tail_end > done {
            c.paint(out, line_color, &text[done..tail_end])
                .ctx("write", "stdout")?;
            done = tail_end;
        }
        w(out, &text[done..])?;
        w(out, b"\n")
    }

    /// Write `text` in the colour `which` picks, or as it is without `--color`.
    fn paint(
        &self,
        out: &mut impl Write,
        which: impl Fn(&Colors) -> &String,
        text: &[u8],
    ) -> Result<()> {
        match &self.colors {
            Some(c) => c.paint(out, which(c), text),
            None => out.write_all(text),
        }
        .ctx("write", "stdout")
    }

    /// After a line of output: with `--line-buffered`, it goes out now.
    fn line_done(&self, out: &mut impl Write) -> Result<()> {
        if self.opts.line_buffered {
            out.flush().ctx("write", "stdout")?;
        }
        Ok(())
    }
}

/// Selected lines `range` without a prefix: added to the run of adjacent lines waiting to be
/// written in one piece, or, if not adjacent, the run is written and a new one starts.
fn add_to_run(
    b: &[u8],
    range: Range<usize>,
    out: &mut impl Write,
    st: &mut Input<'_>,
) -> Result<()> {
    if st.run.end == range.start && !st.run.is_empty() {
        st.run.end = range.end;
        return Ok(());
    }
    let run = std::mem::replace(&mut st.run, range);
    write_lines(&b[run], out)
}

/// The newlines in `b`. A plain loop, which the compiler vectorises.
fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// A line without its newline.
fn without_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Write whole lines, adding the newline a last line at EOF may lack (as grep does).
fn write_lines(region: &[u8], out: &mut impl Write) -> Result<()> {
    if region.is_empty() {
        return Ok(());
    }
    out.write_all(region).ctx("write", "stdout")?;
    if region.last() != Some(&b'\n') {
        out.write_all(b"\n").ctx("write", "stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grep::pattern::Flags;

    fn grep(pattern: &str, input: &[u8], opts: Options) -> (String, u64) {
        let m = Matcher::new(&[pattern.to_owned()], Flags::default()).unwrap();
        let mut s = Searcher::new(m, opts, None);
        let mut out = Vec::new();
        let n = s.search(input, &mut out, "f").unwrap();
        (String::from_utf8(out).unwrap(), n)
    }

    fn opts(mode: Mode, invert: bool) -> Options {
        Options {
            mode,
            invert,
            line_number: false,
            only_matching: false,
            max_count: None,
            with_name: false,
            line_buffered: false,
        }
    }

    #[test]
    fn selects_whole_lines() {
        let input = b"a.txt\nb.md\nc.txt\nd.txt.gz\ne.txt";
        let lines = opts(Mode::Lines, false);
        assert_eq!(grep("txt$", input, lines).0, "a.txt\nc.txt\ne.txt\n");
        assert_eq!(
            grep(
                "txt$",
                input,
                Options {
                    invert: true,
                    ..lines
                }
            )
            .0,
            "b.md\nd.txt.gz\n"
        );
        assert_eq!(grep("txt$", input, opts(Mode::Count, false)).0, "3\n");
        assert_eq!(grep("txt$", input, opts(Mode::Count, true)).0, "2\n");
    }

    #[test]
    fn numbers_and_max_count() {
        let input = b"a\nb\na\nb\na\n";
        let n = Options {
            line_number: true,
            ..opts(Mode::Lines, false)
        };
        assert_eq!(grep("a", input, n).0, "1:a\n3:a\n5:a\n");
        assert_eq!(
            grep("a", input, Options { invert: true, ..n }).0,
            "2:b\n4:b\n"
        );
        let m2 = Options {
            max_count: Some(2),
            ..n
        };
        assert_eq!(grep("a", input, m2).0, "1:a\n3:a\n");
        assert_eq!(
            grep(
                "a",
                input,
                Options {
                    invert: true,
                    max_count: Some(1),
                    ..n
                }
            )
            .0,
            "2:b\n"
        );
        let gap = Options {
            invert: true,
            max_count: Some(2),
            ..opts(Mode::Lines, false)
        };
        assert_eq!(grep("x", input, gap), ("a\nb\n".to_owned(), 2));
    }

    #[test]
    fn empty_lines_and_empty_matches() {
        let input = b"\na\n\n";
        assert_eq!(grep("^$", input, opts(Mode::Count, false)).0, "2\n");
        assert_eq!(grep("", input, opts(Mode::Count, false)).0, "3\n");
        assert_eq!(grep("", b"", opts(Mode::Count, false)).0, "0\n");
    }

    #[test]
    fn non_utf8_input_is_fine() {
        let input = b"\xff\xfe txt\nok\n";
        assert_eq!(grep("txt$", input, opts(Mode::Count, false)).1, 1);
        assert_eq!(grep("^.. txt$", input, opts(Mode::Count, false)).1, 1);
    }
}
