//! The command line: one subcommand per role, `demo` when none is given.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use common::generate::{ENV_NOTIFY_SOCKET, ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

const EXAMPLES: &str = "\
Examples:
  signal-demo                                   # the same as `signal-demo demo`
  printf 'message = \"hello\"\\ninterval_ms = 500\\n' > cfg.toml
  signal-demo daemon --config cfg.toml --pid-file d.pid     # terminal 1: `ready: pid N ...`
  signal-demo send HUP --pid-file d.pid                     # terminal 2: reload cfg.toml
  signal-demo send RTMIN --pid-file d.pid --value 1 --count 5
  signal-demo send USR1 --pid-file d.pid                    # one status line
  kill -TERM \"$(cat d.pid)\"                                 # graceful stop";

/// Signals as notifications: a daemon that reloads its config on SIGHUP, stops gracefully on
/// SIGTERM/SIGINT, reports on SIGUSR1, and receives queued realtime signals with values.
///
/// With no subcommand, `signal-demo` runs `demo`: the daemon and its signals, played and
/// checked.
#[derive(Parser, Debug)]
#[command(name = "signal-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each signal call on stderr, in the order of the calls: `[pid 4242 daemon]
    /// read(signalfd) -> SIGHUP from pid 4200`; the daemon the demo starts narrates its own
    /// too (IPC_DEMO_TRACE=1). Before or after the subcommand; each subcommand's help says what
    /// its `-v` shows.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the man page says beyond the parser (`signal-demo --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[(
        "daemon",
        "signal-demo daemon exits 0 on SIGTERM or SIGINT once its tick in progress has \
         finished; 143 or 130 on a second stop signal, at once (its pid file removed all the \
         same); 0 too when the reader of its stdout goes away. SIGHUP does not stop it: it \
         re-reads the config file, keeping the old one if the new one is bad.",
    )],
    environment: &[ENV_RUNTIME_DIR, ENV_NOTIFY_SOCKET],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "RUNTIME_DIR/signal-demo-PID-N-HEX.toml, .pid",
            "The demo's config file (made 0600, never over an existing file) and its daemon's \
             pid file, removed when the demo ends, on Ctrl-C too.",
        ),
        (
            "--pid-file FILE",
            "The daemon's pid file, locked while it lives and removed when it stops; `send \
             --pid-file` refuses one that no live daemon holds.",
        ),
    ],
    see_also: &[
        "signal(7)",
        "signal-safety(7)",
        "signalfd(2)",
        "timerfd_create(2)",
        "sigprocmask(2)",
        "sigqueue(3)",
        "kill(2)",
        "poll(2)",
        "flock(2)",
    ],
};

/// The roles.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play the whole scenario with a daemon child and check it (the default).
    #[command(after_help = "\
Examples:
  signal-demo                                   # the same as `signal-demo demo`
  signal-demo demo --interval-ms 1000           # slow motion: watch each step
  signal-demo demo -v 2>trace.txt               # every kill/sigqueue and every signalfd read

With -v: the demo's kill and sigqueue calls, its SIGSTOP and waitid, and the daemon's
sigprocmask, signalfd and every signal it reads.

Exit status: 0 the check held, 1 it failed, 2 usage; interrupted (Ctrl-C, SIGTERM, SIGHUP) at
any step: the daemon stopped, the config file removed, 128 + the signal's number (130 for
Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).")]
    Demo(DemoArgs),
    /// Tick on a timer; SIGHUP reloads, SIGTERM/SIGINT stop, SIGUSR1 reports, SIGRTMIN carries
    /// a value. Prints `ready: pid N pid-file PATH` first, once signals are read (and sends
    /// READY=1 to $NOTIFY_SOCKET when a service manager set it).
    #[command(after_help = "\
The config file is TOML:
  message = \"hello\"     # printed on every tick (one line, at most 200 bytes)
  interval_ms = 500     # 10..=3600000
  work_ms = 0           # simulated work per tick, 0..=3600000 (default 0)

Examples:
  signal-demo daemon --config cfg.toml --pid-file \"$XDG_RUNTIME_DIR/signal-demo.pid\"
  signal-demo daemon --config cfg.toml | head -n 3      # stops quietly when head exits
  signal-demo daemon --config cfg.toml -v               # the signalfd reads, on stderr

Signals: SIGHUP re-reads the config (a bad one is refused and the old one kept) and the daemon
goes on; SIGTERM/SIGINT let the tick in progress finish, remove the pid file and exit 0; a
second one exits at once (143/130). SIGUSR1 prints a status line; SIGUSR2 and every realtime
signal are counted. A stdout whose reader goes away stops it too (exit 0).

With -v: sigprocmask, signalfd and timerfd at start, and every signal read (with its sender).")]
    Daemon(DaemonArgs),
    /// Send a signal, like `kill -s`; with --value through sigqueue(3), which carries an
    /// integer.
    #[command(after_help = "\
SIGNAL is a name (HUP, SIGHUP, USR1, RTMIN, RTMIN+3, RTMAX-1) or a number.
With --count K and --value N, the K signals carry the values N, N+1, ..., N+K-1.

Examples:
  signal-demo send HUP --pid-file d.pid                  # reload
  signal-demo send RTMIN --pid-file d.pid --value 1 --count 100
  signal-demo send TERM --pid 4242                       # graceful stop

With -v: each kill or sigqueue call.")]
    Send(SendArgs),
}

/// Options of `signal-demo demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The daemon's tick interval to start with (the reload halves it); raise it to watch
    /// the scenario in slow motion, e.g. `--interval-ms 1000`.
    #[arg(
        long,
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(20..=60_000)
    )]
    pub interval_ms: u64,
}

impl Default for DemoArgs {
    /// `signal-demo` with no arguments.
    fn default() -> Self {
        DemoArgs { interval_ms: 100 }
    }
}

/// Options of `signal-demo daemon`.
#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// The config file (read at start and on every SIGHUP).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Write our pid here, locked, and remove it on exit [default: no pid file].
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Options of `signal-demo send`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["pid", "pid_file"])))]
pub struct SendArgs {
    /// The signal to send.
    pub signal: String,
    /// The process to signal.
    #[arg(long, allow_negative_numbers = true)]
    pub pid: Option<i32>,
    /// Read the pid from a daemon's pid file (refused if no live daemon holds it).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Send with sigqueue(3), carrying this integer [default: kill(2), no value].
    #[arg(long, allow_negative_numbers = true)]
    pub value: Option<i32>,
    /// Send this many signals in a burst.
    #[arg(
        long,
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub count: u32,
}

/// `signal-demo` with no subcommand plays `demo` with its defaults.
impl Default for Command {
    fn default() -> Self {
        Command::Demo(DemoArgs::default())
    }
}

impl Command {
    /// The role's name in the `--trace` timeline.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Daemon(_) => "daemon",
            Command::Send(_) => "send",
        }
    }
}
