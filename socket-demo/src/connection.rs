//! One client's connection in the server: the state machine the event loop drives.
//!
//! A client has a read buffer (bytes received but not yet parsed: half a request, or many
//! pipelined ones), a write buffer (replies not yet taken by the kernel) and a session (its
//! protocol version, name and open transaction; see [`crate::kv`]). The loop in
//! [`crate::server`] calls, for a ready client: [`read_some`] (one `read`), then [`pump`]
//! (execute what is complete, `send` the replies, until neither moves), then
//! [`update_interest`] (`epoll_ctl(MOD)` when EPOLLIN or EPOLLOUT must change).
//!
//! # System calls, in order
//!
//! `read` once (at most 64 KiB); `send(MSG_NOSIGNAL)` until EAGAIN or done; `epoll_ctl(MOD)`.
//!
//! # Pitfalls
//!
//! - Requests already buffered must run as soon as output drains below [`OUTPUT_LIMIT`]: no
//!   new event would come for them (see [`pump`]).
//! - EOF is not the end: the complete requests before it still get their replies.
//! - MSG_NOSIGNAL on every `send`: a vanished client costs an EPIPE, not a SIGPIPE.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use nix::sys::socket::{MsgFlags, send};

use crate::kv::protocol::{self, Parse};
use crate::kv::{self, After, Session, State};
use crate::sock;

/// Stop reading from a client whose unsent replies exceed this many bytes.
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// How much one `read` takes from one client before the loop moves on to the others.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// An emptied client buffer larger than this is freed rather than kept for reuse.
const KEEP_CAPACITY: usize = READ_CHUNK;

/// One client's connection: its socket, its buffers and its session.
pub(crate) struct Client {
    pub(crate) fd: OwnedFd,
    /// Who this is, for the log: `pid=42 uid=1000` or `127.0.0.1:5555`.
    pub(crate) who: String,
    pub(crate) rbuf: Vec<u8>,
    /// Bytes of `rbuf` already parsed and executed.
    pub(crate) rpos: usize,
    pub(crate) wbuf: Vec<u8>,
    /// Bytes of `wbuf` already sent.
    pub(crate) wpos: usize,
    /// No more requests will be read or executed (QUIT, protocol error, EOF, shutdown);
    /// close once the output is sent.
    pub(crate) closing: bool,
    /// The interest currently registered with epoll, to skip needless `epoll_ctl` calls.
    pub(crate) interest: EpollFlags,
    /// This client's epoll token (CLIENT_BASE + its slot).
    pub(crate) token: u64,
    /// Already in the server's `ready` list for this round.
    pub(crate) queued: bool,
    /// Its protocol version, name and transaction.
    pub(crate) session: Session,
}

impl Client {
    /// Bytes of replies not yet taken by the kernel.
    pub(crate) fn pending_out(&self) -> usize {
        self.wbuf.len() - self.wpos
    }
}

/// Read once from the client into its buffer. An error if the connection is dead: ECONNRESET
/// (the client closed with our replies unread), ETIMEDOUT (keepalive or TCP_USER_TIMEOUT gave
/// up on a peer that no longer answers, see [`crate::sock::keepalive`]).
pub(crate) fn read_some(client: &mut Client, scratch: &mut [u8]) -> Result<(), Errno> {
    loop {
        match nix::unistd::read(&client.fd, scratch) {
            Ok(0) => {
                common::trace!(
                    "read(fd {}) -> 0: EOF ({})",
                    client.fd.as_raw_fd(),
                    client.who
                );
                // EOF: the client will send nothing more (it may have only shut down its
                // writing half, as `nc -N` does). Its complete requests still get replies.
                client.closing = true;
                return Ok(());
            }
            Ok(n) => {
                common::trace!(
                    "read(fd {}) -> {n} bytes {}",
                    client.fd.as_raw_fd(),
                    sock::preview(&scratch[..n])
                );
                client.rbuf.extend_from_slice(&scratch[..n]);
                return Ok(());
            }
            Err(Errno::EINTR) => {}
            Err(e) if would_block(e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Execute the complete requests in the buffer (while output is under the limit) and send
/// replies, until neither makes progress. False if the connection is finished; an error if it
/// is dead (EPIPE, ECONNRESET, ETIMEDOUT from `send`).
///
/// Both halves must be retried until *neither* moves: sending may drain the output below the
/// limit, and then requests already buffered must run now. No new event would come for them:
/// the client may be waiting for exactly those replies before it sends anything else.
pub(crate) fn pump(client: &mut Client, state: &mut State) -> Result<bool, Errno> {
    loop {
        let executed = execute_buffered(client, state);
        let sent = flush(client)?;
        if client.pending_out() > OUTPUT_LIMIT || (!executed && sent == 0) {
            break;
        }
    }
    Ok(!(client.closing && client.pending_out() == 0))
}

/// Returns true if at least one request was executed.
fn execute_buffered(client: &mut Client, state: &mut State) -> bool {
    let mut executed = false;
    let eof = client.closing;
    while client.pending_out() <= OUTPUT_LIMIT {
        match protocol::parse(&client.rbuf[client.rpos..]) {
            Parse::Complete(args, used) => {
                client.rpos += used;
                if args.is_empty() {
                    continue;
                }
                executed = true;
                let after = kv::execute(state, &mut client.session, &args, &mut client.wbuf);
                if after == After::Close {
                    client.closing = true;
                    empty(&mut client.rbuf);
                    client.rpos = 0;
                    break;
                }
            }
            Parse::Incomplete => break,
            Parse::Error(e) => {
                protocol::error(&mut client.wbuf, &format!("ERR {e}"));
                client.closing = true;
                empty(&mut client.rbuf);
                client.rpos = 0;
                executed = true;
                break;
            }
        }
    }
    // Compact: drop what was parsed, keep an incomplete tail (or a backlog).
    if client.rpos == client.rbuf.len() {
        empty(&mut client.rbuf);
        client.rpos = 0;
    } else if client.rpos > 0 {
        client.rbuf.drain(..client.rpos);
        client.rpos = 0;
    }
    if eof && client.pending_out() <= OUTPUT_LIMIT {
        // Nothing more will arrive: an incomplete tail can never be answered.
        empty(&mut client.rbuf);
    }
    executed
}

/// Empty a client buffer, and give its memory back if one big request or reply grew it: a
/// thousand idle clients must not each keep the megabytes they once needed.
fn empty(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

/// Send as much output as the kernel takes: the bytes sent, or the error if the connection is
/// dead.
fn flush(client: &mut Client) -> Result<usize, Errno> {
    let start = client.wpos;
    while client.wpos < client.wbuf.len() {
        // MSG_NOSIGNAL: a client that has gone away must cost us an EPIPE, not a SIGPIPE.
        match send(
            client.fd.as_raw_fd(),
            &client.wbuf[client.wpos..],
            MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(n) => {
                common::trace!(
                    "send(fd {}, {}) -> {n} bytes",
                    client.fd.as_raw_fd(),
                    sock::preview(&client.wbuf[client.wpos..client.wpos + n])
                );
                client.wpos += n;
            }
            Err(Errno::EINTR) => {}
            Err(e) if would_block(e) => {
                common::trace!(
                    "send(fd {}) -> EAGAIN: wait for EPOLLOUT",
                    client.fd.as_raw_fd()
                );
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let sent = client.wpos - start;
    if client.wpos == client.wbuf.len() {
        empty(&mut client.wbuf);
        client.wpos = 0;
    } else if client.wpos > OUTPUT_LIMIT {
        // Keep the buffer from creeping: move the unsent tail to the front now and then.
        client.wbuf.drain(..client.wpos);
        client.wpos = 0;
    }
    Ok(sent)
}

/// Register the events this client needs now: input unless closing or over the output limit
/// (that is the backpressure), output while replies are waiting.
pub(crate) fn update_interest(epoll: &Epoll, client: &mut Client) -> bool {
    let mut want = EpollFlags::empty();
    if !client.closing && client.pending_out() <= OUTPUT_LIMIT {
        want |= EpollFlags::EPOLLIN;
    }
    if client.pending_out() > 0 {
        want |= EpollFlags::EPOLLOUT;
    }
    if want == client.interest {
        return true;
    }
    common::trace!(
        "epoll_ctl(MOD, fd {}, {}) ({} bytes of replies pending)",
        client.fd.as_raw_fd(),
        interest_name(want),
        client.pending_out()
    );
    client.interest = want;
    let mut ev = EpollEvent::new(want, client.token);
    epoll.modify(client.fd.as_fd(), &mut ev).is_ok()
}

fn interest_name(flags: EpollFlags) -> &'static str {
    match (
        flags.contains(EpollFlags::EPOLLIN),
        flags.contains(EpollFlags::EPOLLOUT),
    ) {
        (true, true) => "EPOLLIN|EPOLLOUT",
        (true, false) => "EPOLLIN",
        (false, true) => "EPOLLOUT",
        (false, false) => "nothing",
    }
}

pub(crate) fn would_block(e: Errno) -> bool {
    e == Errno::EAGAIN || e == Errno::EWOULDBLOCK
}
