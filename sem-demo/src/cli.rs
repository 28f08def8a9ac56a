//! The command line: one subcommand per role, `demo` when none is given.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::generate::{ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

use crate::sem::{Flavor, parse_name};

const EXAMPLES: &str = "\
Examples:
  sem-demo                                      # play the whole scenario and check it
  sem-demo counter --procs 8 --no-lock          # watch updates get lost without the lock
  sem-demo bridge --cars 20 --lanes 3           # a counting semaphore, K = 3
  sem-demo run --name build --limit 2 -- make -j4   # at most 2 builds at once, like flock(1)
  sem-demo post jobs; sem-demo wait jobs --timeout 0.5; sem-demo value jobs
  sem-demo unlink jobs";

/// Semaphores guarding a shared resource: race-free updates, a counting semaphore, and a
/// flock(1)-like runner for scripts, with POSIX named and System V semaphores side by side.
///
/// With no subcommand, `sem-demo` runs `demo`: every role, played and checked.
#[derive(Parser, Debug)]
#[command(name = "sem-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each semaphore call this role makes, on stderr, tagged with its pid and role
    /// (`[pid 4242 run] semop(…, -1, SEM_UNDO)`, `[pid 4243 update] sem_wait(/ipc-demo-x)`);
    /// the processes a role starts inherit it.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the man page says beyond the parser (`sem-demo --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[
        (
            "1 (trywait, wait, run)",
            "Also: trywait found no free permit; wait or run --timeout gave up waiting.",
        ),
        (
            "N (run)",
            "run exits with its command's status, whatever it is, once the command has ended \
             and the permit is given back. Stop signals that reach run while the command runs \
             are passed on to the command, which decides what they mean: run ends when it \
             does, with its status.",
        ),
        (
            "126, 127 (run)",
            "The command could not be run: not executable (126) or not found (127), as a \
             shell says; run prints why.",
        ),
        (
            "128+N (run)",
            "Either the command was killed by signal N (run exits 128+N itself, as a shell \
             reports a killed command), or run was stopped by signal N while it waited for its \
             permit, before the command started: run then holds nothing, runs nothing, and \
             dies of the signal, which a shell reports as 128+N as well (a caller that reads \
             the wait status sees a signal, not an exit).",
        ),
    ],
    environment: &[ENV_RUNTIME_DIR],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "/dev/shm/sem.ipc-demo-NAME",
            "The POSIX named semaphore NAME (mode 0600). Those of run and the primitives stay \
             until sem-demo unlink NAME; those of counter, bridge and demo carry the run's tag \
             and are removed when it ends.",
        ),
        (
            "SysV key 0x1dc0xxxx",
            "The System V semaphore set of NAME (--sysv, and run's default): 4 semaphores, the \
             permits, K and two checks of the name. ipcs -s lists them; sem-demo unlink --sysv \
             NAME removes one.",
        ),
        (
            "/dev/shm/ipc-demo-sem-bridge-*, /dev/shm/ipc-demo-sem-demo-*",
            "A bridge's board (POSIX shared memory), removed when the bridge ends.",
        ),
        (
            "RUNTIME_DIR/sem-counter-*.db, RUNTIME_DIR/sem-demo-*.db",
            "A counter's number, removed when its run ends. What a counter, bridge or demo \
             killed with -9 left is removed by the next start of any of them.",
        ),
    ],
    see_also: &[
        "sem_overview(7)",
        "sem_open(3)",
        "sem_wait(3)",
        "sem_post(3)",
        "sem_getvalue(3)",
        "sem_unlink(3)",
        "semget(2)",
        "semop(2)",
        "semctl(2)",
        "shm_open(3)",
        "flock(1)",
        "ipcs(1)",
    ],
};

/// The roles.
///
/// `defer`: each role's options are built only when that role is parsed. `run` is started
/// once per command a script runs, like `flock`, and a start costs in proportion to the
/// memory it touches; building every role's options first touched more (BENCHMARKS.md,
/// sem-demo, "How the gap was closed").
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Play everything and check it: the counter with and without the lock, the bridge, and a
    /// holder killed with SIGKILL (SysV gives its permit back, POSIX cannot).
    #[command(after_help = "Example:\n  sem-demo demo --procs 8 --iters 5000 --cars 30")]
    Demo(DemoArgs),
    /// N processes each add 1 to a number in a shared file M times (read, add, write back),
    /// under a binary semaphore; with --no-lock, count the updates the race loses.
    #[command(
        after_help = "Example:\n  sem-demo counter --procs 16 --iters 10000 --sysv\n  \
                            sem-demo counter --no-lock"
    )]
    Counter(CounterArgs),
    /// One counter process: M locked read-modify-write updates of FILE (started by `counter`;
    /// also usable by hand against any file holding a number).
    #[command(
        after_help = "Example:\n  echo 0 > n; sem-demo update --file n --iters 1000 \
                            --name n & sem-demo update --file n --iters 1000 --name n; wait; cat n"
    )]
    Update(UpdateArgs),
    /// A bridge with K lanes (a counting semaphore, K permits) that N car processes cross;
    /// prints the timeline and checks that no more than K cars were ever on it.
    #[command(after_help = "Example:\n  sem-demo bridge --cars 20 --lanes 3 --sysv")]
    Bridge(BridgeArgs),
    /// One car: take a lane, record the occupancy in the shared board, cross, leave (started
    /// by `bridge`).
    #[command(
        after_help = "Example (what `bridge` runs for each car; the board and the \
                            semaphore must exist):\n  sem-demo car --name sem-bridge-4242-0-1a2b3 \
                            --board sem-bridge-4242-0-1a2b3 --id 7 --cross-ms 5"
    )]
    Car(CarArgs),
    /// Run a command while holding one of K permits of a named semaphore, like flock(1) or
    /// GNU parallel's `sem`; exit with the command's status (128+N if a signal killed it).
    #[command(after_help = "\
The default is a System V semaphore taken with SEM_UNDO, and the command shares the undo:
if `run` is killed (even with SIGKILL), the command is killed with it, and the kernel gives
the permit back once both have ended, never while the command still runs. With --posix a
killed holder's permit is lost until someone posts it back (`sem-demo post NAME`).
The first `run` on a name creates it with K permits; a different --limit later is refused.

Examples:
  sem-demo run --name backup -- rsync -a src/ dst/
  sem-demo run --name encode --limit 2 --timeout 30 -- ffmpeg -i in.mkv out.mp4
  for f in *.wav; do sem-demo run --name enc --limit 4 -- flac \"$f\" & done; wait")]
    Run(RunArgs),
    /// Give a permit back (sem_post / semop +1); creates the semaphore (value 0) if absent.
    #[command(
        after_help = "Examples:\n  sem-demo post jobs            # /dev/shm/sem.ipc-demo-jobs\n  \
                            sem-demo post --sysv jobs     # the SysV set for 'jobs'"
    )]
    Post(PrimArgs),
    /// Take a permit, waiting for one (sem_wait / semop -1); creates it (value 0) if absent.
    #[command(after_help = "Examples:\n  sem-demo wait jobs\n  \
                            sem-demo wait jobs --timeout 0.5 || echo 'nobody posted'")]
    Wait(WaitArgs),
    /// Take a permit if one is free; exit 1 if it would block.
    #[command(after_help = "Example:\n  if sem-demo trywait jobs; then echo 'got one'; fi")]
    Trywait(PrimArgs),
    /// Print the number of free permits.
    #[command(after_help = "Example:\n  \
                            sem-demo value --sysv build   # free permits of `run --name build`")]
    Value(PrimArgs),
    /// Remove the semaphore (sem_unlink / IPC_RMID).
    #[command(after_help = "Example:\n  \
                            sem-demo unlink --sysv build  # forget K: the next `run --name \
                            build` creates it")]
    Unlink(PrimArgs),
}

/// `sem-demo` alone plays the whole scenario.
impl Default for Command {
    fn default() -> Self {
        Command::Demo(DemoArgs::default())
    }
}

impl Command {
    /// The role's name in the `--trace` timeline (the subcommand's name).
    pub fn role(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Counter(_) => "counter",
            Command::Update(_) => "update",
            Command::Bridge(_) => "bridge",
            Command::Car(_) => "car",
            Command::Run(_) => "run",
            Command::Post(_) => "post",
            Command::Wait(_) => "wait",
            Command::Trywait(_) => "trywait",
            Command::Value(_) => "value",
            Command::Unlink(_) => "unlink",
        }
    }
}

/// A timeout in seconds, fractions allowed (`0.5`), kept as typed for messages.
#[derive(Clone, Debug)]
pub struct Timeout {
    /// The duration.
    pub duration: Duration,
    /// The text the user gave, for `timed out after 0.5 s`.
    pub text: String,
}

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?}: expected 0 to 1000000000 seconds"));
    }
    Ok(Timeout {
        duration: Duration::from_secs_f64(secs),
        text: s.to_owned(),
    })
}

// Which kind of semaphore, as two flags (`--posix`, `--sysv`).
#[derive(Args, Debug, Clone, Copy)]
#[group(multiple = false)]
pub struct FlavorArgs {
    /// A POSIX named semaphore, /dev/shm/sem.ipc-demo-NAME (the default).
    #[arg(long)]
    pub posix: bool,
    /// A System V semaphore set, key 0x1dc0xxxx derived from NAME.
    #[arg(long)]
    pub sysv: bool,
}

impl FlavorArgs {
    /// The chosen flavor, `default` when neither flag is given.
    pub fn or(self, default: Flavor) -> Flavor {
        match (self.posix, self.sysv) {
            (true, _) => Flavor::Posix,
            (_, true) => Flavor::Sysv,
            _ => default,
        }
    }
}

// Options of `sem-demo demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Counter processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub procs: u32,
    /// Updates per counter process.
    #[arg(
        long,
        default_value_t = 5000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub iters: u32,
    /// Cars on the bridge.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub cars: u32,
    /// Lanes (permits) of the bridge.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub lanes: u16,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            procs: 4,
            iters: 5000,
            cars: 12,
            lanes: 3,
        }
    }
}

// Options of `sem-demo counter`.
#[derive(Args, Debug, Clone)]
pub struct CounterArgs {
    /// Processes updating the record at the same time.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub procs: u32,
    /// Updates per process.
    #[arg(
        long,
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=10_000_000)
    )]
    pub iters: u32,
    /// No semaphore: show the lost updates.
    #[arg(long)]
    pub no_lock: bool,
    #[command(flatten)]
    pub flavor: FlavorArgs,
}

// Options of `sem-demo update`.
#[derive(Args, Debug, Clone)]
pub struct UpdateArgs {
    /// The shared file holding the number.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Updates to make.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub iters: u32,
    /// The binary semaphore guarding FILE (created with one permit if absent).
    #[arg(long, value_parser = parse_name, required_unless_present = "no_lock")]
    pub name: Option<String>,
    /// No semaphore (the race).
    #[arg(long, conflicts_with = "name")]
    pub no_lock: bool,
    #[command(flatten)]
    pub flavor: FlavorArgs,
}

// Options of `sem-demo bridge`.
#[derive(Args, Debug, Clone)]
pub struct BridgeArgs {
    /// Car processes.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub cars: u32,
    /// Lanes: the semaphore's permits.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub lanes: u16,
    /// How long a car takes to cross, in milliseconds.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub cross_ms: u32,
    /// Print only the summary, not the timeline.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub flavor: FlavorArgs,
}

// Options of `sem-demo car`.
#[derive(Args, Debug, Clone)]
pub struct CarArgs {
    /// The bridge's semaphore.
    #[arg(long, value_parser = parse_name)]
    pub name: String,
    /// The shared-memory board (POSIX shm name) where occupancy is tracked.
    #[arg(long, value_parser = parse_name)]
    pub board: String,
    /// This car's number (0-based, below the board's car count).
    #[arg(long)]
    pub id: u32,
    /// Crossing time, ms.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub cross_ms: u32,
    #[command(flatten)]
    pub flavor: FlavorArgs,
}

// Options of `sem-demo run`. (Plain comments, not doc comments, on these structs: with
// `defer`, a struct's doc comment would replace the role's description in its --help.)
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The semaphore's name.
    #[arg(long, default_value = "run", value_parser = parse_name)]
    pub name: String,
    /// K: how many may run at once (used when the name is created; a different K for an
    /// existing SysV name is refused) [default: 1]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32_766))]
    pub limit: Option<u16>,
    /// Give up after this many seconds (fractions allowed) and exit 1.
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    pub timeout: Option<Timeout>,
    /// Use a POSIX named semaphore instead of SysV (a killed holder's permit is then lost).
    #[arg(long)]
    pub posix: bool,
    /// The command and its arguments (after `--`, or from the first word that is not an
    /// option of `run`).
    //
    // Not `allow_hyphen_values`: with it, the first unknown option (`--nmae x`) became the
    // command. Options before the command are `run`'s, and an unknown one is a usage error;
    // from the command's first word on, everything is the command's (`trailing_var_arg`),
    // dashes included.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

// Options of `post`, `trywait`, `value`, `unlink`.
#[derive(Args, Debug, Clone)]
pub struct PrimArgs {
    /// The semaphore: `NAME` or `/ipc-demo-NAME`.
    #[arg(value_parser = parse_name)]
    pub name: String,
    #[command(flatten)]
    pub flavor: FlavorArgs,
}

// Options of `wait`.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    #[command(flatten)]
    pub prim: PrimArgs,
    /// Give up after this many seconds (fractions allowed) and exit 1.
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    pub timeout: Option<Timeout>,
}
