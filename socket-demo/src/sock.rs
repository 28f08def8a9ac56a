//! Socket setup shared by the roles: binding a Unix socket safely, listening on TCP,
//! connecting.
//!
//! # Binding a Unix socket path
//!
//! A socket file outlives its server when the server dies by SIGKILL, and `bind` then fails
//! with EADDRINUSE. Deleting whatever is at the path would be wrong too: it might be a live
//! server's socket. Two fences keep a live server's socket safe:
//!
//! 1. **A lock.** Before it touches the path, a server takes `<path>.pid` (or the file its
//!    `--pid-file` names), a pid file with an exclusive `flock` held for its whole life (see
//!    [`common::pidfile`]). A second server of ours is refused there, and names the first
//!    one's pid, even in the moments when the first has bound its socket but is not yet
//!    listening, where a probe alone would see ECONNREFUSED and take the socket for a stale
//!    one. (Two servers given different `--pid-file`s for one socket have only the probe.)
//! 2. **A probe**, for a socket that some other program owns: [`bind_unix`] `connect`s to the
//!    path with a non-blocking socket. ECONNREFUSED means nobody is bound and listening
//!    there, so the file is a stale leftover and is removed. Success, or EAGAIN (a listener
//!    whose backlog is full), means a live server, and we refuse to start.
//!
//! On exit the socket file is removed while the lock is still held, then the lock file.
//!
//! # Mode 0600 before anyone can connect
//!
//! On Linux, connecting to a socket file needs write permission on it. `bind` creates the file
//! with mode `0777 & ~umask`, and `fchmod` on the socket's fd does not change the file's mode,
//! so the mode must come from the umask: we set `umask(0o177)` just around `bind`, and the file
//! is born 0600; there is no instant at which it is open to others. (The umask is per-process;
//! the roles that bind do so before they start any thread, so nothing else can create a file
//! under the temporary umask.) The private runtime directory (0700) is a second fence.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cleanup::Unlink;
use common::names::{Kind, existing};
use common::pidfile::{self, PidFile};
use common::{Context, Error, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, UnixAddr, bind, connect,
    getsockname, listen, setsockopt, socket, sockopt,
};
use nix::sys::stat::{Mode, umask};
use nix::sys::time::TimeVal;

/// A Unix socket bound to a path, with the guard that removes the path.
pub struct BoundUnix {
    /// The socket (non-blocking, close-on-exec).
    pub fd: OwnedFd,
    /// Removes the socket file, then its lock, when dropped.
    pub guard: SocketFile,
    /// True if a stale socket file was found and replaced.
    pub replaced_stale: bool,
}

/// A server's socket file and the lock that makes it ours (see the module docs).
pub struct SocketFile {
    // Fields drop in order: the socket file goes while the lock still guards its name.
    _file: Unlink,
    _lock: PidFile,
}

/// Bind a Unix socket of type `ty` at `path` (mode 0600), replacing a stale socket file but
/// never a live one; `lock` is its lock and pid file (by default [`pid_path_for`] the
/// socket). Stream sockets are also put in the listening state.
pub fn bind_unix(path: &Path, ty: SockType, lock: &Path) -> Result<BoundUnix> {
    let addr = unix_addr(path)?;
    let lock = lock_socket_path(path, lock)?;
    let mut replaced_stale = false;
    if existing(path, Kind::Socket)? {
        // Non-blocking: a live server that is not accepting must not hang us in `connect`.
        let probe = unix_socket(ty)?;
        match connect(probe.as_raw_fd(), &addr) {
            Ok(()) => {
                common::trace!("connect({}) -> ok: a live server", path.display());
                return Err(Error::msg(format!(
                    "{}: another server is already listening there; refusing to take it over",
                    path.display()
                )));
            }
            Err(Errno::EAGAIN) => {
                common::trace!("connect({}) -> EAGAIN: a live server", path.display());
                return Err(Error::msg(format!(
                    "{}: another server is already listening there (its backlog is full); \
                     refusing to take it over",
                    path.display()
                )));
            }
            Err(Errno::ECONNREFUSED) => {
                common::trace!(
                    "connect({}) -> ECONNREFUSED: stale; unlink it",
                    path.display()
                );
                nix::unistd::unlink(path).ctx("unlink stale socket", path.display())?;
                replaced_stale = true;
            }
            Err(e) => return Err(Error::sys("connect (probing)", path.display(), e)),
        }
    }
    let fd = unix_socket(ty)?;
    let guard = SocketFile {
        _file: bind_private(&fd, path, &addr)?,
        _lock: lock,
    };
    if ty == SockType::Stream {
        // A deep backlog: 500 clients connecting in one burst must not see ECONNREFUSED
        // (a full backlog on a Unix socket refuses; it does not drop and retry like TCP).
        listen(&fd, backlog()).ctx("listen", path.display())?;
        common::trace!("listen({}, 4096)", path.display());
    }
    Ok(BoundUnix {
        fd,
        guard,
        replaced_stale,
    })
}

/// The bytes a Unix socket address holds for its path: `sizeof(sun_path)`, see unix(7).
pub const SUN_PATH_MAX: usize = 108;

/// The socket address for `path`, or an error that says how much too long the path is.
///
/// A Unix socket's path travels inside `struct sockaddr_un`, whose `sun_path` is a fixed
/// array of 108 bytes; a longer path cannot be bound or connected to at all, whatever the
/// filesystem allows. A deep `XDG_RUNTIME_DIR` or a long `--unix` path runs into this, and
/// the bare ENAMETOOLONG ("File name too long") would not say which path, nor by how much.
pub fn unix_addr(path: &Path) -> Result<UnixAddr> {
    let len = path.as_os_str().len();
    if len > SUN_PATH_MAX {
        return Err(Error::msg(format!(
            "{}: too long for a Unix socket address: {len} bytes, {} over the \
             {SUN_PATH_MAX}-byte limit of sun_path (unix(7)); use a shorter path",
            path.display(),
            len - SUN_PATH_MAX
        )));
    }
    UnixAddr::new(path).ctx("socket address", path.display())
}

/// A new Unix socket of type `ty`, non-blocking and close-on-exec.
fn unix_socket(ty: SockType) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        ty,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("socket", "AF_UNIX")?;
    let kind = if ty == SockType::Stream {
        "SOCK_STREAM"
    } else {
        "SOCK_DGRAM"
    };
    common::trace!(
        "socket(AF_UNIX, {kind}|SOCK_NONBLOCK|SOCK_CLOEXEC) -> fd {}",
        fd.as_raw_fd()
    );
    Ok(fd)
}

/// How many payload bytes a trace line shows.
const PREVIEW: usize = 48;

/// The first bytes of a payload for a trace line, escaped (they come from another process
/// and may hold anything, terminal escapes included) and quoted: `"*1\r\n$4\r\nPING\r\n"`,
/// with `...` when there is more.
pub fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(PREVIEW)];
    let more = if bytes.len() > PREVIEW { "..." } else { "" };
    format!("\"{}\"{more}", common::out::escape(shown))
}

/// The default lock and pid file of the socket at `path`: `<path>.pid`.
pub fn pid_path_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

/// Take the lock file `lock_path` of the socket `path` (fence 1 in the module docs).
fn lock_socket_path(path: &Path, lock_path: &Path) -> Result<PidFile> {
    PidFile::create(lock_path).map_err(|e| match pidfile::read(lock_path) {
        // Locked by a live process: say which, in the words of the probe's refusal.
        Ok(pid) => Error::msg(format!(
            "{}: another server is already listening there (pid {pid}, which holds {}); \
             refusing to take it over",
            path.display(),
            lock_path.display()
        )),
        Err(_) => e,
    })
}

/// Bind `fd` to `path` so that the socket file is born mode 0600 (see "Mode 0600 before
/// anyone can connect" in the module docs), and guard the file for removal.
pub fn bind_private(fd: &OwnedFd, path: &Path, addr: &UnixAddr) -> Result<Unlink> {
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = bind(fd.as_raw_fd(), addr);
    umask(old);
    bound.ctx("bind", path.display())?;
    common::trace!("bind({}) with umask 0177 -> mode 0600", path.display());
    Ok(Unlink::path(path))
}

/// Parse a `--tcp` address, and the address family its socket needs.
fn tcp_addr(addr: &str) -> Result<(SocketAddr, AddressFamily)> {
    let sa: SocketAddr = addr
        .parse()
        .map_err(|_| Error::Usage(format!("--tcp {addr}: not an IP:PORT address")))?;
    let family = if sa.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    Ok((sa, family))
}

fn backlog() -> Backlog {
    // The kernel caps this at net.core.somaxconn; 4096 is that cap's default since Linux 5.4.
    Backlog::new(4096).unwrap_or(Backlog::MAXCONN)
}

/// Listen on TCP `addr` (SO_REUSEADDR, so a restart does not wait out TIME_WAIT); returns the
/// socket and the address actually bound (port 0 picks a free port).
pub fn listen_tcp(addr: &str) -> Result<(OwnedFd, SocketAddr)> {
    let (sa, family) = tcp_addr(addr)?;
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("socket", "AF_INET")?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).ctx("setsockopt SO_REUSEADDR", addr)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(sa)).ctx("bind", addr)?;
    listen(&fd, backlog()).ctx("listen", addr)?;
    let local = getsockname::<SockaddrStorage>(fd.as_raw_fd()).ctx("getsockname", addr)?;
    let local = to_std(&local).unwrap_or(sa);
    common::trace!("bind + listen({local})");
    Ok((fd, local))
}

/// The largest `--keepalive`: the kernel's limit for TCP_KEEPIDLE and TCP_KEEPINTVL
/// (MAX_TCP_KEEPIDLE, `include/net/tcp.h`).
pub const MAX_KEEPALIVE: u16 = 32767;

/// How many unanswered keepalive probes mean the peer is gone (Redis uses 3 as well).
const KEEPALIVE_PROBES: u32 = 3;

/// Turn on TCP keepalive for a connected socket: after `secs` of silence from the peer, a
/// probe (an empty segment it must acknowledge), then one every `secs / 3`; after 3
/// unanswered probes the kernel gives up, and the next `read` fails with ETIMEDOUT.
///
/// Why: a peer whose machine loses power, or whose cable is cut, sends nothing, not even a FIN
/// or a RST. Without probes an idle connection to it looks exactly like a quiet client and
/// is kept for ever, its descriptor and buffers with it.
///
/// TCP_USER_TIMEOUT is set to the same total (`secs` + 3 x `secs / 3`), for the other case:
/// data of ours still unacknowledged when the peer went away (replies in flight). The
/// connection is then not idle, so keepalive never probes; the retransmission timer runs
/// instead and, with the kernel's defaults (tcp_retries2 = 15), gives up only after about 15
/// minutes. With TCP_USER_TIMEOUT, data left unacknowledged that long also ends the connection
/// (ETIMEDOUT), so both cases end alike. A live peer behind a closed receive window still
/// acknowledges the kernel's window probes and is not cut off.
pub fn keepalive(fd: &OwnedFd, secs: u32) -> nix::Result<()> {
    let interval = (secs / KEEPALIVE_PROBES).max(1);
    setsockopt(fd, sockopt::KeepAlive, &true)?;
    setsockopt(fd, sockopt::TcpKeepIdle, &secs)?;
    setsockopt(fd, sockopt::TcpKeepInterval, &interval)?;
    setsockopt(fd, sockopt::TcpKeepCount, &KEEPALIVE_PROBES)?;
    let total_ms = (secs + interval * KEEPALIVE_PROBES).saturating_mul(1000);
    setsockopt(fd, sockopt::TcpUserTimeout, &total_ms)
}

/// A socket address as std's type, if it is an IP one.
pub fn to_std(sa: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = sa.as_sockaddr_in() {
        Some(SocketAddr::from((v4.ip(), v4.port())))
    } else {
        sa.as_sockaddr_in6()
            .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
    }
}

/// Where a client connects.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Unix stream socket path.
    Unix(std::path::PathBuf),
    /// A TCP address, `IP:PORT`.
    Tcp(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "{}", p.display()),
            Target::Tcp(a) => f.write_str(a),
        }
    }
}

impl Target {
    /// From the `--unix`/`--tcp` flags: TCP if given, else the Unix path, else the default
    /// socket in the runtime dir.
    pub fn from_flags(unix: Option<&Path>, tcp: Option<&str>) -> Result<Target> {
        Ok(match (unix, tcp) {
            (_, Some(a)) => Target::Tcp(a.to_owned()),
            (Some(p), None) => Target::Unix(p.to_owned()),
            (None, None) => Target::Unix(common::names::runtime_path(DEFAULT_SOCKET)?),
        })
    }

    /// Connect (blocking, close-on-exec) and return the connected socket. With a `timeout`,
    /// every blocking call on it, `connect` included, gives up after that long without
    /// progress (see [`set_timeouts`]).
    pub fn connect(&self, timeout: Option<Duration>) -> Result<OwnedFd> {
        let family = match self {
            Target::Unix(_) => AddressFamily::Unix,
            Target::Tcp(a) => tcp_addr(a)?.1,
        };
        let name = match family {
            AddressFamily::Unix => "AF_UNIX",
            AddressFamily::Inet6 => "AF_INET6",
            _ => "AF_INET",
        };
        let fd =
            socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).ctx("socket", name)?;
        if let Some(t) = timeout {
            set_timeouts(&fd, t).ctx("setsockopt SO_SNDTIMEO/SO_RCVTIMEO", self)?;
        }
        let connected = match self {
            Target::Unix(path) => connect(fd.as_raw_fd(), &unix_addr(path)?),
            Target::Tcp(a) => connect(fd.as_raw_fd(), &SockaddrStorage::from(tcp_addr(a)?.0)),
        };
        // The SO_SNDTIMEO timeout passed: TCP says EINPROGRESS (the handshake would go on
        // without us), a Unix socket whose server's backlog stayed full says EAGAIN.
        if let (Err(Errno::EINPROGRESS | Errno::EAGAIN), Some(t)) = (connected, timeout) {
            return Err(Error::msg(format!(
                "connect {self}: no answer within {t:?} (--timeout)"
            )));
        }
        connected.map_err(|e| Error::sys("connect", self, e))?;
        if let Target::Tcp(a) = self {
            // Request/reply traffic: Nagle's algorithm would hold back a small request
            // while the previous one is unacknowledged.
            setsockopt(&fd, sockopt::TcpNoDelay, &true).ctx("setsockopt TCP_NODELAY", a)?;
        }
        common::trace!("connect({self}) -> fd {}", fd.as_raw_fd());
        Ok(fd)
    }
}

/// Make every blocking call on `fd` give up after `timeout` without progress: `connect` and
/// `send` (SO_SNDTIMEO), `recv`/`read` (SO_RCVTIMEO), which then fail with EAGAIN (`connect`:
/// EINPROGRESS), see socket(7). The kernel's own limits are far longer: a SYN is retried for
/// about two minutes, unacknowledged data for about fifteen.
pub fn set_timeouts(fd: &OwnedFd, timeout: Duration) -> nix::Result<()> {
    let tv = TimeVal::from(libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    });
    setsockopt(fd, sockopt::SendTimeout, &tv)?;
    setsockopt(fd, sockopt::ReceiveTimeout, &tv)
}

/// The default stream socket's file name in the runtime dir.
pub const DEFAULT_SOCKET: &str = "kv.sock";
/// The default datagram socket's file name in the runtime dir.
pub const DEFAULT_DGRAM_SOCKET: &str = "kv-dgram.sock";
