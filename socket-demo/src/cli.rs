//! The command line: one subcommand per role.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  socket-demo                                  # the whole scenario, checked
  socket-demo server &                         # terminal 1: <runtime dir>/kv.sock
  socket-demo client SET greeting hello        # terminal 2
  socket-demo client GET greeting              # \"hello\"
  printf 'INCR n\\nINCR n\\n' | socket-demo client
  redis-cli -s \"$XDG_RUNTIME_DIR/ipc-demo/kv.sock\" INCR n
  socket-demo server --tcp 127.0.0.1:6380      # TCP; then: redis-cli -p 6380 PING
  socket-demo dgram-server &  socket-demo dgram-client SET k v
  socket-demo pass-fd                          # SCM_RIGHTS between two processes";

/// A key-value service over Unix stream, datagram and TCP sockets, speaking enough of the
/// Redis protocol for redis-cli, redis-benchmark and redis-py.
#[derive(Parser, Debug)]
#[command(name = "socket-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each socket call on stderr: [pid N role] call(args) -> result.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,
    #[command(subcommand)]
    pub role: Option<Role>,
}

/// The roles; with none, `demo`.
#[derive(Subcommand, Debug)]
pub enum Role {
    /// Play the whole scenario with child processes and check it (the default).
    Demo,
    /// Serve the key-value store on a Unix stream socket and/or TCP.
    #[command(after_help = "Example:\n  socket-demo server --max-clients 100 --tcp 127.0.0.1:6380")]
    Server(ServerArgs),
    /// Send one command (or one per stdin line) and print the replies like redis-cli.
    Client(ClientArgs),
    /// Serve the same commands over a Unix datagram socket, one request per datagram.
    #[command(after_help = "Example:\n  socket-demo dgram-server --path /tmp/kv-dgram.sock")]
    DgramServer(DgramServerArgs),
    /// Send commands to the datagram server from a socket bound to a path of our own.
    #[command(after_help = "Example:\n  socket-demo dgram-client SET k v")]
    DgramClient(DgramClientArgs),
    /// Pass an open file descriptor to another process over a Unix socket (SCM_RIGHTS).
    #[command(after_help = "Example:\n  socket-demo -v pass-fd")]
    PassFd(PassFdArgs),
    /// (internal) One of the demo's client processes.
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Unix stream socket path [default: <runtime dir>/kv.sock, unless only --tcp is given].
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// Also (or only) listen on TCP; port 0 picks a free port, printed on stdout.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:6380")]
    pub tcp: Option<String>,
    /// Refuse clients beyond this many, with an error reply. Lowered, with a message, if the
    /// limit on open descriptors (raised as far as the hard limit allows) cannot hold them.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_clients: usize,
    /// Accept only Unix-socket clients with this uid (checked with SO_PEERCRED). TCP has no
    /// peer credentials, so this cannot be combined with --tcp.
    #[arg(long, value_name = "UID", conflicts_with = "tcp")]
    pub allow_uid: Option<u32>,
    /// After each round of requests, keep checking for more (epoll_wait with a zero timeout)
    /// for this many microseconds before sleeping; 0 sleeps at once. Ignored on one CPU.
    #[arg(
        long,
        value_name = "MICROS",
        default_value_t = 20,
        value_parser = clap::value_parser!(u64).range(0..=10_000)
    )]
    pub busy_poll_us: u64,
}

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Unix stream socket path [default: <runtime dir>/kv.sock].
    #[arg(long, value_name = "PATH", conflicts_with = "tcp")]
    pub unix: Option<PathBuf>,
    /// Connect over TCP instead, e.g. 127.0.0.1:6380.
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command and its arguments; none: one command per stdin line. Options go before
    /// the command: after it, every word is the command's (`SET k --raw` sets k to "--raw").
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// How a client prints replies.
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Print values as they are (`1000`, not `(integer) 1000`), one per line: the default
    /// when stdout is not a terminal, as with redis-cli.
    #[arg(long, overrides_with = "no_raw")]
    pub raw: bool,
    /// Print replies as redis-cli does on a terminal (quoted strings, `(integer)`, `(nil)`),
    /// wherever stdout goes.
    #[arg(long, overrides_with = "raw")]
    pub no_raw: bool,
}

impl OutputArgs {
    /// Some(true) for --raw, Some(false) for --no-raw (the last one given wins), None for
    /// neither.
    pub fn forced(&self) -> Option<bool> {
        match (self.raw, self.no_raw) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

#[derive(Args, Debug)]
pub struct DgramServerArgs {
    /// Datagram socket path [default: <runtime dir>/kv-dgram.sock].
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DgramClientArgs {
    /// The server's datagram socket path [default: <runtime dir>/kv-dgram.sock].
    #[arg(long, value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Seconds each command may take: waiting for room in a full server queue, then for the
    /// reply.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command and its arguments; none: one command per stdin line. Options go before
    /// the command.
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PassFdArgs {
    /// Play the receiving process: stdin must be a Unix socket (the sender arranges it).
    #[arg(long)]
    pub receive: bool,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The server's socket.
    #[arg(long, value_name = "PATH")]
    pub unix: PathBuf,
    /// This worker's number (names its private keys).
    #[arg(long)]
    pub id: u32,
    /// Rounds of SET/GET/INCR.
    #[arg(long, default_value_t = 250)]
    pub rounds: u32,
    /// The shared counter every worker increments.
    #[arg(long)]
    pub counter: String,
}

const CLIENT_EXAMPLES: &str = "\
Examples:
  socket-demo client INCR visits                 # (integer) 1 on a terminal
  socket-demo client --raw GET greeting          # hello, unquoted (the default in a pipe)
  printf 'SET k v\\nGET k\\n' | socket-demo client";

/// Parse the command line. `client --help` lists the commands the server answers, taken from
/// the table it runs them from, so the list cannot drift from what is supported.
pub fn parse() -> Cli {
    let help = format!("{}\n\n{CLIENT_EXAMPLES}", crate::commands::help());
    let command = Cli::command().mut_subcommand("client", |c| c.after_help(help));
    Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
}

impl Role {
    /// The role's name in the `-v` timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Demo => "demo",
            Role::Server(_) => "server",
            Role::Client(_) => "client",
            Role::DgramServer(_) => "dgram-server",
            Role::DgramClient(_) => "dgram-client",
            Role::PassFd(a) if a.receive => "receiver",
            Role::PassFd(_) => "sender",
            Role::Worker(_) => "worker",
        }
    }
}
