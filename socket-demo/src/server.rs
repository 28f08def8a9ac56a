//! `socket-demo server`: the key-value service, one thread, non-blocking sockets, epoll.
//!
//! # System calls, in order
//!
//! 1. `socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC)`, the lock file, `connect`
//!    (probing a leftover socket file), `umask(0177)` + `bind` + `listen` (see
//!    [`crate::sock`]); with `--tcp`, the same with `AF_INET` and `SO_REUSEADDR`;
//! 2. `epoll_create1(EPOLL_CLOEXEC)`, `epoll_ctl(ADD)` of the shutdown pipe and each listener;
//! 3. the ready line, on stdout (`ready: pid N socket PATH`);
//! 4. loop: `epoll_wait`; `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, `getsockopt(SO_PEERCRED)`
//!    (Unix) or `getpeername` and `setsockopt(TCP_NODELAY)` (TCP; with `--keepalive`,
//!    SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT) and
//!    `epoll_ctl(ADD)` for a newcomer (see [`accept`]); `read` from a ready client;
//!    `send(MSG_NOSIGNAL)` of its replies; `epoll_ctl(MOD)` to turn EPOLLOUT on or EPOLLIN
//!    off; `close`;
//! 5. on SIGTERM: `close` the listeners, `send` what is in flight, `unlink` the socket file.
//!
//! # Pitfalls
//!
//! - A client that never reads: its replies are bounded (see "Backpressure").
//! - A client that vanishes while we `send`: MSG_NOSIGNAL, or SIGPIPE would kill the server.
//! - EMFILE at `accept4` with a connection pending: level-triggered epoll would report it for
//!   ever; a spare descriptor is closed to accept and close it (see [`accept`] and
//!   [`crate::tuning`]).
//! - A TCP client whose machine vanishes, or whose link goes down, sends no FIN: without
//!   keepalive its connection is kept for ever (see [`sock::keepalive`], `--keepalive`).
//! - A stalled stdout must not stall the loop: the log is a [`common::out::Output`], which
//!   never blocks; lines that wait for room put its descriptor in the epoll set (see
//!   [`Server::watch_log`]).
//! - The socket file must never be born readable by others: `umask` before `bind`.
//!
//! # The event loop
//!
//! Every socket is non-blocking (SOCK_NONBLOCK on the listener, `accept4(SOCK_NONBLOCK |
//! SOCK_CLOEXEC)` for clients), and one `epoll_wait` says which are ready. Each client (a
//! state machine of its own, in [`crate::connection`]) has a read buffer (bytes received but
//! not yet parsed: half a request, or many pipelined ones), a write buffer (replies not yet
//! taken by the kernel) and a session (its protocol version, name and open transaction; see
//! [`crate::kv`], which executes the requests). Each round of the loop:
//!
//! 1. `epoll_wait`; `read` once from each ready client (at most 64 KiB: level-triggered epoll
//!    reports it again for the rest, so one busy client cannot starve the others);
//! 2. then, for each of them, parse and execute every complete request, appending replies to
//!    the write buffer, and `send` it: the replies of one round leave together, just before
//!    the loop sleeps again (Redis does the same in `beforeSleep`). Whatever the kernel does
//!    not take (a partial write, EAGAIN) waits for EPOLLOUT.
//!
//! # Backpressure
//!
//! A client that pipelines requests but never reads its replies would make the write buffer
//! grow without bound. Once a client's unsent output passes
//! [`crate::connection::OUTPUT_LIMIT`] (1 MiB), the server stops executing its requests and
//! stops reading from it (EPOLLIN off); the kernel's socket buffer then fills and the
//! client's own `write` blocks. When the output drains, the server resumes. Memory per client
//! is bounded by one request (see [`crate::kv::protocol`]) plus the output limit plus one
//! reply, and only while they last: an emptied buffer that grew past 64 KiB is freed, so idle
//! clients hold next to nothing.
//!
//! # Admission
//!
//! Who may connect, and how many, is decided at `accept4`, before a byte of the client's is
//! read: see [`accept`]. After each round the loop polls a little before sleeping (see
//! [`crate::tuning`]). A connection that fails is closed and logged as `client WHO lost:
//! CAUSE`: ECONNRESET from a client that exited with replies unread, ETIMEDOUT once
//! keepalive has given up on a peer that stopped answering.
//!
//! # Shutdown
//!
//! SIGINT, SIGTERM and SIGHUP (the terminal closed) wake the loop through
//! [`Shutdown::wake_fd`] in the epoll set. The server closes its listeners (new clients are
//! refused at once), executes the requests it has already received, gives the replies up to
//! [`DRAIN_TIME`] to reach their clients, then closes everything, and gives its log up to
//! [`common::out::DRAIN`] to reach a slow reader; dropping the [`sock::SocketFile`] guard
//! removes the socket file and its lock. Stopping is its job: exit 0.

mod accept;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::out::Output;
use common::{Context, Error, Result, tell};
use ipnet::IpNet;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::Signal;
use nix::sys::socket::SockType;

use crate::cli::ServerArgs;
use crate::connection::{Client, READ_CHUNK, pump, read_some, update_interest};
use crate::kv::State;
use crate::sock;
use crate::tuning;

/// How long replies in flight get to reach their clients at shutdown.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

// epoll tokens: small numbers for the fixed descriptors, CLIENT_BASE + slot for clients.
const TOKEN_WAKE: u64 = 0;
const TOKEN_UNIX: u64 = 1;
const TOKEN_TCP: u64 = 2;
const TOKEN_LOG: u64 = 3;
const CLIENT_BASE: u64 = 16;

/// The server's settings, from the command line.
struct Options {
    /// The Unix socket path, if listening on one.
    unix: Option<PathBuf>,
    /// The TCP address, if listening on TCP.
    tcp: Option<String>,
    /// The pid file (and the Unix socket's lock): by default `<socket>.pid`, none for TCP
    /// alone.
    pid_file: Option<PathBuf>,
    /// Refuse clients beyond this many.
    max_clients: usize,
    /// Accept only Unix clients with this uid.
    allow_uid: Option<u32>,
    /// Accept only TCP clients from these networks (none given: any).
    allow_from: Vec<IpNet>,
    /// TCP keepalive after this many idle seconds; 0: off (see [`sock::keepalive`]).
    keepalive: u32,
    /// How long to keep checking for events after a round before sleeping (see
    /// [`crate::tuning`]).
    busy_poll: Duration,
}

struct Listener {
    fd: OwnedFd,
    tcp: bool,
}

/// Where the log's descriptor stands in the epoll set (see [`Server::watch_log`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum LogWatch {
    /// Not in the set.
    Out,
    /// In the set, armed: an EPOLLOUT will come once there is room.
    Armed,
    /// In the set, disarmed (EPOLLONESHOT fired).
    Fired,
    /// `epoll_ctl` refused it (a regular file): waiting lines go with the next line.
    Refused,
}

struct Server {
    epoll: Epoll,
    listeners: Vec<Listener>,
    slots: Vec<Option<Client>>,
    free: Vec<usize>,
    /// Slots closed during the current batch of events; reused only after it, so a stale
    /// event in the same batch cannot reach a newcomer in a recycled slot.
    freed_now: Vec<usize>,
    /// Clients with an event in the current round (see `finish_batch`).
    ready: Vec<usize>,
    clients: usize,
    state: State,
    opts: Options,
    /// The log on stdout: one line per event, never blocking the loop.
    log: Output,
    log_watch: LogWatch,
    scratch: Vec<u8>,
    /// A descriptor held in reserve for EMFILE (see [`accept`]).
    spare: tuning::Spare,
}

/// Run the server until SIGINT, SIGTERM or SIGHUP.
pub fn run(args: &ServerArgs) -> Result<ExitCode> {
    let mut opts = Options {
        unix: args.unix.clone(),
        tcp: args.tcp.clone(),
        pid_file: args.pid_file.clone(),
        max_clients: args.max_clients,
        allow_uid: args.allow_uid,
        allow_from: args.allow_from.clone(),
        keepalive: args.keepalive,
        busy_poll: Duration::from_micros(args.busy_poll_us),
    };
    // Before anything else: from here on a signal means "finish up", not "die". SIGHUP
    // (the terminal closed) too, which would otherwise kill us and leave the socket file.
    let shutdown = Shutdown::install_with(&[Signal::SIGHUP])?;
    // A log for people, not data: a reader that goes away silences it, the server serves on.
    let mut log = Output::stdout().quiet_when_gone();
    opts.max_clients = tuning::fit_descriptor_limit(opts.max_clients, &mut log)?;
    opts.busy_poll = tuning::busy_poll(opts.busy_poll);
    let mut listeners = Vec::new();
    let mut guard: Option<sock::SocketFile> = None;
    // What a client needs to reach us, for the ready line: `socket PATH`, `tcp ADDR`.
    let mut reach = Vec::new();
    let unix = match (&opts.unix, &opts.tcp) {
        (Some(p), _) => Some(p.clone()),
        (None, None) => Some(common::names::runtime_path(sock::DEFAULT_SOCKET)?),
        (None, Some(_)) => None,
    };
    if let Some(path) = &unix {
        let lock = opts
            .pid_file
            .clone()
            .unwrap_or_else(|| sock::pid_path_for(path));
        let bound = sock::bind_unix(path, SockType::Stream, &lock)?;
        if bound.replaced_stale {
            let path = path.display();
            tell!(
                log,
                "removed stale socket {path} (nothing was accepting on it)"
            )?;
        }
        listeners.push(Listener {
            fd: bound.fd,
            tcp: false,
        });
        guard = Some(bound.guard);
        reach.push(format!("socket {}", path.display()));
    }
    // With TCP alone there is no socket file to lock; a pid file is kept if asked for.
    let _pid_file = match (&unix, &opts.pid_file) {
        (None, Some(p)) => Some(common::pidfile::PidFile::create(p)?),
        _ => None,
    };
    if let Some(addr) = &opts.tcp {
        let (fd, local) = sock::listen_tcp(addr)?;
        if local.ip().is_loopback() {
            // Only this machine can connect.
        } else if opts.allow_from.is_empty() {
            tell!(
                log,
                "warning: {local} is reachable from other machines; there is no \
                 authentication (--allow-from limits who may connect)"
            )?;
        } else {
            let nets: Vec<String> = opts.allow_from.iter().map(IpNet::to_string).collect();
            tell!(log, "{local} admits clients from {} only", nets.join(", "))?;
        }
        listeners.push(Listener { fd, tcp: true });
        reach.push(format!("tcp {local}"));
    }
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).ctx("epoll_create1", "")?;
    common::trace!("epoll_create1(EPOLL_CLOEXEC) -> fd {}", epoll.0.as_raw_fd());
    epoll
        .add(
            shutdown.wake_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_WAKE),
        )
        .ctx("epoll_ctl ADD", "shutdown pipe")?;
    common::trace!(
        "epoll_ctl(ADD, fd {}, EPOLLIN) (the shutdown pipe)",
        shutdown.wake_fd().as_raw_fd()
    );
    for l in &listeners {
        let token = if l.tcp { TOKEN_TCP } else { TOKEN_UNIX };
        epoll
            .add(&l.fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
            .ctx("epoll_ctl ADD", "listener")?;
        common::trace!(
            "epoll_ctl(ADD, fd {}, EPOLLIN) (listener)",
            l.fd.as_raw_fd()
        );
    }
    let spare = tuning::Spare::take();
    // Every listener is in the epoll set: a client that starts now is served. The line goes
    // through the log, which never blocks, rather than `lifecycle::ready`, which waits for a
    // slow reader.
    let reach = reach.join(" ");
    tell!(log, "{}", common::lifecycle::ready_line(&reach))?;
    common::lifecycle::notify_ready(&reach)?;
    let mut server = Server {
        epoll,
        listeners,
        slots: Vec::new(),
        free: Vec::new(),
        freed_now: Vec::new(),
        ready: Vec::new(),
        clients: 0,
        state: State::new(opts.max_clients),
        opts,
        log,
        log_watch: LogWatch::Out,
        scratch: vec![0; READ_CHUNK],
        spare,
    };
    server.serve(&shutdown)?;
    server.drain(&shutdown)?;
    server.log.drain(None)?;
    drop(server);
    // The socket file goes last, after every client is closed.
    drop(guard);
    Ok(ExitCode::SUCCESS)
}

impl Server {
    fn serve(&mut self, shutdown: &Shutdown) -> Result<()> {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            let n = self.wait(&mut events)?;
            common::trace!("epoll_wait() -> {n} ready");
            for ev in &events[..n] {
                match ev.data() {
                    TOKEN_WAKE => {}
                    TOKEN_UNIX => self.accept_all(false)?,
                    TOKEN_TCP => self.accept_all(true)?,
                    token => self.on_event(token, ev.events())?,
                }
            }
            self.finish_batch()?;
            self.watch_log()?;
            if shutdown.requested() {
                common::lifecycle::stopping();
                return Ok(());
            }
        }
    }

    /// The next round's events: checked for without sleeping until `busy_poll` has passed
    /// since the last round, then waited for.
    fn wait(&self, events: &mut [EpollEvent]) -> Result<usize> {
        let poll_until = Instant::now() + self.opts.busy_poll;
        loop {
            let timeout = if Instant::now() < poll_until {
                EpollTimeout::ZERO
            } else {
                EpollTimeout::NONE
            };
            match self.epoll.wait(events, timeout) {
                Ok(0) => {}
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("epoll_wait", "", e)),
            }
        }
    }

    /// An event for the log (room for the lines that wait) or for a client.
    fn on_event(&mut self, token: u64, flags: EpollFlags) -> Result<()> {
        if token == TOKEN_LOG {
            self.log_watch = LogWatch::Fired;
            return self.log.flush();
        }
        self.on_client_event(token, flags)
    }

    /// Keep the log's descriptor in the epoll set, for EPOLLOUT, while lines wait in it for
    /// room (a reader that has fallen behind): once per round, after the round's lines.
    ///
    /// EPOLLONESHOT, so that a writable descriptor with nothing to write never wakes the
    /// loop: the event disarms it, and it is armed again (`epoll_ctl(MOD)`) only when lines
    /// wait again. [`Output`] lends its descriptor only while lines wait, so it is never
    /// deleted; it leaves the set when the server's log is dropped.
    fn watch_log(&mut self) -> Result<()> {
        let Some(fd) = self.log.waiting_fd() else {
            return Ok(());
        };
        let ready = EpollEvent::new(EpollFlags::EPOLLOUT | EpollFlags::EPOLLONESHOT, TOKEN_LOG);
        let done = match self.log_watch {
            LogWatch::Armed => return Ok(()),
            LogWatch::Refused => return self.log.flush(),
            LogWatch::Out => self.epoll.add(fd, ready),
            LogWatch::Fired => self.epoll.modify(fd, &mut { ready }),
        };
        common::trace!(
            "epoll_ctl(fd {}, EPOLLOUT|EPOLLONESHOT) (stdout)",
            fd.as_raw_fd()
        );
        self.log_watch = match done {
            Ok(()) => LogWatch::Armed,
            // A regular file (EPERM) cannot be polled, and never waits for a reader anyway.
            Err(_) => LogWatch::Refused,
        };
        Ok(())
    }

    /// Take in what a ready client sent. Its requests are executed and its replies sent
    /// in `finish_batch`, after every ready descriptor has been read: as in Redis, the replies
    /// of one `epoll_wait` round then go out together, just before the loop sleeps again.
    fn on_client_event(&mut self, token: u64, flags: EpollFlags) -> Result<()> {
        let Some(slot) = token
            .checked_sub(CLIENT_BASE)
            .and_then(|s| usize::try_from(s).ok())
        else {
            return Ok(());
        };
        let Some(Some(client)) = self.slots.get_mut(slot) else {
            return Ok(());
        };
        let readable = EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if flags.intersects(readable)
            && !client.closing
            && let Err(e) = read_some(client, &mut self.scratch)
        {
            return self.lost(slot, e);
        }
        if !client.queued {
            client.queued = true;
            self.ready.push(slot);
        }
        Ok(())
    }

    /// Execute and reply for every client that had an event in this round.
    fn finish_batch(&mut self) -> Result<()> {
        let mut ready = std::mem::take(&mut self.ready);
        for &slot in &ready {
            let Some(client) = self.slots[slot].as_mut() else {
                continue;
            };
            client.queued = false;
            match pump(client, &mut self.state) {
                Ok(true) if update_interest(&self.epoll, client) => {}
                Ok(_) => self.close(slot),
                Err(e) => self.lost(slot, e)?,
            }
        }
        ready.clear();
        self.ready = ready;
        // Only now may closed slots be reused: no event of this round can still name them.
        self.free.append(&mut self.freed_now);
        Ok(())
    }

    /// Close a client whose connection failed, saying why: a peer that reset it, or one that
    /// keepalive found gone (ETIMEDOUT).
    fn lost(&mut self, slot: usize, e: Errno) -> Result<()> {
        if let Some(client) = &self.slots[slot] {
            let who = &client.who;
            tell!(self.log, "client {who} lost: {}", e.desc())?;
        }
        self.close(slot);
        Ok(())
    }

    fn close(&mut self, slot: usize) {
        if let Some(client) = self.slots[slot].take() {
            // Closing the fd also removes it from the epoll set; delete first anyway so a
            // duplicated descriptor (none here) could not keep it registered.
            let _ = self.epoll.delete(&client.fd);
            common::trace!("epoll_ctl(DEL, fd {})", client.fd.as_raw_fd());
            common::trace!("close(fd {}) ({})", client.fd.as_raw_fd(), client.who);
            self.clients -= 1;
            self.state.stats.connected_clients = self.clients;
            self.freed_now.push(slot);
        }
    }

    /// The shutdown: stop accepting, execute what was received, send the replies (for at
    /// most DRAIN_TIME), close.
    fn drain(&mut self, shutdown: &Shutdown) -> Result<()> {
        let _ = self.epoll.delete(shutdown.wake_fd());
        for l in self.listeners.drain(..) {
            let _ = self.epoll.delete(&l.fd);
            // Dropping the listener closes it: new clients are refused from here on.
            common::trace!("close(fd {}) (listener)", l.fd.as_raw_fd());
        }
        let signal = shutdown.signal().map_or("signal", |s| s.as_str());
        let at_start = self.clients;
        for slot in 0..self.slots.len() {
            let Some(client) = self.slots[slot].as_mut() else {
                continue;
            };
            let alive = pump(client, &mut self.state).and_then(|alive| {
                client.closing = true;
                Ok(alive && pump(client, &mut self.state)?)
            });
            match alive {
                Ok(true) if update_interest(&self.epoll, client) => {}
                Ok(_) => self.close(slot),
                Err(e) => self.lost(slot, e)?,
            }
        }
        let end = Instant::now() + DRAIN_TIME;
        let mut events = vec![EpollEvent::empty(); 256];
        while self.clients > 0 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
            };
            for ev in &events[..n] {
                self.on_event(ev.data(), ev.events())?;
            }
            self.finish_batch()?;
            self.watch_log()?;
        }
        // A client closed before the time was up has had every reply sent, or has gone away
        // itself; the ones left still had replies waiting.
        let cut = self.clients;
        let closed = at_start - cut;
        for slot in 0..self.slots.len() {
            self.close(slot);
        }
        tell!(
            self.log,
            "shutting down on {signal}: {closed} clients closed, {cut} cut off with replies \
             unsent"
        )
    }
}
