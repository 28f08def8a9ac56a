//! The command line: one subcommand per role, `demo` when none is given.

use clap::{Args, Parser, Subcommand, ValueEnum};
use common::generate::{ENV_NOTIFY_SOCKET, ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

use crate::names::DEFAULT_QUEUE;
use crate::queue::Flavor;

const EXAMPLES: &str = "\
Examples:
  mqueue-demo                                  # play the whole scenario and check it
  mqueue-demo run --workers 4                  # terminal 1: supervisor and 4 workers
  mqueue-demo submit 'echo hello' 'fib 40'     # terminal 2: prints each task's id
  mqueue-demo submit --wait --priority 9 'sha256 abc'   # urgent, and wait for the result
  seq 100 | sed 's/^/echo /' | mqueue-demo submit        # one task per stdin line
  mqueue-demo results --follow                 # print results as they arrive (mq_notify)
  mqueue-demo status                           # depth and limits of every queue
  cat /dev/mqueue/ipc-demo-tasks               # the kernel's view (/dev/mqueue mounted)";

/// A task queue on POSIX message queues: producers, a supervisor, workers, results; no task
/// is lost when a worker, or the supervisor, is killed.
///
/// With no subcommand, `mqueue-demo` runs `demo`: every role, played and checked.
#[derive(Parser, Debug)]
#[command(name = "mqueue-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each call this role makes on the queues, on stderr, tagged with its pid and
    /// role (`[pid 4242 submit] mq_timedsend(/ipc-demo-tasks, …)`, `[pid 4243 worker]
    /// mq_receive(…)`); the processes a role starts inherit it.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,

    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the man page says beyond the parser (`mqueue-demo --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[(
        "1",
        "For `submit --wait`, also: a task did not succeed (it failed 5 times and was \
         dead-lettered).",
    )],
    environment: &[ENV_RUNTIME_DIR, ENV_NOTIFY_SOCKET],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "/dev/mqueue/ipc-demo-*",
            "The POSIX message queues, 0600: `NAME` (the tasks), `NAME-results`, `NAME-dead` \
             and `NAME-done`, the supervisor's, removed when it stops; `NAME-w<pid>`, a \
             worker's inbox; `NAME-r<pid>-<stamp>`, the reply queue of a `submit --wait`. The \
             directory shows them where the mqueue filesystem is mounted.",
        ),
        (
            "/dev/shm/ipc-demo-*-held",
            "`NAME-held`, the supervisor's record of the tasks it holds (0600), locked while \
             it lives: the lock is how the other roles find it. A supervisor killed with -9 \
             leaves it, and the next one takes its tasks over.",
        ),
        (
            "RUNTIME_DIR/ipc-demo-*.pid",
            "The supervisor's pid file, locked while it lives (`mqueue-demo path pid-file`).",
        ),
        (
            "RUNTIME_DIR/ipc-demo-*.sysv",
            "With `--sysv`: the ids of the supervisor's four System V queues (keys \
             0x1dc0xxxx, see ipcs -q), which the other roles read.",
        ),
    ],
    see_also: &[
        "mq_overview(7)",
        "mq_open(3)",
        "mq_send(3)",
        "mq_receive(3)",
        "mq_notify(3)",
        "mq_getattr(3)",
        "msgget(2)",
        "msgsnd(2)",
        "msgrcv(2)",
        "msgctl(2)",
        "shm_open(3)",
        "fcntl(2)",
        "pidfd_open(2)",
        "poll(2)",
        "ipcs(1)",
    ],
};

/// The roles.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play the scenario: supervisor, 4 workers, 2 producers, a SIGKILL, a poison task; check
    /// it. The default when no subcommand is given.
    #[command(after_help = "\
Examples:
  mqueue-demo                                   # the same as `mqueue-demo demo`
  mqueue-demo demo --tasks 5000 --workers 8
  mqueue-demo demo -v 2>trace.txt               # every process's calls on the queues, in order

Exit status: 0 the check held, 1 it failed, 2 usage; interrupted (Ctrl-C, SIGTERM, SIGHUP) at
any step: every role stopped, the queues removed, 128 + the signal's number (130 for Ctrl-C,
143 for SIGTERM, 129 for SIGHUP).")]
    Demo(DemoArgs),
    /// The supervisor: create the queues, start K workers, hand out tasks, collect results.
    #[command(after_help = "\
Examples:
  mqueue-demo run --workers 4
  mqueue-demo run --workers 0 &   # the supervisor alone; then start workers by hand:
  mqueue-demo worker

SIGTERM, SIGINT, SIGHUP: no new tasks are taken; workers finish what they hold (for at most
--stop-timeout seconds; then they are killed); what is left queued is reported; the queues are
removed; exit 0.

kill -9: the queues stay, and so does the record of what this supervisor held (NAME-held, in
/dev/shm); the next `mqueue-demo run` takes them over and gives every task without a result out
again. A second supervisor of a queue that one serves, from any runtime dir, is refused.")]
    Run(RunArgs),
    /// A worker: take tasks from the supervisor, run them, report results.
    #[command(after_help = "\
Example:
  mqueue-demo worker --max-tasks 1

SIGTERM, SIGINT, SIGHUP: the task in hand is finished and its result sent; the inbox is
removed; exit 0. The supervisor gone (kill -9): exit 1 at once.")]
    Worker(WorkerArgs),
    /// Put tasks on the queue (each TASK one task; none: one per stdin line); prints their ids.
    #[command(after_help = "\
A task is KIND [ARG]: echo TEXT, sleep MS, fib N, sha256 TEXT, fail (always fails: it ends in
the dead-letter queue after 5 attempts). A task may start with !N to give it priority N.

Examples:
  mqueue-demo submit 'echo hello' 'fib 30'
  mqueue-demo submit --priority 9 --timeout 2 'sleep 100'
  printf 'echo a\\n!9 echo urgent\\n' | mqueue-demo submit --wait

--wait: exit 1 if a task did not succeed; Ctrl-C (SIGINT, SIGTERM, SIGHUP) while it waits:
the reply queue is removed, exit 128 + the signal's number.")]
    Submit(SubmitArgs),
    /// Print the results waiting in NAME-results; --follow waits for more (mq_notify).
    #[command(after_help = "\
Examples:
  mqueue-demo results
  mqueue-demo results --follow --count 10

--follow runs until Ctrl-C (exit 130; 143 SIGTERM, 129 SIGHUP), as tail -f does, or until
--count results are printed (exit 0).")]
    Results(ResultsArgs),
    /// Show every queue's depth and limits (mq_getattr), what the supervisor's record holds,
    /// and the kernel's own view.
    #[command(after_help = "\
Examples:
  mqueue-demo status
  mqueue-demo status --queue /ipc-demo-jobs --sysv   # System V: msg_qnum, msg_qbytes (IPC_STAT)
  watch -n1 mqueue-demo status                       # depths as the queue works")]
    Status(QueueArg),
    /// Throw away the messages waiting in the task, result and dead-letter queues.
    #[command(after_help = "\
Examples:
  mqueue-demo purge                          # the supervisor may keep running
  mqueue-demo purge --queue /ipc-demo-jobs")]
    Purge(QueueArg),
    /// Remove what a supervisor killed with -9 left behind: its queues, its record (the tasks it
    /// held are lost) and its pid file (refused while a supervisor lives).
    #[command(after_help = "\
Examples:
  mqueue-demo unlink                         # after: kill -9 <supervisor pid>
  mqueue-demo unlink --queue /ipc-demo-jobs --sysv")]
    Unlink(QueueArg),
    /// Print where the supervisor's objects live (its queues in /dev/mqueue, its pid file, the
    /// runtime dir), so scripts never spell them out.
    #[command(after_help = "\
Examples:
  mqueue-demo path                             # every object, NAME PATH per line
  kill -TERM \"$(cat \"$(mqueue-demo path pid-file)\")\"   # stop the supervisor gracefully
  cat \"$(mqueue-demo path tasks)\"              # the kernel's view: QSIZE, NOTIFY")]
    Path(PathArgs),
}

impl Default for Command {
    /// `mqueue-demo` with no subcommand: the demo, with its default arguments.
    fn default() -> Self {
        Command::Demo(DemoArgs::default())
    }
}

impl Command {
    /// The role's name in the `--trace` timeline: the subcommand's.
    pub fn role(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Run(_) => "run",
            Command::Worker(_) => "worker",
            Command::Submit(_) => "submit",
            Command::Results(_) => "results",
            Command::Status(_) => "status",
            Command::Purge(_) => "purge",
            Command::Unlink(_) => "unlink",
            Command::Path(_) => "path",
        }
    }
}

/// `--queue` and `--sysv`, which every role takes.
#[derive(Args, Debug, Clone)]
pub struct QueueArg {
    /// The task queue; the others are NAME-results, NAME-dead, NAME-done.
    #[arg(long = "queue", value_name = "NAME", default_value = DEFAULT_QUEUE)]
    pub name: String,
    /// System V message queues (msgget/msgsnd/msgrcv; see `ipcs -q`) instead of POSIX ones.
    #[arg(long)]
    sysv: bool,
}

impl QueueArg {
    /// POSIX, or System V with `--sysv`.
    pub fn flavor(&self) -> Flavor {
        Flavor::of(self.sysv)
    }
}

/// Options of `path`.
#[derive(Args, Debug, Clone)]
pub struct PathArgs {
    /// The task queue; the others are NAME-results, NAME-dead, NAME-done.
    #[arg(long = "queue", value_name = "NAME", default_value = DEFAULT_QUEUE)]
    pub name: String,
    /// Print only this object's path.
    #[arg(value_enum)]
    pub object: Option<PathObject>,
}

/// The objects `path` knows.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathObject {
    /// The task queue, as /dev/mqueue shows it.
    Tasks,
    /// NAME-results.
    Results,
    /// NAME-dead.
    Dead,
    /// NAME-done.
    Done,
    /// The supervisor's record of who holds what (and its lock), NAME-held in /dev/shm.
    Record,
    /// The supervisor's pid file.
    PidFile,
    /// The runtime dir.
    Dir,
}

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub queue: QueueArg,
    /// Worker processes to start and keep alive (0: start them by hand).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub workers: u32,
    /// Messages each queue holds (mq_maxmsg); over /proc/sys/fs/mqueue/msg_max needs root.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: u32,
    /// The largest message in bytes (mq_msgsize); over msgsize_max needs root.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(64..))]
    pub msgsize: u32,
    /// On SIGTERM, wait at most this long for workers to finish what they hold (a task takes
    /// at most a minute); then kill them and report their tasks as left.
    #[arg(long, value_name = "SECONDS", default_value_t = 65.0, value_parser = stop_timeout)]
    pub stop_timeout: f64,
}

/// `--stop-timeout`: seconds, 0 to a day.
fn stop_timeout(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| (0.0..=86_400.0).contains(s))
        .ok_or_else(|| format!("{text:?}: expected seconds from 0 to 86400"))
}

/// `submit --timeout`: seconds, 0 or more (a finite number: `nan` and `inf` are refused here,
/// as a usage error, before anything looks for a supervisor).
fn send_timeout(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| std::time::Duration::from_secs_f64(s.min(1e9)))
        .ok_or_else(|| format!("{text:?}: expected seconds >= 0"))
}

/// Options of `worker`.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub queue: QueueArg,
    /// Exit after this many tasks.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tasks: Option<u64>,
}

/// Options of `submit`.
#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub queue: QueueArg,
    /// Priority 0-9, higher first (the mq priority).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub priority: u32,
    /// Wait at most this many seconds for room in a full queue (mq_timedsend), then fail.
    #[arg(long, value_name = "SECONDS", value_parser = send_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Wait for the tasks' results and print them, each once (a supervisor killed meanwhile:
    /// wait for the next one); exit 1 if any task did not succeed.
    #[arg(long)]
    pub wait: bool,
    /// The tasks, each `KIND [ARG]`; none: one per line of stdin.
    #[arg(value_name = "TASK")]
    pub tasks: Vec<String>,
}

/// Options of `results`.
#[derive(Args, Debug, Clone)]
pub struct ResultsArgs {
    #[command(flatten)]
    pub queue: QueueArg,
    /// Keep waiting for results (mq_notify) until Ctrl-C or --count.
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many results.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// Options of `demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Play it on System V message queues.
    #[arg(long)]
    sysv: bool,
    /// Tasks in all (one of them the poison task), from 2 producers.
    #[arg(long, default_value_t = 2000, value_parser = tasks_range())]
    pub tasks: u32,
    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
}

/// `demo --tasks`: 10 (enough for a kill midway and a poison task) to a million.
fn tasks_range() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(10..=1_000_000)
}

impl DemoArgs {
    /// POSIX, or System V with `--sysv`.
    pub fn flavor(&self) -> Flavor {
        Flavor::of(self.sysv)
    }
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            sysv: false,
            tasks: 2000,
            workers: 4,
        }
    }
}
