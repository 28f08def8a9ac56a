//! Man pages and shell completions, generated from a binary's own clap definition.
//!
//! Every binary takes `--generate KIND`, as ripgrep's `rg --generate` does, and prints one
//! of these on stdout:
//!
//! | KIND | output | `make install` puts it in `$(DESTDIR)$(PREFIX)/…` |
//! |------|--------|----------------------------------------------------|
//! | `man` | the man page, roff for `man -l -` | `share/man/man1/NAME.1` |
//! | `complete-bash` | a bash completion script | `share/bash-completion/completions/NAME` |
//! | `complete-zsh` | a zsh completion function | `share/zsh/site-functions/_NAME` |
//! | `complete-fish` | fish completions | `share/fish/vendor_completions.d/NAME.fish` |
//!
//! Generating them from the parser rather than writing them by hand means they cannot drift
//! from what the binary accepts: a flag added to `cli.rs` is in the next man page and the next
//! completion script. The files are produced by the installed binary itself at install time
//! (the root `Makefile`'s `install` target), so nothing generated is kept in the repository.
//!
//! # One man page per binary
//!
//! `clap_mangen` on its own renders a page that lists the subcommands as references to pages
//! of their own (`pipe-demo-grep(1)`), which `--generate man` (one stream on stdout) could not
//! also print. So [`Kind::Man`] renders one page per binary, in which each subcommand has a
//! section (`.SS pipe-demo grep`) with its description, synopsis, options and examples:
//! `man pipe-demo` is the whole manual, searchable with `/` for any role's flag. The
//! `--generate` option itself is hidden from `--help` (it is for packagers, not for running a
//! demo) and documented in the man page, as ripgrep does.
//!
//! # Wiring it into a binary
//!
//! The top-level parser flattens [`GenerateArgs`], and `main` handles it before anything else
//! runs (no handler installed, no runtime directory made):
//!
//! ```
//! use clap::{CommandFactory, Parser};
//!
//! #[derive(Parser)]
//! #[command(name = "demo-x", version)]
//! struct Cli {
//!     #[command(flatten)]
//!     generate: common::generate::GenerateArgs,
//! }
//!
//! let cli = Cli::parse_from(["demo-x", "--generate", "complete-bash"]);
//! if let Some(kind) = cli.generate.kind {
//!     let mut script = Vec::new();
//!     common::generate::write(Cli::command(), kind, &mut script).unwrap();
//!     assert!(String::from_utf8(script).unwrap().contains("complete -F _demo__x"));
//!     // In main: return common::error::finish("demo-x", common::generate::run(Cli::command(), kind));
//! }
//! ```
//!
//! The flag is `exclusive`: it refuses company (`pipe-demo -v --generate man` is a usage
//! error), so an output meant for a file is never mixed with a role's. Each binary's
//! integration test runs `check::binary` (feature `test-support`) on the real binary: the page
//! renders under `groff -ww`, and bash, fed the script, completes every subcommand.
//!
//! # Pitfall: clap_complete's bash script and hyphenated names
//!
//! For a program whose name has a hyphen (all of ours), clap_complete's bash script completes
//! nothing after a subcommand (`pipe-demo grep --cou<TAB>`): its states are spelled two ways.
//! [`write()`] relabels them; see `fix_bash_states`.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, Command, ValueEnum};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use crate::error::{Context, Result};

/// What `--generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// The man page (roff), to read with `man -l -` or install as `NAME.1`.
    Man,
    /// A bash completion script (bash-completion's `completions/NAME`).
    CompleteBash,
    /// A zsh completion function (`site-functions/_NAME`).
    CompleteZsh,
    /// Fish completions (`vendor_completions.d/NAME.fish`).
    CompleteFish,
}

/// The id of the `--generate` argument in every binary's parser.
const ARG_ID: &str = "generate";

/// The `--generate KIND` option, flattened into a binary's top-level parser.
#[derive(Args, Debug, Clone, Default)]
pub struct GenerateArgs {
    /// Print this program's man page or a completion script for a shell on stdout, and exit.
    /// `make install` installs all of them; by hand: `NAME --generate man | man -l -`.
    #[arg(
        id = ARG_ID,
        long = "generate",
        value_enum,
        value_name = "KIND",
        hide = true,
        exclusive = true
    )]
    pub kind: Option<Kind>,
}

/// Print `kind` for `cmd` on stdout, with the sections every man page has ([`Manual`]'s
/// defaults: EXIT STATUS, and ENVIRONMENT with `IPC_DEMO_TRACE`). For `main`:
/// `return common::error::finish("NAME", common::generate::run(Cli::command(), kind));`
///
/// A reader that goes away (`--generate man | head`) is a broken pipe, which
/// [`crate::error::finish`] turns into a quiet exit 0.
pub fn run(cmd: Command, kind: Kind) -> Result<ExitCode> {
    run_with(cmd, kind, &Manual::default())
}

/// [`run`], with what this binary's man page says beyond its clap definition (see
/// [`Manual`]).
pub fn run_with(cmd: Command, kind: Kind, manual: &Manual<'_>) -> Result<ExitCode> {
    // Rendered whole first: the generators panic on a failed write, and a short write to a
    // closed pipe must be an error we report, not a panic.
    let mut text = Vec::new();
    write_with(cmd, kind, manual, &mut text)
        .ctx("render", format!("--generate {}", kind.name()))?;
    crate::out::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Render `kind` for `cmd` into `out`, with [`Manual`]'s defaults. The program's name is
/// `cmd`'s name.
pub fn write(cmd: Command, kind: Kind, out: &mut dyn Write) -> io::Result<()> {
    write_with(cmd, kind, &Manual::default(), out)
}

/// [`write()`], with `manual`'s sections in the man page.
pub fn write_with(
    mut cmd: Command,
    kind: Kind,
    manual: &Manual<'_>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let shell = match kind {
        Kind::Man => return man(cmd, manual, out),
        Kind::CompleteBash => Shell::Bash,
        Kind::CompleteZsh => Shell::Zsh,
        Kind::CompleteFish => Shell::Fish,
    };
    let name = cmd.get_name().to_owned();
    // Into a buffer: clap_complete panics if a write to `out` fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name.as_str(), &mut script);
    if shell == Shell::Bash {
        let fixed = fix_bash_states(&String::from_utf8_lossy(&script), &name);
        return out.write_all(fixed.as_bytes());
    }
    out.write_all(&script)
}

/// What a binary's man page says beyond its clap definition: the sections man-pages(7) puts
/// after the options, which no parser knows. Every page has EXIT STATUS (the workspace's one
/// table, [`EXIT_STATUS`], see [`crate::error`]) and ENVIRONMENT with [`ENV_TRACE`]; a binary
/// adds its own rows:
///
/// ```
/// use common::generate::{ENV_NOTIFY_SOCKET, ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};
///
/// const MANUAL: Manual<'static> = Manual {
///     exit_status: &[],
///     environment: &[ENV_RUNTIME_DIR, ENV_NOTIFY_SOCKET],
///     files: &[FILE_RUNTIME_DIR, ("RUNTIME_DIR/log.fifo", "The daemon's FIFO.")],
///     see_also: &["fifo(7)", "mkfifo(3)"],
/// };
/// // In main: common::generate::run_with(Cli::command(), kind, &MANUAL)
/// ```
///
/// Rows are (term, text); the text is plain prose, with `code` in backticks, which the page
/// shows in bold (a man page has no backticks).
#[derive(Clone, Copy, Debug, Default)]
pub struct Manual<'a> {
    /// Statuses of this binary's own, after the shared four (`pipe-demo grep`: 1, no line
    /// matched).
    pub exit_status: &'a [(&'a str, &'a str)],
    /// Environment variables it reads, after [`ENV_TRACE`], which every binary reads.
    pub environment: &'a [(&'a str, &'a str)],
    /// Files and directories it makes or reads.
    pub files: &'a [(&'a str, &'a str)],
    /// Related pages, `name(section)`: `fifo(7)`.
    pub see_also: &'a [&'a str],
}

/// The exit statuses every binary gives (see [`crate::error`], "Exit status").
pub const EXIT_STATUS: [(&str, &str); 4] = [
    (
        "0",
        "Done: the operation succeeded, the check held, or a daemon asked to stop has stopped. \
         Also when the reader of the output went away (a broken pipe, as in `| head -1`).",
    ),
    (
        "1",
        "The check or the operation failed; standard error says why, on one line.",
    ),
    ("2", "Bad usage: an unknown option, a missing or bad value."),
    (
        "128+N",
        "Stopped by signal N before it finished, after cleaning up: 129 for SIGHUP, 130 for \
         SIGINT (Ctrl-C), 143 for SIGTERM. A second signal during that cleanup exits at once \
         with the same status and skips the rest of it.",
    ),
];

/// `IPC_DEMO_TRACE`, which every binary reads (see [`crate::narrate`]).
pub const ENV_TRACE: (&str, &str) = (
    crate::narrate::ENV,
    "If 1, narrate every IPC call on standard error, as `-v` does. A process that traces sets \
     it for the processes it starts, so one `-v` narrates a whole demo.",
);

/// `XDG_RUNTIME_DIR`: where the named objects live (see [`crate::names`]).
pub const ENV_RUNTIME_DIR: (&str, &str) = (
    "XDG_RUNTIME_DIR",
    "The directory under which the private runtime directory `ipc-demo` is made (mode 0700). \
     Unset or relative: `/tmp/ipc-demo-$UID` is used instead.",
);

/// `NOTIFY_SOCKET`, for a binary with a daemon (see [`crate::lifecycle`]).
pub const ENV_NOTIFY_SOCKET: (&str, &str) = (
    crate::lifecycle::NOTIFY_SOCKET,
    "Set by a service manager (systemd `Type=notify`): the daemon sends `READY=1` there once \
     it is ready and `STOPPING=1` when it stops. One it cannot reach is an error at start. \
     The processes a demo starts do not inherit it.",
);

/// The private runtime directory (see [`crate::names`]), which the other FILES rows call
/// `RUNTIME_DIR`.
pub const FILE_RUNTIME_DIR: (&str, &str) = (
    "$XDG_RUNTIME_DIR/ipc-demo/, /tmp/ipc-demo-$UID/",
    "RUNTIME_DIR below: the private runtime directory (mode 0700, refused if it is not ours \
     or open to others), where the named objects live. `make clean-ipc` removes what a killed \
     process left there.",
);

/// Works around clap_complete's bash bug for a program whose name has a hyphen (clap issue
/// #6421, open as of clap_complete 4.6): its loop over the words names the state of
/// `pipe-demo grep` `pipe__demo__subcmd__grep`, but the `case` arm that completes grep's
/// options is labelled `pipe__subcmd__demo__subcmd__grep`, so no arm matches and nothing after
/// a subcommand completes. The arms are relabelled the way the loop spells them. Once clap
/// spells them alike, the wrong label no longer occurs and this changes nothing.
fn fix_bash_states(script: &str, name: &str) -> String {
    const SEP: &str = "__subcmd__";
    if !name.contains('-') {
        return script.to_owned();
    }
    let wrong = format!("{}{SEP}", name.replace('-', SEP));
    let right = format!("{}{SEP}", name.replace('-', "__"));
    script.replace(&wrong, &right)
}

impl Kind {
    /// The value as it is spelled on the command line (`complete-bash`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Man => "man",
            Kind::CompleteBash => "complete-bash",
            Kind::CompleteZsh => "complete-zsh",
            Kind::CompleteFish => "complete-fish",
        }
    }
}

/// The whole manual of one binary: clap_mangen's sections for the top-level command, then one
/// section per subcommand (see the module docs for why one page).
fn man(cmd: Command, manual: &Manual<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut page = Vec::new();
    render_man(cmd, manual, &mut page)?;
    let page = once_only(&String::from_utf8_lossy(&page), AQ_PREAMBLE);
    out.write_all(ascii_roff(&code_in_bold(&page)).as_bytes())
}

/// Markdown's `code` spans, which our help texts use, in bold, as man-pages(7) sets literal
/// text: a man page shows a backtick as an opening quote, so `ready:` would read as
/// quoted with two opening quotes. Only whole pairs on one line are converted; a line with an
/// odd count keeps its last backtick (`check::man_page` refuses such a page, so that the help
/// text gets fixed).
fn code_in_bold(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for line in page.split_inclusive('\n') {
        let ticks = 2 * (line.matches('`').count() / 2);
        let mut seen = 0;
        for c in line.chars() {
            if c == '`' && seen < ticks {
                out.push_str(if seen % 2 == 0 { "\\fB" } else { "\\fR" });
                seen += 1;
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Roff input is ASCII: groff reads UTF-8 only through `preconv` (which `man` runs, and
/// `groff` without `-k` or mandoc may not), so every other character (`µs`, `→`, `…` in our
/// help texts) becomes groff's Unicode escape `\[u00B5]`.
fn ascii_roff(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// Each piece roff renders opens with these two lines (they define `\*(Aq`, an apostrophe
/// that groff will not turn into a curly quote); a page needs them once.
const AQ_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// `text` with every occurrence of `piece` after the first removed.
fn once_only(text: &str, piece: &str) -> String {
    match text.split_once(piece) {
        Some((head, tail)) => format!("{head}{piece}{}", tail.replace(piece, "")),
        None => text.to_owned(),
    }
}

/// The page's sections, in man-pages(7)'s order: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, then
/// SUBCOMMANDS, EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES (the `--help` epilogue), VERSION
/// and SEE ALSO.
fn render_man(cmd: Command, manual: &Manual<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Hidden from --help, documented here.
    if cmd.get_arguments().any(|a| a.get_id() == ARG_ID) {
        cmd = cmd.mut_arg(ARG_ID, |a| a.hide(false));
    }
    // Sets every subcommand's bin name (`pipe-demo grep`), which their synopses show.
    cmd.build();
    let name = cmd.get_name().to_owned();
    let page = Man::new(cmd.clone())
        .title(name.to_uppercase())
        .manual("ipc-demos");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;

    let subcommands: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subcommands.is_empty() {
        title(out, Level::Page, "Subcommands")?;
        for sub in subcommands {
            subcommand(sub, out)?;
        }
    }
    let exit_status: Vec<(&str, &str)> = EXIT_STATUS
        .iter()
        .chain(manual.exit_status)
        .copied()
        .collect();
    tagged_section(out, "EXIT STATUS", &exit_status)?;
    let environment: Vec<(&str, &str)> = std::iter::once(ENV_TRACE)
        .chain(manual.environment.iter().copied())
        .collect();
    tagged_section(out, "ENVIRONMENT", &environment)?;
    if !manual.files.is_empty() {
        tagged_section(out, "FILES", manual.files)?;
    }
    after_help(&cmd, Level::Page, out)?;
    page.render_version_section(out)?;
    see_also(out, manual.see_also)
}

/// A section of tagged paragraphs, one per (term, text) row: man-pages(7)'s way to set a
/// two-column table (`.TP`), which every formatter renders without `tbl`.
fn tagged_section(out: &mut dyn Write, title: &str, rows: &[(&str, &str)]) -> io::Result<()> {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    for (term, text) in rows {
        roff.control("TP", [])
            .text([bold(*term)])
            .text([roman(*text)]);
    }
    roff.to_writer(out)
}

/// SEE ALSO: `fifo(7)` as `\fBfifo\fR(7)`, comma-separated, as man-pages(7) asks.
fn see_also(out: &mut dyn Write, pages: &[&str]) -> io::Result<()> {
    if pages.is_empty() {
        return Ok(());
    }
    let mut line = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let (name, section) = page.split_once('(').unwrap_or((page, ""));
        line.push(bold(name));
        let section = if section.is_empty() {
            String::new()
        } else {
            format!("({section}")
        };
        let sep = if i + 1 < pages.len() { ", " } else { "" };
        line.push(roman(format!("{section}{sep}")));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]).text(line);
    roff.to_writer(out)
}

/// One subcommand's section: `.SS "pipe-demo grep"`, what it does, its synopsis, its options
/// under their headings, its aliases and its examples.
fn subcommand(sub: &Command, out: &mut dyn Write) -> io::Result<()> {
    let mut roff = Roff::new();
    roff.control("SS", [])
        .text([roman(sub.get_bin_name().unwrap_or_else(|| sub.get_name()))]);
    roff.to_writer(out)?;
    let page = Man::new(sub.clone());
    let mut body = Vec::new();
    page.render_description_section(&mut body)?;
    page.render_synopsis_section(&mut body)?;
    page.render_options_section(&mut body)?;
    demote(sub, &String::from_utf8_lossy(&body), out)?;
    let aliases: Vec<&str> = sub.get_visible_aliases().collect();
    if !aliases.is_empty() {
        let mut roff = Roff::new();
        roff.control("PP", [])
            .text([roman("Alias: "), bold(aliases.join(", "))]);
        roff.to_writer(out)?;
    }
    after_help(sub, Level::Subcommand, out)
}

/// Where a part of the manual goes: a section of the page, or a part of a subcommand's `.SS`.
#[derive(Clone, Copy)]
enum Level {
    Page,
    Subcommand,
}

/// A part's title: `.SH EXAMPLES` on the page, a bold `Examples:` paragraph in a subcommand.
fn title(out: &mut dyn Write, level: Level, text: &str) -> io::Result<()> {
    let mut roff = Roff::new();
    match level {
        Level::Page => roff.control("SH", [text.to_uppercase().as_str()]),
        Level::Subcommand => roff.control("PP", []).text([bold(format!("{text}:"))]),
    };
    roff.to_writer(out)
}

/// Inside a subcommand's `.SS`, the `.SH` headings clap_mangen gives each part become
/// paragraphs: `.SH DESCRIPTION` and `.SH SYNOPSIS` plain ones (the `.SS` names the command),
/// `.SH OPTIONS` (or a help heading such as `.SH "OUTPUT CONTROL"`) a bold lead-in as `--help`
/// spells it. Roff escapes a text line that starts with a dot, so a line that starts with
/// `.SH ` is always a heading.
fn demote(sub: &Command, roff: &str, out: &mut dyn Write) -> io::Result<()> {
    for line in roff.lines() {
        match line.strip_prefix(".SH ") {
            Some("DESCRIPTION" | "SYNOPSIS") => out.write_all(b".PP\n")?,
            Some("OPTIONS") => title(out, Level::Subcommand, "Options")?,
            Some(upper) => {
                let upper = upper.trim_matches('"');
                let heading = sub
                    .get_arguments()
                    .filter_map(|a| a.get_help_heading())
                    .find(|h| h.to_uppercase() == upper)
                    .unwrap_or(upper);
                title(out, Level::Subcommand, heading)?;
            }
            None => writeln!(out, "{line}")?,
        }
    }
    Ok(())
}

/// The text `--help` shows after the options. Ours open with `Examples:`, which becomes the
/// part's title; the rest keeps its terminal layout (aligned `# comments`), line for line, in
/// an indented no-fill block.
fn after_help(cmd: &Command, level: Level, out: &mut dyn Write) -> io::Result<()> {
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return Ok(());
    };
    let text = text.to_string();
    let body = match (text.split_once('\n'), level) {
        (Some((first, rest)), _) if first.ends_with(':') => {
            title(out, level, first.trim_end_matches(':'))?;
            rest
        }
        (_, Level::Page) => {
            title(out, level, "Notes")?;
            &text
        }
        (_, Level::Subcommand) => &text,
    };
    let indent = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut roff = Roff::new();
    roff.control("PP", [])
        .control("RS", ["2"])
        .control("nf", []);
    for line in body.lines() {
        roff.text([roman(line.get(indent..).unwrap_or(""))]);
    }
    roff.control("fi", []).control("RE", []);
    roff.to_writer(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    /// A parser shaped like the demos': a global flag, optional subcommands with options,
    /// an alias, a help heading and examples after the help.
    #[derive(Parser, Debug)]
    #[command(
        name = "demo-x",
        version,
        after_help = "Examples:\n  demo-x serve --port 1\n  demo-x"
    )]
    struct Cli {
        /// Narrate each call.
        #[arg(short = 'v', long = "trace", global = true)]
        trace: bool,
        #[command(flatten)]
        generate: GenerateArgs,
        #[command(subcommand)]
        role: Option<Role>,
    }

    #[derive(Subcommand, Debug)]
    enum Role {
        /// Play the whole scenario.
        Demo,
        /// Serve requests on a port (answers in µs; prints `ready: pid N tcp ADDR`).
        #[command(
            visible_alias = "srv",
            after_help = "Example:\n  demo-x serve --port 6380"
        )]
        Serve {
            /// The port to listen on.
            #[arg(long, default_value_t = 6380)]
            port: u16,
            /// Print only a count of lines.
            #[arg(short = 'c', long, help_heading = "Output control")]
            count: bool,
        },
        /// Serve datagrams (a hyphen in a subcommand's name, as socket-demo has).
        DgramServer {
            /// The socket's path.
            #[arg(long)]
            path: Option<String>,
        },
        /// Hidden plumbing.
        #[command(hide = true)]
        Worker,
    }

    fn render(kind: Kind) -> String {
        let mut out = Vec::new();
        write(Cli::command(), kind, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_flag_takes_ripgreps_kinds_and_wants_to_be_alone() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("demo-x").chain(args.iter().copied()))
        };
        for kind in Kind::value_variants() {
            let cli = parse(&["--generate", kind.name()]).unwrap();
            assert_eq!(cli.generate.kind, Some(*kind));
        }
        assert!(parse(&[]).unwrap().generate.kind.is_none());
        let err = parse(&["--generate", "complete-tcsh"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("complete-fish"), "{err}");
        assert_eq!(
            parse(&["-v", "--generate", "man"]).unwrap_err().exit_code(),
            2
        );
        // Hidden from --help, which is for running the program.
        let help = Cli::command().render_long_help().to_string();
        assert!(!help.contains("--generate"), "{help}");
    }

    #[test]
    fn man_page_documents_every_visible_subcommand_in_one_page() {
        let page = render(Kind::Man);
        assert!(page.contains("\n.TH DEMO-X 1 "), "{page}");
        assert_eq!(page.matches(AQ_PREAMBLE).count(), 1, "{page}");
        assert!(page.is_ascii() && page.contains("in \\[u00B5]s"), "{page}");
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH SUBCOMMANDS",
            ".SH EXAMPLES",
        ] {
            assert!(page.contains(section), "no {section} in:\n{page}");
        }
        // Each subcommand has its own section, with its options and examples.
        assert!(page.contains(".SS\ndemo\\-x demo\n"), "{page}");
        assert!(page.contains(".SS\ndemo\\-x serve\n"), "{page}");
        assert!(page.contains("\\-\\-port"), "{page}");
        assert!(page.contains("\\fBOutput control:\\fR"), "{page}");
        assert!(page.contains("\\fBsrv\\fR"), "{page}");
        assert!(page.contains("demo\\-x serve \\-\\-port 6380"), "{page}");
        // Not the hidden one, nor clap's `help` subcommand; no heading left undemoted.
        assert!(!page.contains("worker"), "{page}");
        assert!(!page.contains("demo-x help"), "{page}");
        // The workspace's sections every page has; no FILES or SEE ALSO without a Manual.
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT"] {
            assert!(page.contains(section), "no {section} in:\n{page}");
        }
        assert!(page.contains("\\fBIPC_DEMO_TRACE\\fR"), "{page}");
        assert_eq!(page.matches(".SH ").count(), 9, "{page}");
        // A `code` span of the help text is bold, never backticks.
        assert!(page.contains("\\fBready: pid N tcp ADDR\\fR"), "{page}");
        // --generate is documented here, with its values, though --help hides it.
        assert!(page.contains("\\-\\-generate"), "{page}");
        assert!(page.contains("complete\\-bash"), "{page}");
    }

    #[test]
    fn a_manual_adds_its_rows_files_and_see_also() {
        let manual = Manual {
            exit_status: &[("3", "Nothing matched.")],
            environment: &[ENV_RUNTIME_DIR],
            files: &[
                FILE_RUNTIME_DIR,
                ("RUNTIME_DIR/x.sock", "The `demo-x` socket."),
            ],
            see_also: &["unix(7)", "socket(2)"],
        };
        let mut page = Vec::new();
        write_with(Cli::command(), Kind::Man, &manual, &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        check::man_page(&page, &["demo", "serve"]);
        let sections: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .collect();
        assert_eq!(
            sections,
            [
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "SUBCOMMANDS",
                "\"EXIT STATUS\"",
                "ENVIRONMENT",
                "FILES",
                "EXAMPLES",
                "VERSION",
                "\"SEE ALSO\""
            ],
            "man-pages(7)'s order"
        );
        // The shared statuses, then the binary's own, each a tagged paragraph.
        for term in ["0", "1", "2", "128+N", "3"] {
            assert!(
                page.contains(&format!(".TP\n\\fB{term}\\fR\n")),
                "{term}: {page}"
            );
        }
        assert!(page.contains("\\fBXDG_RUNTIME_DIR\\fR"), "{page}");
        assert!(page.contains("The \\fBdemo\\-x\\fR socket."), "{page}");
        assert!(
            page.contains("\\fBunix\\fR(7), \\fBsocket\\fR(2)"),
            "{page}"
        );
    }

    #[test]
    fn only_whole_pairs_of_backticks_become_bold() {
        assert_eq!(
            code_in_bold("a `b` c `d`\n`e` f`\n"),
            "a \\fBb\\fR c \\fBd\\fR\n\\fBe\\fR f`\n"
        );
    }

    #[test]
    fn man_page_renders_and_completions_complete() {
        let words = ["demo", "serve", "srv", "--port", "dgram-server"];
        check::man_page(&render(Kind::Man), &words);
        // `demo-x se<TAB>` offers serve, `demo-x serve --p<TAB>` --port: completion goes on
        // past a subcommand (see `fix_bash_states`).
        let bash = render(Kind::CompleteBash);
        assert_eq!(check::bash_complete(&bash, "demo-x", &["se"]), ["serve"]);
        assert_eq!(
            check::bash_complete(&bash, "demo-x", &["serve", "--p"]),
            ["--port"]
        );
        assert_eq!(
            check::bash_complete(&bash, "demo-x", &["dgram-server", "--pa"]),
            ["--path"]
        );
        if let Some(offered) = check::fish_complete(&render(Kind::CompleteFish), "demo-x serve --p")
        {
            assert_eq!(offered, ["--port"]);
        }
        for kind in [Kind::CompleteBash, Kind::CompleteZsh, Kind::CompleteFish] {
            check::completion(kind, &render(kind), "demo-x", &words);
        }
    }
}

/// Checks of a binary's `--generate` output, for its integration tests (feature
/// `test-support`): what a user of the installed files would notice.
#[cfg(any(test, feature = "test-support"))]
pub mod check {
    use std::ffi::OsStr;
    use std::process::{Command, Output};
    use std::time::Duration;

    use super::Kind;

    /// Generous: a check that reaches it has hung, on a machine busy with other tests.
    const DEADLINE: Duration = Duration::from_secs(60);

    /// Run the real binary with `--generate KIND` for every kind, and check each output with
    /// [`man_page`] and [`completion`]; then that bash (and fish, if installed) completes each
    /// of `words` from all but its last letter. `words` are what the first argument can be: the subcommands, or the
    /// options of a binary without any.
    pub fn binary(bin: impl AsRef<OsStr>, words: &[&str]) {
        let bin = bin.as_ref();
        let name = std::path::Path::new(bin)
            .file_name()
            .and_then(OsStr::to_str)
            .expect("the binary's path ends in a UTF-8 name");
        let (mut bash, mut fish) = (String::new(), String::new());
        for kind in <Kind as clap::ValueEnum>::value_variants() {
            let out = run(Command::new(bin).args(["--generate", kind.name()]), "")
                .unwrap_or_else(|| panic!("{name} is missing"));
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{name} --generate {}: {out:?}",
                kind.name()
            );
            let text = String::from_utf8(out.stdout).expect("the output is UTF-8");
            match kind {
                Kind::Man => man_page(&text, words),
                _ => completion(*kind, &text, name, words),
            }
            match kind {
                Kind::CompleteBash => bash = text,
                Kind::CompleteFish => fish = text,
                _ => {}
            }
        }
        for word in words {
            let partial = &word[..word.len() - 1];
            let offered = bash_complete(&bash, name, &[partial]);
            assert!(
                offered.iter().any(|w| w == word),
                "bash: {name} {partial}<TAB> offers {offered:?}, not {word}"
            );
            if let Some(offered) = fish_complete(&fish, &format!("{name} {partial}")) {
                assert!(
                    offered.iter().any(|w| w == word),
                    "fish: {name} {partial}<TAB> offers {offered:?}, not {word}"
                );
            }
        }
    }

    /// What a user of `bin` is offered, and nothing more: no test hook, no benchmark role.
    ///
    /// `surface` lists, for the program itself (`""`) and for each subcommand, every word
    /// bash completes after it (long options, subcommands, values; the short forms aside).
    /// Bash must complete exactly those; the subcommand's `--help` must list no option outside
    /// them; and the man page must have a section for each subcommand and no other. An option
    /// only tests use belongs behind a test-only environment variable or a cargo feature, and
    /// a benchmark under `bench/` or `benches/`: anything in a binary's help, man page or
    /// completions is something a user will try.
    pub fn offers_only(bin: impl AsRef<OsStr>, surface: &[(&str, &[&str])]) {
        let bin = bin.as_ref();
        let name = std::path::Path::new(bin)
            .file_name()
            .and_then(OsStr::to_str)
            .expect("the binary's path ends in a UTF-8 name");
        let generate = |kind: Kind| {
            let out = run(Command::new(bin).args(["--generate", kind.name()]), "")
                .unwrap_or_else(|| panic!("{name} is missing"));
            assert!(
                out.status.success(),
                "{name} --generate {}: {out:?}",
                kind.name()
            );
            String::from_utf8(out.stdout).expect("the output is UTF-8")
        };
        let bash = generate(Kind::CompleteBash);
        for (sub, want) in surface {
            let line = if sub.is_empty() {
                vec![""]
            } else {
                vec![*sub, ""]
            };
            let mut offered: Vec<String> = bash_complete(&bash, name, &line)
                .into_iter()
                .filter(|w| !(w.len() == 2 && w.starts_with('-')))
                .collect();
            offered.sort();
            let mut wanted: Vec<String> = want.iter().map(|w| (*w).to_owned()).collect();
            wanted.sort();
            assert_eq!(offered, wanted, "bash: {name} {sub} <TAB>");
            let args: Vec<&str> = [*sub, "--help"]
                .into_iter()
                .filter(|w| !w.is_empty())
                .collect();
            let out = run(Command::new(bin).args(&args), "").expect("the binary runs");
            assert!(out.status.success(), "{name} {args:?}: {out:?}");
            let help = String::from_utf8_lossy(&out.stdout);
            for option in help_options(&help) {
                assert!(
                    want.contains(&option),
                    "{name} {sub} --help shows {option}: {help}"
                );
            }
        }
        let page = generate(Kind::Man);
        let mut sections: Vec<String> = page
            .split("\n.SS\n")
            .skip(1)
            .filter_map(|s| s.lines().next())
            .map(|title| title.replace("\\-", "-"))
            .filter_map(|title| Some(title.strip_prefix(name)?.trim().to_owned()))
            .collect();
        sections.sort();
        let mut subs: Vec<String> = surface
            .iter()
            .filter(|(sub, _)| !sub.is_empty())
            .map(|(sub, _)| (*sub).to_owned())
            .collect();
        subs.sort();
        assert_eq!(sections, subs, "the man page's subcommand sections");
    }

    /// The long options a `--help` text lists (`--fifo` of `  -f, --fifo <PATH>  ...`).
    fn help_options(help: &str) -> Vec<&str> {
        help.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| {
                l.split([' ', ',', '=', '[', '<'])
                    .find(|w| w.starts_with("--"))
            })
            .collect()
    }

    /// The page names every one of `words`, shows no Markdown backtick (a help text's `code`
    /// spans are set in bold; an unpaired backtick is a help text to fix), and groff (if
    /// installed) renders it without a warning.
    pub fn man_page(page: &str, words: &[&str]) {
        assert!(page.contains("\n.TH "), "no .TH in:\n{page}");
        if let Some(line) = page.lines().find(|l| l.contains('`')) {
            panic!("a backtick in the man page (unpaired in a help text?): {line:?}");
        }
        for word in words {
            // Roff spells a hyphen-minus `\-`.
            let roff = word.replace('-', "\\-");
            assert!(page.contains(&roff), "no {roff} in:\n{page}");
        }
        let groff = run(
            Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]),
            page,
        );
        match groff {
            Some(out) => assert!(
                out.status.success() && out.stderr.is_empty(),
                "groff: {out:?}"
            ),
            None => eprintln!("groff is not installed: the page's rendering is not checked"),
        }
    }

    /// A completion script for `kind` names the program and every one of `words` (fish spells
    /// `--port` as `-l port`), and its shell parses it (`bash -n`; `zsh -n` and `fish -n` where
    /// those shells are installed).
    pub fn completion(kind: Kind, script: &str, name: &str, words: &[&str]) {
        let (shell, header) = match kind {
            Kind::CompleteBash => ("bash", format!(" {name}\n")),
            Kind::CompleteZsh => ("zsh", format!("#compdef {name}\n")),
            Kind::CompleteFish => ("fish", format!("complete -c {name} ")),
            Kind::Man => panic!("a man page is not a completion script"),
        };
        assert!(script.contains(&header), "no {header:?} in:\n{script}");
        for word in words {
            let word = word.trim_start_matches('-');
            assert!(script.contains(word), "no {word} in:\n{script}");
        }
        match run(Command::new(shell).arg("-n"), script) {
            Some(out) => assert!(out.status.success(), "{shell} -n: {out:?}"),
            None if kind == Kind::CompleteBash => panic!("bash is not installed"),
            None => eprintln!("{shell} is not installed: its script's syntax is not checked"),
        }
    }

    /// What fish offers for `line<TAB>` with `script` loaded (`complete -C`), without the
    /// descriptions; `None` if fish is not installed.
    pub fn fish_complete(script: &str, line: &str) -> Option<Vec<String>> {
        let out = run(
            Command::new("fish").args(["-c", "source; complete -C $argv[1]", line]),
            script,
        )?;
        assert!(out.status.success(), "fish completion of {line:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        Some(
            text.lines()
                .map(|l| l.split('\t').next().unwrap_or("").to_owned())
                .collect(),
        )
    }

    /// What bash offers for `name WORDS…<TAB>` (the last word being completed) with `script`
    /// loaded, found through the function `complete -p name` names, as bash itself does.
    pub fn bash_complete(script: &str, name: &str, words: &[&str]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join(name);
        std::fs::write(&file, script).expect("write the script");
        let line = std::iter::once(name)
            .chain(words.iter().copied())
            .collect::<Vec<_>>();
        let complete = r#"source "$1" && spec=$(complete -p "$2") && function=${spec##*-F } &&
            function=${function%% *} && shift && COMP_WORDS=("$@") COMP_CWORD=$(($# - 1)) &&
            COMP_LINE="$*" COMP_POINT=${#COMP_LINE} &&
            "$function" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" &&
            printf '%s\n' "${COMPREPLY[@]}""#;
        let out = run(
            Command::new("bash")
                .args(["-c", complete, "bash"])
                .arg(&file)
                .args(&line),
            "",
        )
        .expect("bash is installed");
        assert!(out.status.success(), "bash completion of {line:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Run `cmd` with `input` on stdin, within the deadline; `None` if the program is not
    /// installed.
    fn run(cmd: &mut Command, input: &str) -> Option<Output> {
        let label = format!("{:?}", cmd.get_program());
        match crate::child::run(&label, cmd, input.as_bytes(), DEADLINE) {
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => None,
            other => Some(other.unwrap_or_else(|e| panic!("{e}"))),
        }
    }
}
