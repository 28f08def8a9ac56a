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

/// Print `kind` for `cmd` on stdout. For `main`:
/// `return common::error::finish("NAME", common::generate::run(Cli::command(), kind));`
///
/// A reader that goes away (`--generate man | head`) is a broken pipe, which
/// [`crate::error::finish`] turns into a quiet exit 0.
pub fn run(cmd: Command, kind: Kind) -> Result<ExitCode> {
    // Rendered whole first: the generators panic on a failed write, and a short write to a
    // closed pipe must be an error we report, not a panic.
    let mut text = Vec::new();
    write(cmd, kind, &mut text).ctx("render", format!("--generate {}", kind.name()))?;
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(&text)
        .and_then(|()| stdout.flush())
        .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Render `kind` for `cmd` into `out`. The program's name is `cmd`'s name.
pub fn write(mut cmd: Command, kind: Kind, out: &mut dyn Write) -> io::Result<()> {
    let shell = match kind {
        Kind::Man => return man(cmd, out),
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
fn man(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let mut page = Vec::new();
    render_man(cmd, &mut page)?;
    let page = once_only(&String::from_utf8_lossy(&page), AQ_PREAMBLE);
    out.write_all(ascii_roff(&page).as_bytes())
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
/// SUBCOMMANDS, EXAMPLES (the `--help` epilogue) and VERSION.
fn render_man(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
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
    after_help(&cmd, Level::Page, out)?;
    page.render_version_section(out)
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
        /// Serve requests on a port (answers in µs).
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
        assert_eq!(page.matches(".SH ").count(), 7, "{page}");
        // --generate is documented here, with its values, though --help hides it.
        assert!(page.contains("\\-\\-generate"), "{page}");
        assert!(page.contains("complete\\-bash"), "{page}");
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

    /// The page names every one of `words`, and groff (if installed) renders it without a
    /// warning.
    pub fn man_page(page: &str, words: &[&str]) {
        assert!(page.contains("\n.TH "), "no .TH in:\n{page}");
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
