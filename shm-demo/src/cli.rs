//! The command line: one subcommand per role, `demo` when none is given.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use common::generate::{ENV_NOTIFY_SOCKET, ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

use common::Result;

use crate::layout;
use crate::segment::{Flavor, Target};

const EXAMPLES: &str = "\
Examples:
  shm-demo                                   # play the whole scenario and check it
  shm-demo server                            # terminal 1: create /ipc-demo-db and keep it
  shm-demo put greeting 'hello world'        # terminal 2: write straight into the segment
  shm-demo get greeting; echo \" (exit $?)\"   # the raw value; exit 1 if the key is missing
  head -c 100 /dev/urandom | shm-demo put blob -   # binary values from stdin
  shm-demo watch greeting --count 1          # sleeps on a futex until someone puts
  shm-demo stats; shm-demo list --values
  kill -USR1 \"$(cat \"$(shm-demo path pid-file)\")\"   # the server prints stats (stderr)
  shm-demo destroy                           # stop the server (SIGTERM), object removed
  shm-demo server --sysv                     # the same in a System V segment (ipcs -m)";

/// A key-value database in shared memory that client processes read and write directly:
/// lock-free seqlock readers, a robust process-shared mutex for writers, futex watches.
#[derive(Parser, Debug)]
#[command(name = "shm-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each call this role makes on the segment, on stderr, tagged with its pid and
    /// role (`[pid 4242 put] shm_open(/ipc-demo-db)`, `… pthread_mutex_lock`, `… futex`); the
    /// processes a role starts inherit it.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the man page says beyond the parser (`shm-demo --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[(
        "1",
        "Also: `get` of a key that is not stored (nothing printed), `del` of one that was \
             not, a `reader` that saw a bad checksum, a `watch` whose database was removed.",
    )],
    environment: &[ENV_RUNTIME_DIR, ENV_NOTIFY_SOCKET],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "/dev/shm/ipc-demo-db",
            "The database (`--name`, default /ipc-demo-db): a POSIX shared memory object made \
             0600 by the server, removed when it stops. Clients map it themselves.",
        ),
        (
            "RUNTIME_DIR/ipc-demo-db.pid, ipc-demo-db.sysv.pid",
            "The server's pid file (`--pid-file`): locked while the server lives, so a leftover \
             is told from a rival.",
        ),
        (
            "RUNTIME_DIR/ipc-demo-db.sysv",
            "With `--sysv`: the key file whose inode ftok(3) turns into the System V segment's \
             key, 0x1d followed by bits of its device and inode (ipcs -m). The server makes it \
             and removes it with the segment; `make clean-ipc` sweeps both.",
        ),
        (
            "/dev/shm/ipc-demo-demo-*",
            "A demo run's database, removed when the run ends, however it ends (its server is \
             tied to it).",
        ),
    ],
    see_also: &[
        "shm_overview(7)",
        "shm_open(3)",
        "mmap(2)",
        "posix_fallocate(3)",
        "svipc(7)",
        "shmget(2)",
        "shmat(2)",
        "shmctl(2)",
        "ftok(3)",
        "pthread_mutexattr_setrobust(3)",
        "pthread_mutex_consistent(3)",
        "futex(2)",
        "fcntl(2)",
    ],
};

/// What `shm-demo path` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathObject {
    /// The object: `/dev/shm/NAME`, or with --sysv the key file whose inode `ftok` turns into
    /// the segment's key.
    Object,
    /// The server's pid file.
    PidFile,
    /// The private runtime directory.
    Dir,
}

/// Which database: every role takes these.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// The POSIX shared memory name (in /dev/shm); with --sysv, names the key file instead.
    #[arg(long, default_value = "/ipc-demo-db", value_name = "NAME")]
    pub name: String,
    /// Use a System V segment (shmget/shmat, key from ftok) instead of POSIX shm.
    #[arg(long)]
    pub sysv: bool,
}

impl DbArgs {
    /// The database these name, its name checked.
    pub fn target(&self) -> Result<Target> {
        let flavor = if self.sysv {
            Flavor::Sysv
        } else {
            Flavor::Posix
        };
        Target::new(&self.name, flavor)
    }
}

/// The roles: one module each, of the same name (`shm-demo put` is `put.rs`).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the database and keep it until SIGTERM/SIGINT/SIGHUP; SIGUSR1 prints stats.
    #[command(
        after_help = "Examples:\n  shm-demo server --slots 100000 --value-max 256\n  \
                            shm-demo server --load db.snap --save db.snap   # persistent\n\n\
                            A leftover of a server killed with -9 is adopted with its data \
                            (--fresh discards it); a live server's database is never taken."
    )]
    Server(ServerArgs),
    /// Store VALUE under KEY (`-` reads the value from stdin), directly in the segment.
    #[command(after_help = "Example:\n  date | shm-demo put now -")]
    Put(PutArgs),
    /// Print KEY's raw value (no newline added); exit 1, printing nothing, if it is missing.
    #[command(after_help = "Example:\n  v=$(shm-demo get greeting) || echo missing")]
    Get(KeyArgs),
    /// Delete KEY; exit 1 if it was not stored.
    #[command(after_help = "Example:\n  shm-demo del greeting || echo \"greeting was not stored\"")]
    Del(KeyArgs),
    /// The stored keys, one per line, sorted (control bytes shown as \xNN).
    #[command(after_help = "Examples:\n  shm-demo list | wc -l\n  \
                            shm-demo list --values --name /ipc-demo-db")]
    List(ListArgs),
    /// Records used, generation, server pid, attached processes.
    #[command(after_help = "Examples:\n  shm-demo stats\n  \
                            shm-demo stats --sysv | grep attached   # shm_nattch from IPC_STAT")]
    Stats(DbArgs),
    /// Wait until KEY's value changes and print each new value (one line, escaped); exit 1
    /// if the database is removed meanwhile.
    #[command(after_help = "Example:\n  shm-demo watch greeting --count 1   \
                            # returns after the next put of greeting")]
    Watch(WatchArgs),
    /// Remove the database: a live server is asked to stop (SIGTERM); a leftover is removed.
    #[command(after_help = "Examples:\n  shm-demo destroy\n  \
                            shm-demo destroy --sysv --name /ipc-demo-db   \
                            # IPC_RMID and the key file")]
    Destroy(DbArgs),
    /// Print where the database's files live (the object, the server's pid file, the runtime
    /// directory), for scripts: the runtime directory depends on XDG_RUNTIME_DIR, which ssh,
    /// cron and containers often leave unset.
    #[command(after_help = "\
Examples:
  kill -USR1 \"$(cat \"$(shm-demo path pid-file)\")\"   # the server prints its stats on stderr
  shm-demo path                                 # all three, one `NAME PATH` per line
  shm-demo path object --sysv                   # the key file that ftok turns into the SysV key")]
    Path(PathArgs),
    /// One of the demo's writer processes: rounds of puts to its own keys for a while.
    #[command(
        after_help = "Prints `done: rounds R puts P` when its time is up.\n\nExample:\n  \
                      shm-demo writer --id 0 --keys 32 --duration-ms 2000"
    )]
    Writer(WriterArgs),
    /// One of the demo's reader processes: gets of random keys, each value's checksum checked.
    #[command(
        after_help = "Prints `done: gets G found F checksum failures C` when its time is up.\n\n\
                      Example:\n  shm-demo reader --writers 4 --keys 32 --duration-ms 2000"
    )]
    Reader(ReaderArgs),
    /// Play the scenario: server, writers, readers, a writer killed holding the mutex,
    /// recovery, watch, final check.
    #[command(after_help = "Example:\n  shm-demo demo --writers 8 --readers 8 --duration-ms 5000")]
    Demo(DemoArgs),
}

/// `shm-demo` alone plays the demo.
impl Default for Command {
    fn default() -> Self {
        Command::Demo(DemoArgs::default())
    }
}

impl Command {
    /// The role's name in the `--trace` timeline: its subcommand's (and module's) name.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Server(_) => "server",
            Command::Put(_) => "put",
            Command::Get(_) => "get",
            Command::Del(_) => "del",
            Command::List(_) => "list",
            Command::Stats(_) => "stats",
            Command::Watch(_) => "watch",
            Command::Destroy(_) => "destroy",
            Command::Path(_) => "path",
            Command::Writer(_) => "writer",
            Command::Reader(_) => "reader",
            Command::Demo(_) => "demo",
        }
    }
}

/// Options of `shm-demo put`.
#[derive(Args, Debug, Clone)]
pub struct PutArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The key (1..=64 bytes).
    pub key: OsString,
    /// The value (bytes; `-` reads stdin).
    pub value: OsString,
}

/// Options of `shm-demo get` and `shm-demo del`: the database and one key.
#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The key (1..=64 bytes).
    pub key: OsString,
}

/// Options of `shm-demo list`.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print `key<TAB>value` (escaped the same way).
    #[arg(long)]
    pub values: bool,
}

/// Options of `shm-demo watch`.
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The key to watch (it need not be stored yet).
    pub key: OsString,
    /// Exit after this many changes (default: never).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Options of `shm-demo path`.
#[derive(Args, Debug, Clone)]
pub struct PathArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The one to print, alone on its line; all three, as `NAME PATH`, if none.
    #[arg(value_enum, value_name = "OBJECT")]
    pub object: Option<PathObject>,
}

/// Options of `shm-demo server`.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Records in the hash table (the most keys it can hold).
    #[arg(
        long,
        default_value_t = 4096,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(layout::SLOTS_LIMIT))
    )]
    pub slots: u32,
    /// The largest value, in bytes.
    #[arg(
        long,
        default_value_t = layout::VALUE_MAX,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(layout::VALUE_LIMIT))
    )]
    pub value_max: u32,
    /// Load this snapshot at start.
    #[arg(long, value_name = "FILE")]
    pub load: Option<PathBuf>,
    /// Save a snapshot here on SIGTERM/SIGINT (temp file + rename).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Discard a leftover database of a dead server instead of adopting it.
    #[arg(long)]
    pub fresh: bool,
    /// The pid file, locked while the server runs [default: what `shm-demo path pid-file`
    /// prints, beside the runtime dir's other files].
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Options of `shm-demo writer`.
#[derive(Args, Debug, Clone)]
pub struct WriterArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// This writer's number: its keys are `w<ID>-k<J>`.
    #[arg(long, default_value_t = 0)]
    pub id: u32,
    /// Keys per writer.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub keys: u32,
    /// How long to write.
    #[arg(long, default_value_t = 2000)]
    pub duration_ms: u64,
}

/// Options of `shm-demo reader`.
#[derive(Args, Debug, Clone)]
pub struct ReaderArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// How many writers' keys to read (`w0..` up to this).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub writers: u32,
    /// Keys per writer.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub keys: u32,
    /// How long to read.
    #[arg(long, default_value_t = 2000)]
    pub duration_ms: u64,
}

/// Options of `shm-demo demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Writer processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writers: u32,
    /// Reader processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub readers: u32,
    /// How long writers and readers work.
    #[arg(
        long,
        default_value_t = 2000,
        value_parser = clap::value_parser!(u64).range(100..=600_000)
    )]
    pub duration_ms: u64,
    /// Play it in a System V segment.
    #[arg(long)]
    pub sysv: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            writers: 4,
            readers: 4,
            duration_ms: 2000,
            sysv: false,
        }
    }
}
