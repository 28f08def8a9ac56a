//! The command line: one subcommand per role; no subcommand plays the whole demo.

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  signal-demo                                   # play the whole scenario and check it
  printf 'message = \"hello\"\\ninterval_ms = 500\\n' > cfg.toml
  signal-demo daemon --config cfg.toml --pid-file d.pid     # terminal 1
  signal-demo send HUP --pid-file d.pid                     # terminal 2: reload cfg.toml
  signal-demo send RTMIN --pid-file d.pid --value 1 --count 5
  signal-demo send USR1 --pid-file d.pid                    # one status line
  kill -TERM \"$(cat d.pid)\"                                 # graceful stop";

/// Signals as notifications: a daemon that reloads its config on SIGHUP, stops gracefully on
/// SIGTERM/SIGINT, reports on SIGUSR1, and receives queued realtime signals with values.
#[derive(Parser, Debug)]
#[command(name = "signal-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each signal-related call on stderr (also in the children the demo starts).
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The roles.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play the whole scenario with a daemon child and check it (the default).
    Demo {
        /// The daemon's tick interval to start with (the reload halves it); raise it to watch
        /// the scenario in slow motion, e.g. `--interval-ms 1000`.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(20..=60_000))]
        interval_ms: u64,
    },
    /// Tick on a timer; SIGHUP reloads, SIGTERM/SIGINT stop, SIGUSR1 reports, SIGRTMIN carries
    /// a value.
    #[command(after_help = "\
The config file is TOML:
  message = \"hello\"     # printed on every tick (one line, at most 200 bytes)
  interval_ms = 500     # 10..=3600000
  work_ms = 0           # simulated work per tick, 0..=3600000 (default 0)

Example:
  signal-demo daemon --config cfg.toml --pid-file \"$XDG_RUNTIME_DIR/signal-demo.pid\"")]
    Daemon {
        /// The config file (read at start and on every SIGHUP).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Write our pid here, locked, and remove it on exit.
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
    },
    /// Send a signal, like `kill -s`; with --value through sigqueue(3), which carries an
    /// integer.
    #[command(
        group(ArgGroup::new("target").required(true).args(["pid", "pid_file"])),
        after_help = "\
SIGNAL is a name (HUP, SIGHUP, USR1, RTMIN, RTMIN+3, RTMAX-1) or a number.
With --count K and --value N, the K signals carry the values N, N+1, ..., N+K-1.

Example:
  signal-demo send RTMIN --pid-file d.pid --value 1 --count 100"
    )]
    Send {
        /// The signal to send.
        signal: String,
        /// The process to signal.
        #[arg(long, allow_negative_numbers = true)]
        pid: Option<i32>,
        /// Read the pid from a daemon's pid file (refused if no live daemon holds it).
        #[arg(long, value_name = "FILE")]
        pid_file: Option<PathBuf>,
        /// Send with sigqueue(3), carrying this integer.
        #[arg(long, allow_negative_numbers = true)]
        value: Option<i32>,
        /// Send this many signals in a burst.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
    },
}

impl Command {
    /// The role's name in the `--trace` timeline.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Demo { .. } => "demo",
            Command::Daemon { .. } => "daemon",
            Command::Send { .. } => "send",
        }
    }
}
