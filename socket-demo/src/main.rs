//! socket-demo: a key-value service over Unix sockets and TCP that real Redis clients can use.
//!
//! # What it shows
//!
//! The client-server model over sockets. A stream server (`socket`, `bind` with mode 0600,
//! `listen`, `accept4`, non-blocking I/O under `epoll`) serves many clients at once: partial
//! reads and writes, pipelined requests, backpressure, admission by SO_PEERCRED or by
//! address, TCP across hosts (TCP_NODELAY, keepalive, timeouts). The datagram style
//! (`sendto`/`recvfrom`, each reply to the client's own bound path); credentials
//! (SO_PEERCRED, SCM_CREDENTIALS) and passing an open file descriptor (SCM_RIGHTS). What the
//! server serves is a small Redis (RESP2, and RESP3 after `HELLO 3`), so `redis-cli`,
//! `redis-benchmark`, redis-py and `nc -U` work against it; that product lives in
//! [`kv`], below the lesson.
//!
//! # Roles
//!
//! Each a subcommand; `socket-demo` alone plays `demo`.
//!
//! - `socket-demo server [--unix PATH] [--tcp [ADDR]] [--max-clients N] [--allow-uid UID]
//!   [--allow-from CIDR] [--keepalive SECS] [--pid-file FILE]` — terminal 1; prints
//!   `ready: pid N socket PATH` (and/or `tcp ADDR`) once clients can connect;
//! - `socket-demo client [--unix PATH | --tcp ADDR] [--timeout SECS] [COMMAND...]` —
//!   terminal 2 (no command: one per stdin line); or `redis-cli -s "$(socket-demo path
//!   socket)"`; `client --help` lists the commands;
//! - `socket-demo dgram-server [--path PATH]` and `socket-demo dgram-client [--path PATH]
//!   [COMMAND...]` — the same commands, one request per datagram;
//! - `socket-demo pass-fd` — a descriptor handed to a receiver process it starts;
//! - `socket-demo path [OBJECT]` — where the sockets and pid files live, for scripts;
//! - `socket-demo demo` — every role, played and checked. `-v` (before or after the
//!   subcommand) narrates every call, in every process.
//!
//! # System calls, in order
//!
//! - server ([`server`], [`connection`], [`sock`]): `flock` of the pid file, `connect` (probing
//!   a leftover socket file: ECONNREFUSED means stale, unlink it), `socket`, `umask(0177)` +
//!   `bind` + `listen`; `epoll_create1`, `epoll_ctl(ADD)` of the listeners and the shutdown
//!   pipe; the ready line (and READY=1 under NOTIFY_SOCKET); loop: `epoll_wait`, `accept4` +
//!   SO_PEERCRED (or `getpeername`, TCP_NODELAY), `read`, parse, execute, `send`,
//!   `epoll_ctl(MOD)` under backpressure; after a round, `epoll_wait` with a zero timeout for
//!   20 µs before sleeping ([`tuning`]); at a stop: `close` the listeners, `send` what is in
//!   flight, `unlink`.
//! - client ([`client`]): `socket`, `connect` (with `--timeout`, SO_SNDTIMEO/SO_RCVTIMEO),
//!   `write` of a request, `read` until a whole reply has arrived.
//! - dgram-server and dgram-client ([`dgram`]): `bind`, `recvmsg` (the sender's path),
//!   `sendto`; the client `bind`s its own path, `connect`s, `send(MSG_DONTWAIT)` + `poll`,
//!   `recv`, `unlink`.
//! - pass-fd ([`passfd`]): `open(O_EXCL)`, `unlink`, `socketpair`, SO_PASSCRED, `sendmsg`
//!   with SCM_RIGHTS and SCM_CREDENTIALS; the receiver's `recvmsg(MSG_CMSG_CLOEXEC)`.
//!
//! # Pitfalls
//!
//! - A stream has no message boundaries: a `read` holds half a request or fifty; the parser
//!   is right at every split point ([`kv::protocol`]).
//! - A client that never reads its replies: its output is bounded, and it stops being read
//!   ([`connection::OUTPUT_LIMIT`]).
//! - A client gone while we `send`: MSG_NOSIGNAL, or SIGPIPE kills the server ([`connection`]).
//! - EMFILE at `accept4` with level-triggered epoll: a spare descriptor ([`server`]).
//! - A stale socket file versus a live server's: a lock, then a non-blocking probe ([`sock`]).
//! - The socket file born readable by others: `umask` around `bind` ([`sock`]).
//! - A path longer than `sun_path` (108 bytes): said, with how much too long ([`sock`]).
//! - A peer that vanished without a FIN: keepalive, and client timeouts ([`sock`]).
//! - A stdout nobody reads must not stop the server: its log never blocks ([`server`]).
//! - A datagram server's full queue: the client waits in `poll`, not in `send` ([`dgram`]).
//! - Control messages: one byte of data, MSG_CTRUNC, MSG_CMSG_CLOEXEC ([`passfd`]).
//!
//! # Cleanup
//!
//! SIGINT, SIGTERM and SIGHUP (the terminal closed) stop a server's loop through the self-pipe
//! in its epoll set: the replies in flight are sent, the socket file and its pid file
//! removed. A `kill -9` leftover is recognised as stale by the next server (its pid file is
//! not locked, nothing accepts on its socket), and `make clean-ipc` removes it. A
//! dgram-client removes its own bound socket, on Ctrl-C too. The demo's children are stopped
//! when it ends or is interrupted, and die with it (PR_SET_PDEATHSIG) if it cannot unwind.
//!
//! # Exit status
//!
//! 0 done (a server asked to stop, by SIGTERM, SIGINT or SIGHUP, included), 1 the check or
//! the operation failed (a client whose reply was an error, as with redis-cli), 2 usage,
//! 128+N stopped by signal N before finishing, after cleaning up (the demo, dgram-client;
//! the other clients have nothing to clean up and die of the signal). See `common::error`.
//!
//! # See also
//!
//! socket(7), unix(7) (the 108-byte `sun_path`, SCM_RIGHTS, SCM_CREDENTIALS), epoll(7),
//! accept4(2), sendmsg(2), cmsg(3), tcp(7) (TCP_NODELAY, keepalive, TCP_USER_TIMEOUT),
//! socket(7) (SO_RCVTIMEO); TLPI chapters 56-61 and 63 (epoll); the Redis protocol:
//! <https://redis.io/docs/latest/develop/reference/protocol-spec/>.

mod cli;
mod client;
mod connection;
mod demo;
mod dgram;
mod kv;
mod passfd;
mod path;
mod server;
mod sock;
mod tuning;
mod worker;

use std::process::ExitCode;

use cli::Command;

fn main() -> ExitCode {
    // cli::parse, not Cli::parse: `client --help` lists the command table, and the test hooks
    // exist only when the environment asks for them (see `cli`).
    let cli = cli::parse();
    if let Some(kind) = cli.generate.kind {
        let page = common::generate::run_with(cli::command(), kind, &cli::MANUAL);
        return common::error::finish("socket-demo", page);
    }
    let command = cli.command.unwrap_or_default();
    common::narrate::init(command.role(), cli.trace);
    let outcome = match &command {
        Command::Demo(args) => demo::run(args),
        Command::Server(args) => server::run(args),
        Command::Client(args) => client::run(args),
        Command::DgramServer(args) => dgram::server::run(args),
        Command::DgramClient(args) => dgram::client::run(args),
        Command::PassFd(args) => passfd::run(args),
        Command::Path(args) => path::run(args),
        Command::Worker(args) => worker::run(args),
    };
    common::error::finish("socket-demo", outcome)
}
