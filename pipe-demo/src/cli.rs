//! The command line: one subcommand per role, `demo` (the filter scenario) when none is given.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  pipe-demo                                  # the same as `pipe-demo demo`: ls -l DIR | grep 'txt$', by hand
  pipe-demo demo -v --dir /etc --pattern 'conf$'
  ls -l | pipe-demo grep 'txt$'              # a filter for shell scripts (exit 0/1/2 like grep)
  pipe-demo pipeline 'ps aux' 'grep -c ps'   # ps aux | grep -c ps, built with pipe2/fork/dup2/execv
  pipe-demo pipeline --pipefail 'false' 'cat'; echo $?
  pipe-demo pager 'ls -l /usr/bin'           # through $PAGER (default less) on a terminal";

/// Anonymous pipes by hand: pipe2, fork, dup2, close, execv, waitpid.
///
/// With no subcommand, `pipe-demo` runs `demo`: the filter scenario, played and checked.
#[derive(Debug, Parser)]
#[command(name = "pipe-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate every pipe2/fork/dup2/close/execv/waitpid of the default `demo` and of every
    /// process it starts, on stderr (each subcommand also takes -v after its name; grep takes
    /// --trace, since its -v is --invert-match).
    #[arg(short = 'v', long)]
    pub trace: bool,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The roles.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The scenario (the default): filter `ls -l DIR` through a pipe by hand, print the lines
    /// matching PATTERN, reap ls, and check the result against `ls -l DIR | grep -E PATTERN`.
    #[command(
        visible_alias = "filter",
        after_help = "\
Examples:
  pipe-demo                                     # the same as `pipe-demo demo`
  pipe-demo demo --dir /etc --pattern 'conf$'   # the scenario on your own directory
  pipe-demo demo --plain --dir /etc --pattern 'conf$'   # just the lines, exit 0/1 like grep
  pipe-demo demo -v 2>trace.txt                 # every call of every process, in order"
    )]
    Demo(FilterArgs),
    /// Print the lines of FILEs (or stdin) that match PATTERN, like LC_ALL=C grep, with
    /// grep's flags (-q -s -e -f -G -E -F -i -v -w -x -c -n -o -l -L -H -h -m -a --color
    /// --line-buffered). PATTERN is a basic regular expression, as in GNU grep. Exit 0 if a
    /// line was selected, 1 if none, 2 on error.
    Grep(GrepArgs),
    /// Run 'CMD ARGS' | 'CMD ARGS' | ... without a shell; exit with the last stage's status.
    #[command(after_help = "\
Examples:
  pipe-demo pipeline 'ps aux' 'grep pipe-demo' 'wc -l'   # ps aux | grep pipe-demo | wc -l
  pipe-demo pipeline --pipefail 'false' 'true'; echo $?  # 1, as bash -o pipefail
  pipe-demo pipeline -v 'seq 3' 'wc -l'                  # each stage's fork, dup2, close, execv
  pipe-demo pipeline 'ls /proc/self/fd'                  # 0 1 2 3: no pipe end leaks into a stage")]
    Pipeline(PipelineArgs),
    /// Show CMD's output through $PAGER (default less); pass it through when stdout is not a
    /// terminal, or (with a warning) when $PAGER cannot run.
    #[command(after_help = "\
Examples:
  pipe-demo pager 'ls -l /usr/bin'              # through $PAGER (default less) on a terminal
  PAGER='less -S' pipe-demo pager 'ps aux'      # $PAGER is split into words, as git does
  pipe-demo pager 'ls -l /usr/bin' | head -3    # not a terminal: no pager, passed through")]
    Pager(PagerArgs),
}

impl Command {
    /// The role's name in the trace.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Grep(_) => "grep",
            Command::Pipeline(_) => "pipeline",
            Command::Pager(_) => "pager",
        }
    }

    /// True if the subcommand's own trace flag is set.
    pub fn trace(&self) -> bool {
        match self {
            Command::Demo(a) => a.trace,
            Command::Grep(a) => a.trace,
            Command::Pipeline(a) => a.trace,
            Command::Pager(a) => a.trace,
        }
    }
}

/// The pattern `demo` uses unless told otherwise.
pub const DEFAULT_PATTERN: &str = "txt$";

/// Arguments of `demo` (alias `filter`).
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// The directory to list [default: a temporary one, made, filled and removed by the demo].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The regex (Rust syntax, close to grep -E) a line must match.
    #[arg(long, default_value = DEFAULT_PATTERN, allow_hyphen_values = true)]
    pub pattern: String,
    /// Print only the matching lines, no steps and no check; exit 0 if a line matched, 1 if
    /// none, 2 if ls failed (like `ls -l DIR | grep PATTERN`).
    #[arg(long)]
    pub plain: bool,
    /// Narrate the parent's pipe2/fork/read/waitpid, ls's dup2/close/execv between fork and
    /// exec, and the step-8 reference pipeline's stages, on stderr.
    #[arg(short = 'v', long)]
    pub trace: bool,
}

impl Default for FilterArgs {
    /// `pipe-demo` with no arguments: the scenario with its temporary directory.
    fn default() -> Self {
        FilterArgs {
            dir: None,
            pattern: DEFAULT_PATTERN.to_owned(),
            plain: false,
            trace: false,
        }
    }
}

/// Examples for `pipe-demo grep --help`.
const GREP_EXAMPLES: &str = "\
Examples:
  ls -l | pipe-demo grep 'txt$'                 # the lines that end in txt
  pipe-demo grep -c -i error app.log            # how many lines mention error, any case
  pipe-demo grep -n -w -e main -e init src/*.rs # whole words, with file names and numbers
  pipe-demo grep -q root /etc/passwd && echo yes
  xargs pipe-demo grep -h -F 'TODO(' < files    # -h: no file names, as in grep
  pipe-demo grep -o '[0-9]\\+ ms' -m 5 bench.log # only the matches, of the first 5 lines
  pipe-demo grep -E -o '[0-9]+ ms' bench.log    # the same in -E syntax
  pipe-demo grep --color=always 'err\\|warn' log | less -R
Syntax: PATTERN is a basic regular expression (BRE), read as GNU grep reads it (-G, the
default): \\+ \\? \\| \\( \\) \\{m,n\\} are operators, while + ? | ( ) { alone are ordinary
characters; \\< \\> \\b \\B \\w \\W \\s \\S, and bracket expressions with classes like [:alpha:].
-E: the regex crate's syntax, grep -E's for common patterns (but a backslash in brackets
escapes, \\d is a digit, and a { that starts no count is an error). -F: fixed strings.
Not supported: back-references (\\(x\\)\\1 is an error, exit 2, that names it).
-o and --color show the leftmost-longest match, as GNU grep does.
--color=always writes GNU grep's escape sequences in its default colours; GREP_COLORS is
read as GNU grep reads it, and GREP_COLOR (deprecated) with GNU grep's warning.
Exit status: 0 if a line was selected, 1 if none, 2 on error (0 with -q once a line is
selected). The input is bytes, as with LC_ALL=C; every input is text, so -a changes
nothing. --help has no short form: -h is grep's --no-filename.";

/// When `--color` highlights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Never (also no, none).
    #[value(alias = "no", alias = "none")]
    Never,
    /// Always, even into a pipe (also yes, force).
    #[value(alias = "yes", alias = "force")]
    Always,
    /// When stdout is a terminal and TERM is not dumb (also tty, if-tty).
    #[value(alias = "tty", alias = "if-tty")]
    Auto,
}

/// Arguments of `grep`: GNU grep's flags that scripts use, with its meanings.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    after_help = GREP_EXAMPLES,
    // `-E -E` is fine, as in grep; `-E -F` is not ("conflicting matchers").
    args_override_self = true,
    group(ArgGroup::new("syntax").args(["basic_regexp", "extended_regexp", "fixed_strings"]))
)]
pub struct GrepArgs {
    /// PATTERN, then the FILEs to search (none or `-` means stdin). With -e or -f, every
    /// operand is a FILE.
    #[arg(value_name = "PATTERN | FILE")]
    pub operands: Vec<String>,
    /// Use PATTERN (repeatable; a line is selected if any pattern matches).
    #[arg(
        short = 'e',
        long = "regexp",
        value_name = "PATTERN",
        allow_hyphen_values = true
    )]
    pub regexp: Vec<String>,
    /// Read patterns from FILE, one per line (`-` is stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub pattern_files: Vec<String>,
    /// The patterns are basic regular expressions, as in GNU grep (the default).
    #[arg(short = 'G', long)]
    pub basic_regexp: bool,
    /// The patterns are extended regexes, in the regex crate's syntax (close to grep -E).
    #[arg(short = 'E', long)]
    pub extended_regexp: bool,
    /// The patterns are fixed strings, not regexes.
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,
    /// Ignore case (ASCII letters).
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Select the lines that do NOT match.
    #[arg(short = 'v', long)]
    pub invert_match: bool,
    /// Match only whole words (bounded by non-word bytes or the line's edges).
    #[arg(short = 'w', long)]
    pub word_regexp: bool,
    /// Match only whole lines.
    #[arg(short = 'x', long)]
    pub line_regexp: bool,
    /// Print only the number of selected lines (per file).
    #[arg(short = 'c', long)]
    pub count: bool,
    /// Print the line number before each line.
    #[arg(short = 'n', long)]
    pub line_number: bool,
    /// Print only the matches (non-empty), one per line.
    #[arg(short = 'o', long)]
    pub only_matching: bool,
    /// Print only the names of files with a selected line.
    #[arg(short = 'l', long)]
    pub files_with_matches: bool,
    /// Print only the names of files with no selected line.
    #[arg(short = 'L', long)]
    pub files_without_match: bool,
    /// Print nothing; exit 0 at the first selected line.
    #[arg(short = 'q', long, visible_alias = "silent")]
    pub quiet: bool,
    /// Say nothing about missing or unreadable files (the exit status still tells).
    #[arg(short = 's', long)]
    pub no_messages: bool,
    /// Prefix every line with its file name [default: when searching several files].
    #[arg(short = 'H', long, overrides_with = "no_filename")]
    pub with_filename: bool,
    /// Never prefix lines with file names.
    #[arg(short = 'h', long, overrides_with = "with_filename")]
    pub no_filename: bool,
    /// Stop reading a file after NUM selected lines.
    #[arg(short = 'm', long, value_name = "NUM")]
    pub max_count: Option<u64>,
    /// Search binary files as text: accepted and changes nothing, as every input is text here.
    #[arg(short = 'a', long)]
    pub text: bool,
    /// Flush the output after every line, not when its buffer fills (it is also flushed
    /// whenever the input pauses).
    #[arg(long)]
    pub line_buffered: bool,
    /// Highlight matches, file names, line numbers and separators as GNU grep does
    /// (GREP_COLORS); --color alone means auto.
    #[arg(
        long,
        visible_alias = "colour",
        value_name = "WHEN",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "auto",
        default_value = "never"
    )]
    pub color: ColorWhen,
    /// Narrate each input read and the search strategy picked (which literal is looked for
    /// with memmem), on stderr (long only: -v is --invert-match, as in grep).
    #[arg(long)]
    pub trace: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Arguments of `pipeline`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Exit with the status of the rightmost stage that failed (bash's `set -o pipefail`).
    #[arg(long)]
    pub pipefail: bool,
    /// The stages, one quoted command line each: 'ls -l' 'grep txt' 'wc -l'. Split into words
    /// like a shell would (quotes, backslashes); no shell runs, so no $VAR, globs or redirects.
    #[arg(required = true, value_name = "'CMD ARGS'")]
    pub stages: Vec<String>,
    /// Narrate each pipe2, fork and waitpid, and each stage's dup2/close/execv between fork
    /// and exec, on stderr (the programs the stages run inherit it: IPC_DEMO_TRACE=1).
    #[arg(short = 'v', long)]
    pub trace: bool,
}

/// Arguments of `pager`.
#[derive(Debug, Args)]
pub struct PagerArgs {
    /// The command whose output to page, as one quoted command line.
    #[arg(default_value = "ls -l", value_name = "'CMD ARGS'")]
    pub cmd: String,
    /// Narrate the isatty check, the signal dispositions, and the two-stage pipeline (CMD |
    /// $PAGER) as `pipeline -v` does, on stderr.
    #[arg(short = 'v', long)]
    pub trace: bool,
}
