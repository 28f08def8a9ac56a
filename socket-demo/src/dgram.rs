//! `socket-demo dgram-server` and `dgram-client`: the same commands over a Unix datagram
//! socket.
//!
//! A datagram socket keeps message boundaries, so there is no parsing across reads: one
//! `recvmsg` is one whole request, and one `sendto` one whole reply. There is no connection
//! either, so the server learns where to reply from the sender's address, which exists only
//! if the client *bound* its socket to a path. The client therefore binds a unique path in the
//! runtime dir (and removes it when it exits, on Ctrl-C too), and `connect`s its socket to the
//! server's path, which both sets the default destination and makes the kernel drop datagrams
//! from anyone else. Each role is a module of its own: [`server`] and [`client`].
//!
//! # System calls, in order
//!
//! Server: `socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`, `umask(0177)` +
//! `bind`, the ready line, then loop: `poll` (socket and shutdown pipe), `recvmsg` until
//! EAGAIN, `sendto` the sender's path. Client: `socket`, `bind` to its own path, `connect` to
//! the server's, then per command `send(MSG_DONTWAIT)` (`poll` for POLLOUT on EAGAIN), `poll` +
//! `recv` of the reply; `unlink` of its path at exit.
//!
//! # Pitfalls
//!
//! - A datagram larger than the receive buffer is silently truncated; `recvmsg` reports
//!   MSG_TRUNC, and the server refuses such a request instead of executing half of it.
//! - A client that stops reading fills its receive queue, and a blocking `sendto` would then
//!   stall the server for everyone. The server's socket is non-blocking: that reply is dropped
//!   and logged.
//! - A reply too large for one datagram (EMSGSIZE) is replaced by an error reply.
//! - A sender that never bound its socket has no address to reply to; its datagram is logged
//!   and dropped (see [`server::has_address`]: its address must not even be looked at).
//! - A server that stops reading (stopped, or just busy) lets its queue fill up: Linux queues
//!   at most `net.unix.max_dgram_qlen` datagrams (10 by default) per socket. A blocking `send`
//!   to it then sleeps in the kernel, where neither a timeout nor Ctrl-C reaches it (SA_RESTART
//!   restarts the call after the handler). The client sends with MSG_DONTWAIT and, on EAGAIN,
//!   `poll`s for POLLOUT beside the shutdown self-pipe, under the same deadline as the reply.

pub mod client;
pub mod server;

use std::path::{Path, PathBuf};

use common::Result;

use crate::sock;

/// The largest request datagram the server accepts.
pub const MAX_REQUEST_DATAGRAM: usize = 64 * 1024;
/// The largest reply datagram a client can receive.
pub const MAX_REPLY_DATAGRAM: usize = 256 * 1024;

/// The server's socket: `path`, or the default one in the runtime dir.
fn default_path(path: Option<&Path>) -> Result<PathBuf> {
    match path {
        Some(p) => Ok(p.to_owned()),
        None => common::names::runtime_path(sock::DEFAULT_DGRAM_SOCKET),
    }
}
