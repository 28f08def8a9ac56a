//! The command line: one subcommand per role, `demo` when none is given.
//!
//! # Test hooks
//!
//! Two things the parser accepts only when [`TEST_HOOKS`] (`IPC_DEMO_TEST_HOOKS=1`) is in the
//! environment: the `worker` role, the demo's own client processes (the demo starts them with
//! the variable set; `tests/hosts.rs` runs them on other hosts with `--tcp`), and `demo
//! --wait-for-signal-before-step N`, with which a test makes certain where its stop signal
//! lands. Without the variable they do not exist: no `--help`, man page or completion names
//! them, and they are usage errors. [`command`] is the parser a user has (what `--generate`
//! documents); [`parse`] adds the hooks when the variable says so.

use std::path::PathBuf;

use clap::{Arg, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use common::generate::{ENV_NOTIFY_SOCKET, ENV_RUNTIME_DIR, FILE_RUNTIME_DIR, Manual};

const EXAMPLES: &str = "\
Examples:
  socket-demo                                  # the whole scenario, checked
  socket-demo server &                         # ready: pid N socket <runtime dir>/kv.sock
  socket-demo client SET greeting hello        # terminal 2
  socket-demo client GET greeting              # \"hello\"
  printf 'INCR n\\nINCR n\\n' | socket-demo client
  redis-cli -s \"$(socket-demo path socket)\" INCR n
  socket-demo server --tcp 127.0.0.1:6380      # TCP; then: redis-cli -p 6380 PING
  socket-demo server --tcp 0.0.0.0:6380 --allow-from 10.0.0.0/8 --keepalive 60
  socket-demo dgram-server &  socket-demo dgram-client SET k v
  socket-demo pass-fd                          # SCM_RIGHTS between two processes
  socket-demo path                             # where the sockets and pid files live";

/// A key-value service over Unix stream, datagram and TCP sockets, speaking enough of the
/// Redis protocol for redis-cli, redis-benchmark and redis-py. With no subcommand,
/// `socket-demo` runs `demo`.
#[derive(Parser, Debug)]
#[command(name = "socket-demo", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Narrate each socket call on stderr: [pid N role] call(args) -> result, for this process
    /// and every process it starts. Before or after the subcommand; each subcommand's help
    /// says what that role narrates.
    #[arg(short = 'v', long = "trace", global = true)]
    pub trace: bool,
    // --generate KIND: the man page or a shell's completions (hidden; see common::generate).
    #[command(flatten)]
    pub generate: common::generate::GenerateArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the man page says beyond the parser (`socket-demo --generate man`).
pub const MANUAL: Manual<'static> = Manual {
    exit_status: &[
        (
            "0 (server, dgram-server)",
            "The server was asked to stop (SIGTERM, SIGINT, or SIGHUP: the terminal closed) \
             and has stopped: it sent the replies in flight and removed its socket file and \
             pid file.",
        ),
        (
            "1 (client, dgram-client)",
            "A reply was an error reply (as with redis-cli), or the server could not be reached.",
        ),
    ],
    environment: &[ENV_RUNTIME_DIR, ENV_NOTIFY_SOCKET],
    files: &[
        FILE_RUNTIME_DIR,
        (
            "RUNTIME_DIR/kv.sock",
            "The stream server's Unix socket when `--unix` is not given: born mode 0600, \
             removed when the server stops. A leftover nobody accepts on (after `kill -9`) is \
             found stale and replaced by the next server.",
        ),
        (
            "SOCKET.pid",
            "The server's pid file beside its socket (`kv.sock.pid`) unless `--pid-file` names \
             another: locked while the server lives, so a second server is refused and names \
             the first one's pid. With `--tcp` alone there is none unless `--pid-file` asks.",
        ),
        (
            "RUNTIME_DIR/kv-dgram.sock, kv-dgram.sock.pid",
            "The datagram server's socket and pid file, the same way.",
        ),
        (
            "RUNTIME_DIR/dgram-client-PID-N-HEX.sock",
            "A dgram-client's own bound address, for the replies: removed when it exits, on \
             Ctrl-C too.",
        ),
        (
            "RUNTIME_DIR/demo-PID-N-HEX-kv.sock, -dgram.sock",
            "The sockets of a demo run, removed when it ends.",
        ),
    ],
    see_also: &[
        "socket(7)",
        "unix(7)",
        "tcp(7)",
        "epoll(7)",
        "accept4(2)",
        "sendmsg(2)",
        "recvmsg(2)",
        "cmsg(3)",
        "redis-cli(1)",
    ],
};

/// The roles; with none, `demo`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Play the whole scenario with child processes and check it (the default).
    ///
    /// With -v it narrates every process's calls: its own and each child's (they inherit
    /// IPC_DEMO_TRACE=1): server, workers, clients, datagram roles, pass-fd.
    #[command(after_help = "Examples:
  socket-demo                                      # the same as `socket-demo demo`
  socket-demo demo -v 2>trace.txt                  # every process's calls, in order

Exit status: 0 the check held, 1 it failed, 2 usage; interrupted (Ctrl-C, SIGTERM, SIGHUP)
at any step: every child stopped, every socket removed, 128 + the signal's number (130 for
Ctrl-C, 143 for SIGTERM, 129 for SIGHUP).")]
    Demo(DemoArgs),
    /// Serve the key-value store on a Unix stream socket and/or TCP.
    ///
    /// Once listening it prints `ready: pid N socket PATH` (and/or `tcp ADDR`) on stdout, and
    /// tells systemd READY=1 when NOTIFY_SOCKET is set; SIGTERM, SIGINT and SIGHUP (the
    /// terminal closed) stop it, removing the socket file and its pid file, with exit status
    /// 0.
    ///
    /// With -v it narrates socket, bind, listen, epoll_create1, epoll_ctl, epoll_wait,
    /// accept4 with SO_PEERCRED, read and send (payloads escaped), close.
    #[command(after_help = "Examples:
  socket-demo server                               # ready: pid N socket <runtime dir>/kv.sock
  socket-demo server --tcp                         # and TCP on 127.0.0.1:6380
  socket-demo server --max-clients 100 --tcp 127.0.0.1:6380
  socket-demo server --tcp 0.0.0.0:6380 --allow-from 192.168.1.0/24 --allow-from 10.1.2.3
  socket-demo server --tcp 0.0.0.0:6380 --keepalive 60   # free dead peers' connections
  socket-demo server --unix /tmp/kv.sock --pid-file /tmp/kv.pid
  socket-demo server | grep -m1 '^ready:'          # wait for it in a script")]
    Server(ServerArgs),
    /// Send one command (or one per stdin line) and print the replies like redis-cli.
    ///
    /// With -v it narrates connect (and the descriptor it gives).
    Client(ClientArgs),
    /// Serve the same commands over a Unix datagram socket, one request per datagram.
    ///
    /// Prints `ready: pid N socket PATH` once bound, like `server`, and stops the same way.
    ///
    /// With -v it narrates socket, bind, recvmsg (with the sender's path) and sendto, with
    /// their payloads escaped.
    #[command(after_help = "Examples:
  socket-demo dgram-server                         # <runtime dir>/kv-dgram.sock
  socket-demo dgram-server --path /tmp/kv-dgram.sock")]
    DgramServer(DgramServerArgs),
    /// Send commands to the datagram server from a socket bound to a path of our own.
    ///
    /// With -v it narrates the bind of its own path, connect, send, recv, unlink.
    #[command(after_help = "Examples:
  socket-demo dgram-client SET k v
  printf 'INCR n\\nGET n\\n' | socket-demo dgram-client --timeout 2")]
    DgramClient(DgramClientArgs),
    /// Pass an open file descriptor to another process over a Unix socket (SCM_RIGHTS).
    ///
    /// With -v it narrates the file's open and unlink, sendmsg with SCM_RIGHTS and
    /// SCM_CREDENTIALS, the receiver's recvmsg.
    #[command(after_help = "Examples:
  socket-demo pass-fd                              # ok: receiver pid N read ...
  socket-demo pass-fd -v                           # the sendmsg/recvmsg with SCM_RIGHTS")]
    PassFd(PassFdArgs),
    /// Print where socket-demo's objects live: one bare path, or all as `NAME PATH` lines.
    ///
    /// With -v it narrates the runtime directory's creation.
    #[command(after_help = "Examples:
  redis-cli -s \"$(socket-demo path socket)\" PING     # PONG, with a server running
  kill \"$(cat \"$(socket-demo path pid-file)\")\"       # stop the server gracefully
  socket-demo path                                # every object, one `NAME PATH` per line
  socket-demo path socket --unix /tmp/kv.sock       # prints /tmp/kv.sock")]
    Path(PathArgs),
    /// A test hook (see the module docs): not in the parser a user has.
    #[command(skip)]
    Worker(WorkerArgs),
}

impl Default for Command {
    fn default() -> Self {
        Command::Demo(DemoArgs::default())
    }
}

#[derive(Args, Debug, Default)]
pub struct DemoArgs {
    /// A test hook (see the module docs): before step N, wait until a signal asks the demo
    /// to stop, so that a test's signal is certain to land there, with the server running.
    #[arg(skip)]
    pub wait_for_signal_before_step: Option<u32>,
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Unix stream socket path [default: <runtime dir>/kv.sock, unless only --tcp is given].
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// Also (or only) listen on TCP; port 0 picks a free port, printed in the ready line
    /// [default ADDR when --tcp is given alone: 127.0.0.1:6380].
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
    /// Accept TCP clients only from this network (`10.0.0.0/8`, `2001:db8::/32`) or address
    /// (`10.1.2.3`); repeat for several. Others are refused at accept with an error reply and
    /// logged with their address, before a byte of theirs is read [default: any address].
    #[arg(
        long,
        value_name = "CIDR",
        requires = "tcp",
        value_parser = parse_cidr
    )]
    pub allow_from: Vec<ipnet::IpNet>,
    /// Probe a TCP client after this many seconds of silence (SO_KEEPALIVE; then every SECS/3,
    /// 3 times), and close its connection once it has answered nothing, nor acknowledged
    /// what we sent, for about twice SECS: a client whose machine vanished, or is behind a
    /// link that went down. 0: off (TCP's default), and such a connection is kept until the
    /// server stops.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        requires = "tcp",
        value_parser = clap::value_parser!(u32).range(0..=crate::sock::MAX_KEEPALIVE.into())
    )]
    pub keepalive: u32,
    /// The pid file, also the lock that keeps a second server off the socket
    /// [default: <socket>.pid; none with --tcp alone].
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
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
    /// Give up with an error when connecting, sending a request or waiting for the next bytes
    /// of a reply makes no progress for this many seconds (a server whose link is down, a
    /// stopped server) [default: wait as long as the kernel does].
    #[arg(
        long,
        value_name = "SECS",
        value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..)
    )]
    pub timeout: Option<u64>,
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
    /// The pid file, also the lock that keeps a second server off the socket
    /// [default: <socket>.pid].
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Options of `socket-demo path`.
#[derive(Args, Debug)]
pub struct PathArgs {
    /// The object whose path to print, alone on its line; every one, as `NAME PATH`, if none.
    #[arg(value_enum, value_name = "OBJECT")]
    pub object: Option<Object>,
    /// The stream socket a server was started with [default: <runtime dir>/kv.sock].
    #[arg(long, value_name = "PATH")]
    pub unix: Option<PathBuf>,
    /// The datagram socket a dgram-server was started with
    /// [default: <runtime dir>/kv-dgram.sock].
    #[arg(long, value_name = "PATH")]
    pub dgram: Option<PathBuf>,
}

/// The objects `socket-demo path` knows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// The stream server's socket.
    Socket,
    /// The stream server's pid file (`<socket>.pid`).
    PidFile,
    /// The datagram server's socket.
    DgramSocket,
    /// The datagram server's pid file (`<dgram socket>.pid`).
    DgramPidFile,
    /// The private runtime directory.
    Dir,
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

/// Options of the `worker` hook (see the module docs).
#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The server's socket.
    #[arg(long, value_name = "PATH", required_unless_present = "tcp")]
    pub unix: Option<PathBuf>,
    /// The server's TCP address instead (a test across hosts).
    #[arg(long, value_name = "ADDR", conflicts_with = "unix")]
    pub tcp: Option<String>,
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
  printf 'SET k v\\nGET k\\n' | socket-demo client
  socket-demo client --tcp 10.0.0.5:6380 --timeout 5 PING   # an error, not a hang, if unreachable";

/// `--allow-from`: a network in CIDR notation, or one address (a network of one). A network
/// written with host bits set (`10.1.2.3/8`) is refused rather than silently widened: it is
/// most likely a typo for an address or for another prefix.
fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(addr) = s.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(addr));
    }
    let net: ipnet::IpNet = s
        .parse()
        .map_err(|_| format!("not an address or a CIDR network like 10.0.0.0/8: {s:?}"))?;
    if net.trunc() != net {
        return Err(format!(
            "{s} has host bits set: the network is {}, the address alone is {}",
            net.trunc(),
            net.addr()
        ));
    }
    Ok(net)
}

/// The environment variable that turns the test hooks on (see the module docs): `1`.
pub const TEST_HOOKS: &str = "IPC_DEMO_TEST_HOOKS";

/// The demo's hook option (see the module docs).
const WAIT_BEFORE_STEP: &str = "wait-for-signal-before-step";

/// The command line a user has: what `--help` shows and `--generate` documents. `client
/// --help` lists the commands the server answers, taken from the table it runs them from, so
/// the list cannot drift from what is supported.
pub fn command() -> clap::Command {
    let help = format!("{}\n\n{CLIENT_EXAMPLES}", crate::kv::commands::help());
    Cli::command().mut_subcommand("client", |c| c.after_help(help))
}

/// Parse the command line: [`command`], plus the test hooks if [`TEST_HOOKS`] is `1`.
pub fn parse() -> Cli {
    let hooks = std::env::var_os(TEST_HOOKS).is_some_and(|v| v == "1");
    let parser = if hooks {
        with_hooks(command())
    } else {
        command()
    };
    from_matches(parser.get_matches()).unwrap_or_else(|e| e.exit())
}

/// `cmd` with the test hooks: the `worker` subcommand and `demo --wait-for-signal-before-step`.
fn with_hooks(cmd: clap::Command) -> clap::Command {
    let worker = WorkerArgs::augment_args(
        clap::Command::new("worker").about("One of the demo's client processes (a test hook)"),
    );
    cmd.subcommand(worker.hide(true))
        .mut_subcommand("demo", |demo| {
            demo.arg(
                Arg::new(WAIT_BEFORE_STEP)
                    .long(WAIT_BEFORE_STEP)
                    .value_name("N")
                    .value_parser(clap::value_parser!(u32))
                    .hide(true),
            )
        })
}

/// The [`Cli`] that `matches` hold, the hooks' values included (clap's derive knows nothing of
/// them: they are `skip`ped there, so that the parser a user has cannot even name them).
fn from_matches(mut matches: ArgMatches) -> Result<Cli, clap::Error> {
    let worker = match matches.subcommand_name() {
        Some("worker") => matches.remove_subcommand(),
        _ => None,
    };
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let Some((_, worker)) = worker {
        cli.command = Some(Command::Worker(WorkerArgs::from_arg_matches(&worker)?));
    }
    if let Some(Command::Demo(demo)) = &mut cli.command
        && let Some(demo_matches) = matches.subcommand_matches("demo")
        && let Ok(Some(&n)) = demo_matches.try_get_one::<u32>(WAIT_BEFORE_STEP)
    {
        demo.wait_for_signal_before_step = Some(n);
    }
    Ok(cli)
}

impl Command {
    /// The role's name in the `-v` timeline: the subcommand's (`pass-fd` plays two: the
    /// sender, and with `--receive` the receiver it starts).
    pub fn role(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Server(_) => "server",
            Command::Client(_) => "client",
            Command::DgramServer(_) => "dgram-server",
            Command::DgramClient(_) => "dgram-client",
            Command::PassFd(a) if a.receive => "receiver",
            Command::PassFd(_) => "sender",
            Command::Path(_) => "path",
            Command::Worker(_) => "worker",
        }
    }
}
