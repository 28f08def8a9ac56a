//! The command line: one subcommand per role, `demo` when none is given.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use common::generate::{ENV_NOTIFY_SOCKET, ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

const EXAMPLES: &str = "\
Examples:
  fifo-demo                                  # play the whole scenario and check it
  fifo-demo daemon --log app.log             # terminal 1: the log daemon
  fifo-demo log disk almost full             # terminal 2: one record
  dmesg | fifo-demo log                      # one record per stdin line
  echo hello > \"$(fifo-demo path fifo)\"     # a plain shell writer (pid=?)
  mv app.log app.log.1; kill -HUP \"$(cat \"$(fifo-demo path pid-file)\")\"   # rotate";

/// A log daemon fed through a named pipe (FIFO) by many unrelated writer processes.
///
/// With no subcommand, `fifo-demo` runs `demo`: every role, played and checked.
#[derive(Parser, Debug)]
#[command(name = "fifo-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each IPC call on stderr, in the order of the calls: `[pid 4242 daemon]
    /// mkfifo(...)`; the processes a role starts narrate theirs too (IPC_DEMO_TRACE=1). Before
    /// or after the subcommand; each subcommand's help says what its `-v` shows.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the man page says beyond the parser (`fifo-demo --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[(
        "daemon",
        "fifo-demo daemon exits 0 on SIGTERM or SIGINT once it has drained the FIFO; 1 if \
         records were lost on the way (the log could not take them, or a stdout log nobody \
         read), which its last line on standard error counts; 143 or 130 on a second stop \
         signal during the drain. SIGHUP does not stop it: it reopens the log file (rotation), \
         and changes nothing with `--log -`.",
    )],
    environment: &[ENV_RUNTIME_DIR, ENV_NOTIFY_SOCKET],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "RUNTIME_DIR/log.fifo",
            "The daemon's FIFO when `--fifo` is not given: made 0600 by the daemon, removed when \
             it stops.",
        ),
        (
            "FIFO.pid",
            "The daemon's pid file, beside its FIFO unless `--pid-file` says otherwise: locked \
             while the daemon lives, so a leftover is told from a rival.",
        ),
        (
            "fifo-demo.log",
            "The log the daemon appends to when `--log` is not given, in the current directory \
             (made 0600).",
        ),
        (
            "RUNTIME_DIR/fifo-demo-PID-N-HEX.log, .log.1, .pid",
            "A demo run's two logs and its lock, removed when the run ends (the logs are kept \
             with `--keep` or a failed check). The next demo, `fifo-demo cleanup` and \
             `make clean-ipc` remove those of a run that died.",
        ),
    ],
    see_also: &[
        "fifo(7)",
        "mkfifo(3)",
        "pipe(7)",
        "open(2)",
        "poll(2)",
        "flock(2)",
        "logger(1)",
    ],
};

/// The roles.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the FIFO and log every record written to it, until SIGTERM/SIGINT.
    #[command(after_help = "\
Examples:
  fifo-demo daemon --log app.log                # terminal 1; prints `ready: pid N fifo PATH`
  fifo-demo daemon --fifo /tmp/my.fifo --log -  # log to stdout
  fifo-demo daemon --log - | grep --line-buffered ERROR   # only the errors, live

Signals: SIGHUP reopens the log file (rotation) and the daemon goes on (with --log -, there is
nothing to reopen: SIGHUP changes nothing); SIGTERM/SIGINT drain the pipe, remove the FIFO and
pid file, and exit 0 (1 if records were lost: the log could not take them, or a stdout
nobody read); a second one during the drain exits at once (143/130). A stdout log whose reader
goes away stops it too (exit 0). Under systemd (Type=notify) it sends READY=1 once the FIFO is
usable, STOPPING=1 on stop.

With -v: flock of the pid file, mkfifo, the open of the read end and of its own write end,
F_SETPIPE_SZ, each read() of the FIFO, the log's open at start and at SIGHUP, NOTIFY_SOCKET
messages, the unlink and close at shutdown.")]
    Daemon(DaemonArgs),
    /// Send a message (the words, as one record) or each line of stdin to the daemon.
    #[command(after_help = "\
Examples:
  fifo-demo log backup finished                 # one record: pid=N backup finished
  tail -f app.out | fifo-demo log               # one record per line
  fifo-demo log --fifo /tmp/my.fifo disk full   # a daemon on another FIFO

With -v: open(O_WRONLY|O_NONBLOCK) of the FIFO (ENXIO when no daemon reads it), each write()
of a record (a run of identical ones is counted), EAGAIN and poll(POLLOUT) when the pipe is
full, ioctl(FIONREAD) after EPIPE.")]
    Log(LogArgs),
    /// Remove the FIFO and pid file a daemon killed with -9 left behind (refused if it lives),
    /// and the logs of demo runs that died before cleaning up.
    #[command(after_help = "\
Examples:
  fifo-demo cleanup                             # the default FIFO and its pid file
  fifo-demo cleanup --fifo /tmp/my.fifo

With -v: mkdir of the runtime dir, flock of the pid file, the open(O_WRONLY|O_NONBLOCK) that
tells whether something still reads the FIFO, unlink.")]
    Cleanup(CleanupArgs),
    /// Play the scenario: a daemon, N writers, one rotation, SIGTERM, then check the logs.
    /// The default when no subcommand is given.
    #[command(after_help = "\
Examples:
  fifo-demo                                     # the same as `fifo-demo demo`
  fifo-demo demo --writers 16 --lines 5000 --keep
  fifo-demo demo -v 2>trace.txt                 # every process's calls, in order

With -v: every process, in the order of the calls: the demo's fork+execve of each role and its
signals, and the daemon's and each writer's own calls (they inherit it through
IPC_DEMO_TRACE=1).

Exit status: 0 the check held, 1 it failed (the logs are kept and named), 2 usage;
interrupted (Ctrl-C, SIGTERM, SIGHUP) at any step: every role stopped, the logs removed,
128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).")]
    Demo(DemoArgs),
    /// Print where the objects live (the FIFO, its pid file, the runtime directory), for
    /// scripts: the runtime directory depends on XDG_RUNTIME_DIR, which ssh, cron and
    /// containers often leave unset.
    #[command(after_help = "\
Examples:
  echo hello > \"$(fifo-demo path fifo)\"       # a plain shell writer, whatever the environment
  kill -HUP \"$(cat \"$(fifo-demo path pid-file)\")\"   # ask the daemon to reopen its log
  fifo-demo path                                # all three, one `NAME PATH` per line
  fifo-demo path fifo --fifo /tmp/my.fifo        # prints /tmp/my.fifo

With -v: the runtime directory's creation.")]
    Path(PathArgs),
}

/// Options of `fifo-demo path`.
#[derive(Args, Debug)]
pub struct PathArgs {
    /// The object whose path to print, alone on its line; all three, as `NAME PATH`, if none.
    #[arg(value_enum, value_name = "OBJECT")]
    pub object: Option<Object>,
    /// The FIFO a daemon was started with [default: <runtime dir>/log.fifo]
    #[arg(long, value_name = "PATH")]
    pub fifo: Option<PathBuf>,
    /// The pid file a daemon was started with [default: <fifo>.pid]
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// The objects `fifo-demo path` knows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// The daemon's FIFO.
    Fifo,
    /// The daemon's pid file.
    PidFile,
    /// The private runtime directory.
    Dir,
}

/// Options of `fifo-demo daemon`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The FIFO to create and read [default: <runtime dir>/log.fifo]
    #[arg(long, value_name = "PATH")]
    pub fifo: Option<PathBuf>,
    /// The log file to append to (created 0600); `-` for stdout.
    #[arg(long, value_name = "FILE", default_value = "fifo-demo.log")]
    pub log: PathBuf,
    /// The locked pid file that marks a live daemon [default: <fifo>.pid]
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long to wait for writers that still hold the FIFO to finish
    /// (everything they wrote by then is logged; later writes fail with EPIPE). Fractions
    /// allowed: 0.5.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = parse_seconds)]
    pub drain_timeout: std::time::Duration,
}

/// A number of seconds, fractions allowed: `2`, `0.5`.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds"))
}

/// `fifo-demo` with no subcommand plays `demo` with its defaults.
impl Default for Command {
    fn default() -> Self {
        Command::Demo(DemoArgs::default())
    }
}

impl Command {
    /// The role's name in the `--trace` timeline.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Daemon(_) => "daemon",
            Command::Log(_) => "log",
            Command::Cleanup(_) => "cleanup",
            Command::Demo(_) => "demo",
            Command::Path(_) => "path",
        }
    }
}

/// Options of `fifo-demo cleanup`.
#[derive(Args, Debug)]
pub struct CleanupArgs {
    /// The FIFO to remove [default: <runtime dir>/log.fifo]
    #[arg(long, value_name = "PATH")]
    pub fifo: Option<PathBuf>,
    /// Its daemon's pid file [default: <fifo>.pid]
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Options of `fifo-demo log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// The daemon's FIFO [default: <runtime dir>/log.fifo]
    #[arg(long, value_name = "PATH")]
    pub fifo: Option<PathBuf>,
    /// The message; without one, each line of stdin is a record.
    #[arg(value_name = "MESSAGE")]
    pub message: Vec<OsString>,
}

/// Options of `fifo-demo demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Number of writer processes.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub writers: u32,
    /// Numbered lines each writer sends.
    #[arg(
        long,
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(2..=1_000_000)
    )]
    pub lines: u32,
    /// Keep the two log files (their paths are printed) instead of removing them.
    #[arg(long)]
    pub keep: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            writers: 8,
            lines: 1000,
            keep: false,
        }
    }
}
