//! Accepting a client, and deciding whether to keep it: `accept4`, SO_PEERCRED or
//! `getpeername`, `--allow-uid`, `--allow-from`, `--max-clients`, TCP_NODELAY and keepalive.
//!
//! # System calls, in order
//!
//! `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)` until EAGAIN (at most [`ACCEPT_BATCH`] a wake-up);
//! then for a Unix client `getsockopt(SO_PEERCRED)`, for a TCP client `getpeername`,
//! `setsockopt(TCP_NODELAY)` and, with `--keepalive`, the keepalive options (see
//! [`sock::keepalive`]); `epoll_ctl(ADD, EPOLLIN)` for one admitted, or
//! `send(MSG_DONTWAIT | MSG_NOSIGNAL)` of an error reply and `close` for one refused.
//!
//! # Admission
//!
//! On accept, SO_PEERCRED gives the Unix client's pid and uid (the kernel's word, not the
//! client's). With `--allow-uid`, other uids are refused with an error reply before a byte
//! of theirs is read (and if SO_PEERCRED fails, the client is refused: its uid is unknown).
//! TCP has no credentials: with `--allow-from CIDR` (repeatable), a client whose address
//! (`getpeername`; an IPv4-mapped IPv6 address counts as the IPv4 one) is in none of the
//! networks is refused the same way, logged with its address, and never reaches the command
//! code. With `--max-clients N`, client N+1 gets `-ERR max number of clients reached` and is
//! closed; the others never notice. N is fitted to the limit on open descriptors at start
//! (see [`crate::tuning`]).
//!
//! # Pitfalls
//!
//! - EMFILE with a connection pending: level-triggered epoll reports the listener again at
//!   once, for ever. A spare descriptor is given back, the connection accepted and refused,
//!   and the spare taken again (see `accept_all`).
//! - A refusal must not block the loop, and its client may not read it: the error reply is
//!   sent with MSG_DONTWAIT, best effort.
//! - Fail closed: a client whose uid (SO_PEERCRED failed) or address (`getpeername` failed,
//!   the peer has reset already) cannot be told is refused when a rule asks for one.

use std::os::fd::{AsRawFd, OwnedFd};

use common::{Result, tell};
use nix::errno::Errno;
use nix::sys::epoll::{EpollEvent, EpollFlags};
use nix::sys::socket::{
    MsgFlags, SockFlag, SockaddrStorage, accept4, getpeername, getsockopt, send, setsockopt,
    sockopt,
};

use super::{CLIENT_BASE, Server};
use crate::connection::{Client, would_block};
use crate::kv::Session;
use crate::sock;
use crate::tuning;

/// How many connections one wake-up of a listener accepts, so a connection storm cannot
/// starve the clients already connected.
const ACCEPT_BATCH: usize = 256;

const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// Send a refused client its error reply before the connection is closed. Best effort: it
/// must not block the loop, and the client may not wait to read it.
fn refuse(fd: &OwnedFd, reply: &[u8]) {
    let _ = send(
        fd.as_raw_fd(),
        reply,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    );
}

impl Server {
    /// Accept what is pending on the Unix (or the TCP) listener, and admit or refuse each.
    pub(super) fn accept_all(&mut self, tcp: bool) -> Result<()> {
        for _ in 0..ACCEPT_BATCH {
            let Some(listener) = self.listeners.iter().find(|l| l.tcp == tcp) else {
                return Ok(());
            };
            match accept4(
                &listener.fd,
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            ) {
                Ok(fd) => self.admit(fd, tcp)?,
                Err(e) if would_block(e) => return Ok(()),
                Err(Errno::EINTR | Errno::ECONNABORTED) => {}
                Err(e @ (Errno::EMFILE | Errno::ENFILE)) => {
                    // Out of descriptors (`run` keeps --max-clients below the limit, so
                    // only something else can have used them up). With level-triggered epoll
                    // the pending connection would wake us again at once, forever: a busy
                    // loop. So give back the spare descriptor, accept the connection, refuse
                    // it with an error reply, and take the spare again.
                    let cause = e.desc();
                    tell!(
                        self.log,
                        "accept4: {cause}; refusing a client until descriptors free up"
                    )?;
                    self.spare.release();
                    if let Ok(fd) = accept4(&listener.fd, SockFlag::SOCK_CLOEXEC) {
                        refuse(&fd, MAX_CLIENTS_REPLY);
                    }
                    self.spare = tuning::Spare::take();
                    return Ok(());
                }
                Err(e) => {
                    return tell!(self.log, "accept4: {}", e.desc());
                }
            }
        }
        Ok(())
    }

    fn admit(&mut self, fd: OwnedFd, tcp: bool) -> Result<()> {
        self.state.stats.total_connections_received += 1;
        let who = if tcp {
            let Some(who) = self.admit_tcp(&fd)? else {
                return Ok(());
            };
            who
        } else {
            match getsockopt(&fd, sockopt::PeerCredentials) {
                Ok(cred) => {
                    let who = format!("pid={} uid={}", cred.pid(), cred.uid());
                    if let Some(allowed) = self.opts.allow_uid
                        && cred.uid() != allowed
                    {
                        tell!(
                            self.log,
                            "refused client {who}: only uid {allowed} is allowed"
                        )?;
                        let msg = format!("-ERR uid {} is not allowed here\r\n", cred.uid());
                        refuse(&fd, msg.as_bytes());
                        return Ok(());
                    }
                    who
                }
                Err(e) if self.opts.allow_uid.is_some() => {
                    // Fail closed: a client whose uid cannot be told is not the allowed one.
                    let cause = e.desc();
                    return tell!(
                        self.log,
                        "refused client: SO_PEERCRED failed ({cause}), so its uid is unknown"
                    );
                }
                Err(e) => format!("unknown peer ({})", e.desc()),
            }
        };
        if self.clients >= self.opts.max_clients {
            let max = self.opts.max_clients;
            tell!(
                self.log,
                "refused client {who}: max clients ({max}) reached"
            )?;
            refuse(&fd, MAX_CLIENTS_REPLY);
            return Ok(());
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let token = CLIENT_BASE + slot as u64;
        if let Err(e) = self
            .epoll
            .add(&fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            self.free.push(slot);
            return tell!(self.log, "epoll_ctl ADD for client {who}: {}", e.desc());
        }
        tell!(self.log, "client connected: {who}")?;
        common::trace!("accept4() -> fd {} ({who})", fd.as_raw_fd());
        common::trace!("epoll_ctl(ADD, fd {}, EPOLLIN)", fd.as_raw_fd());
        self.slots[slot] = Some(Client {
            fd,
            who,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            wpos: 0,
            closing: false,
            interest: EpollFlags::EPOLLIN,
            token,
            queued: false,
            session: Session::connection(self.state.stats.total_connections_received),
        });
        self.clients += 1;
        self.state.stats.connected_clients = self.clients;
        Ok(())
    }

    /// Admit a TCP client (its address for the log), or refuse it (`Ok(None)`): with
    /// `--allow-from`, one from elsewhere gets an error reply and is closed before a byte of
    /// its is read. Then the options a connection across a network needs: TCP_NODELAY, and
    /// keepalive if asked for.
    fn admit_tcp(&mut self, fd: &OwnedFd) -> Result<Option<String>> {
        let peer = getpeername::<SockaddrStorage>(fd.as_raw_fd())
            .ok()
            .and_then(|a| sock::to_std(&a));
        if !self.opts.allow_from.is_empty() {
            let Some(peer) = peer else {
                // Fail closed: a client whose address cannot be told is not an allowed one
                // (getpeername fails once the peer has already reset the connection).
                tell!(self.log, "refused client: its address is unknown")?;
                return Ok(None);
            };
            // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
            let ip = peer.ip().to_canonical();
            if !self.opts.allow_from.iter().any(|net| net.contains(&ip)) {
                tell!(self.log, "refused client {peer}: not in --allow-from")?;
                let msg = format!("-ERR address {ip} is not allowed here\r\n");
                refuse(fd, msg.as_bytes());
                return Ok(None);
            }
        }
        let who = peer.map_or_else(|| "tcp peer".to_owned(), |a| a.to_string());
        // Request/reply traffic: don't let Nagle hold back a small reply.
        let _ = setsockopt(fd, sockopt::TcpNoDelay, &true);
        if self.opts.keepalive > 0
            && let Err(e) = sock::keepalive(fd, self.opts.keepalive)
        {
            let cause = e.desc();
            tell!(
                self.log,
                "keepalive for client {who}: setsockopt: {cause}; serving it without"
            )?;
        }
        Ok(Some(who))
    }
}
