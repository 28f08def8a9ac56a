//! Sockets: an AF_UNIX `socketpair` (stream or datagram), and TCP over 127.0.0.1.
//!
//! A connected pair made before the fork measures exactly what a client and a server would
//! pay once connected; `bind`/`connect` by name costs nothing per message. TCP gets
//! TCP_NODELAY, without which Nagle's algorithm holds back a one-byte message until the
//! previous one is acknowledged. Each end keeps two descriptors of its socket (a `dup`), one
//! for each direction, so that ending the stream (`shutdown(SHUT_WR)`) is the same code for
//! every socket.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;

use common::{Context, Result};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::Pair;
use super::fd::{FdEnd, Finish};

/// Which AF_UNIX socket.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// SOCK_STREAM: a byte stream like a pipe, but both ways on one descriptor.
    Stream,
    /// SOCK_DGRAM: message boundaries kept, reliable on AF_UNIX (a full queue blocks).
    Datagram,
}

/// A connected AF_UNIX pair.
pub fn unix_pair(kind: Kind) -> Result<Pair<FdEnd, FdEnd>> {
    let (ty, finish, what) = match kind {
        Kind::Stream => (SockType::Stream, Finish::Shutdown, "Unix stream socket"),
        Kind::Datagram => (
            SockType::Datagram,
            Finish::EmptyMessage,
            "Unix datagram socket",
        ),
    };
    let (a, b) = socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC)
        .ctx("socketpair", what)?;
    Ok(Pair::new(
        both_ways(a, finish, what)?,
        both_ways(b, finish, what)?,
    ))
}

/// A TCP connection over loopback: listen on an ephemeral port, connect, accept.
pub fn tcp_pair() -> Result<Pair<FdEnd, FdEnd>> {
    const WHAT: &str = "TCP socket";
    // std's sockets are made with SOCK_CLOEXEC; the calls are the plain BSD ones.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).ctx("bind", "127.0.0.1:0")?;
    let addr = listener.local_addr().ctx("getsockname", WHAT)?;
    let client = TcpStream::connect(addr).ctx("connect", addr)?;
    let (server, _) = listener.accept().ctx("accept", addr)?;
    for s in [&client, &server] {
        s.set_nodelay(true).ctx("setsockopt(TCP_NODELAY)", addr)?;
    }
    Ok(Pair::new(
        both_ways(client.into(), Finish::Shutdown, WHAT)?,
        both_ways(server.into(), Finish::Shutdown, WHAT)?,
    ))
}

fn both_ways(sock: OwnedFd, finish: Finish, what: &'static str) -> Result<FdEnd> {
    let tx = sock.try_clone().ctx("dup", what)?;
    Ok(FdEnd::new(tx, sock, finish, what))
}
