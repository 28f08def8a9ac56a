//! socket-demo: a key-value service over Unix sockets and TCP that real Redis clients can use.
//!
//! Shows: the client-server model over sockets. A stream server (`socket`, `bind` with
//! mode 0600, `listen`, `accept4`, non-blocking I/O under `epoll`) serves many clients at once,
//! speaking the Redis protocol (RESP2, and RESP3 after `HELLO 3`) so `redis-cli`,
//! `redis-benchmark`, redis-py and `nc -U` work against it (`client --help` lists the
//! commands); the datagram style (`sendto`/`recvfrom`, replies to the client's own bound
//! path); credentials (SO_PEERCRED, SCM_CREDENTIALS) and passing an open file descriptor
//! (SCM_RIGHTS).
//!
//! Run: `socket-demo` plays it all with child processes and checks it. By hand:
//! `socket-demo server` in one terminal, `socket-demo client SET k v` or
//! `redis-cli -s "$(socket-demo path socket)"` in another; `dgram-server` /
//! `dgram-client`; `pass-fd`; `path` prints where the sockets and pid files live. `-v`
//! narrates every call.
//!
//! What happens: the server probes an existing socket file with `connect` (ECONNREFUSED:
//! stale, unlink; success: a live server, refuse), binds under umask 0177, listens, prints
//! `ready: pid N socket PATH` (systemd's READY=1 too, under NOTIFY_SOCKET), and loops
//! on `epoll_wait`: accept, read, parse, execute, send; backpressure turns EPOLLIN off. After
//! each round it polls (`epoll_wait` with a zero timeout) for 20 µs before sleeping. Over
//! TCP from other hosts (`--tcp 0.0.0.0:PORT`): TCP_NODELAY on both ends, `--allow-from CIDR`
//! checked on accept, `--keepalive SECS` to free the connections of peers that vanished, and
//! `client --timeout SECS` (SO_SNDTIMEO/SO_RCVTIMEO) instead of waiting on a dead link.
//!
//! Cleanup: SIGINT, SIGTERM and SIGHUP stop the loop (self-pipe in the epoll set); replies in
//! flight are sent, the socket file is unlinked. A kill -9 leftover is recognised as stale next
//! time.
//!
//! See also: socket(7), unix(7) (the 108-byte `sun_path`), epoll(7), accept4(2), sendmsg(2),
//! cmsg(3), tcp(7) (TCP_NODELAY, keepalive, TCP_USER_TIMEOUT), socket(7) (SO_RCVTIMEO); the
//! Redis protocol: <https://redis.io/docs/latest/develop/reference/protocol-spec/>.

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

use std::process::ExitCode;

use cli::Role;

fn main() -> ExitCode {
    let cli = cli::parse();
    if let Some(kind) = cli.generate.kind {
        return common::error::finish("socket-demo", common::generate::run(cli::command(), kind));
    }
    let role = cli.role.unwrap_or(Role::Demo(cli::DemoArgs::default()));
    common::narrate::init(role.name(), cli.trace || role.trace());
    let outcome = match &role {
        Role::Demo(args) => demo::run(args),
        Role::Server(args) => server::run(args),
        Role::Client(args) => client::run(args),
        Role::DgramServer(args) => dgram::server(args),
        Role::DgramClient(args) => dgram::client(args),
        Role::PassFd(args) => passfd::run(args),
        Role::Path(args) => path::run(args),
        Role::Worker(args) => demo::worker(args),
    };
    common::error::finish("socket-demo", outcome)
}
