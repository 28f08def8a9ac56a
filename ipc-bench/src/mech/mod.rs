//! The mechanisms: one module each, and the one interface the harness drives them through.
//!
//! Every module has the same three parts, in this order:
//! 1. **set-up** (`pair`): runs in the coordinator before the fork and makes both ends, so
//!    that anything with a name or a SysV id is created and removed by the one process that
//!    outlives the measurement;
//! 2. **the round trip**: [`Endpoint::post`] tells the peer it is its turn, [`Endpoint::wait`]
//!    waits for the peer's turn to end; ping does post + wait, pong does wait + post;
//! 3. **the throughput loop**: [`Endpoint::send`] one message, [`Endpoint::recv`] one message,
//!    [`Endpoint::end`] marks the end of the stream (EOF, or an empty message).
//!
//! The C twin (`c/twin.c`) makes the same calls in the same order for each mechanism.

pub mod eventfd;
pub mod fd;
pub mod fifo;
pub mod futex;
pub mod pipe;
pub mod posix_mq;
pub mod posix_sem;
pub mod shm;
pub mod signal;
pub mod socket;
pub mod sysv;
pub mod sysv_mq;
pub mod sysv_sem;

use std::any::Any;
use std::fmt;
use std::rc::Rc;

use common::{Error, Result};
use nix::unistd::Pid;
use serde::Serialize;

/// The largest message any throughput test sends.
pub const MAX_MSG: usize = 64 * 1024;

/// One process's end of a mechanism, after the fork.
pub trait Endpoint {
    /// Tell the peer it is its turn: a one-byte message where the mechanism carries data.
    fn post(&mut self) -> Result<()>;
    /// Wait until the peer has posted.
    fn wait(&mut self) -> Result<()>;
    /// Learn the peer's pid (ping is told pong's; only signals need it).
    fn set_peer(&mut self, _peer: Pid) {}
    /// Send one message of `msg.len()` bytes.
    fn send(&mut self, _msg: &[u8]) -> Result<()> {
        Err(no_data())
    }
    /// Receive one message (or what a stream has) into `buf`; `Ok(0)` once the sender ended.
    fn recv(&mut self, _buf: &mut [u8]) -> Result<usize> {
        Err(no_data())
    }
    /// Mark the end of the stream, so the receiver's `recv` returns 0.
    fn end(&mut self) -> Result<()> {
        Err(no_data())
    }
}

fn no_data() -> Error {
    Error::msg("this mechanism carries no data")
}

/// Both ends, and what the coordinator removes once the measurement is over.
pub struct Pair<A, B> {
    /// The end that times: it posts first, or sends.
    pub ping: A,
    /// The end that echoes, or receives.
    pub pong: B,
    /// What the coordinator undoes by dropping it once the measurement ends (SysV ids to
    /// remove, a signal mask to restore). The children never drop these: they leave with
    /// `process::exit`, which runs no destructors.
    pub guards: Vec<Box<dyn Any>>,
}

impl<A, B> Pair<A, B> {
    /// A pair with nothing to remove afterwards.
    pub fn new(ping: A, pong: B) -> Self {
        Pair {
            ping,
            pong,
            guards: Vec::new(),
        }
    }
}

/// One end of two one-way objects crossed between ping and pong (two eventfds, two POSIX
/// semaphores): an end posts on the object the other end waits on, and waits on the one the
/// other posts on. Each mechanism's module says what a post and a wait are
/// (`impl Endpoint for Crossed<ItsObject>`).
pub struct Crossed<T> {
    /// Where this end posts, and the peer waits.
    pub post: Rc<T>,
    /// Where this end waits, and the peer posts.
    pub wait: Rc<T>,
}

/// Ping's and pong's ends over `to_pong` (ping posts on it, pong waits) and `to_ping` (the
/// other way). Each object lives as long as the last end holding it.
pub fn crossed<T>(to_pong: T, to_ping: T) -> Pair<Crossed<T>, Crossed<T>> {
    let (to_pong, to_ping) = (Rc::new(to_pong), Rc::new(to_ping));
    Pair::new(
        Crossed {
            post: Rc::clone(&to_pong),
            wait: Rc::clone(&to_ping),
        },
        Crossed {
            post: to_ping,
            wait: to_pong,
        },
    )
}

/// The family names `--only` accepts; a family may have several variants ([`Mech`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// pipe(2): plain, with F_SETPIPE_SZ 1 MiB, and vmsplice → splice
    Pipe,
    /// mkfifo(3): a named pipe
    Fifo,
    /// AF_UNIX SOCK_STREAM socketpair
    UnixStream,
    /// AF_UNIX SOCK_DGRAM socketpair
    UnixDgram,
    /// TCP over 127.0.0.1, TCP_NODELAY
    Tcp,
    /// mq_open(3)
    PosixMq,
    /// msgget(2)
    SysvMq,
    /// sigqueue(3) with sigwaitinfo(2) and with signalfd(2)
    Signal,
    /// sem_open(3)
    PosixSem,
    /// semget(2)
    SysvSem,
    /// futex(2) on a shared word
    Futex,
    /// eventfd(2)
    Eventfd,
    /// shm_open(3) + mmap, busy-polling
    Shm,
}

/// One mechanism as measured: a row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mech {
    Pipe,
    #[serde(rename = "pipe-1m")]
    Pipe1m,
    PipeVmsplice,
    Fifo,
    UnixStream,
    UnixDgram,
    Tcp,
    PosixMq,
    SysvMq,
    Signal,
    Signalfd,
    PosixSem,
    SysvSem,
    Futex,
    Eventfd,
    Shm,
}

impl Mech {
    /// Every mechanism, in table order.
    pub const ALL: [Mech; 16] = [
        Mech::Pipe,
        Mech::Pipe1m,
        Mech::PipeVmsplice,
        Mech::Fifo,
        Mech::UnixStream,
        Mech::UnixDgram,
        Mech::Tcp,
        Mech::PosixMq,
        Mech::SysvMq,
        Mech::Signal,
        Mech::Signalfd,
        Mech::PosixSem,
        Mech::SysvSem,
        Mech::Futex,
        Mech::Eventfd,
        Mech::Shm,
    ];

    /// The name in CSV and JSON, and the C twin's first argument.
    pub fn name(self) -> &'static str {
        match self {
            Mech::Pipe => "pipe",
            Mech::Pipe1m => "pipe-1m",
            Mech::PipeVmsplice => "pipe-vmsplice",
            Mech::Fifo => "fifo",
            Mech::UnixStream => "unix-stream",
            Mech::UnixDgram => "unix-dgram",
            Mech::Tcp => "tcp",
            Mech::PosixMq => "posix-mq",
            Mech::SysvMq => "sysv-mq",
            Mech::Signal => "signal",
            Mech::Signalfd => "signalfd",
            Mech::PosixSem => "posix-sem",
            Mech::SysvSem => "sysv-sem",
            Mech::Futex => "futex",
            Mech::Eventfd => "eventfd",
            Mech::Shm => "shm",
        }
    }

    /// The label in the table and the chart.
    pub fn label(self) -> &'static str {
        match self {
            Mech::Pipe => "pipe",
            Mech::Pipe1m => "pipe, F_SETPIPE_SZ 1 MiB",
            Mech::PipeVmsplice => "pipe, vmsplice → splice",
            Mech::Fifo => "FIFO",
            Mech::UnixStream => "Unix stream",
            Mech::UnixDgram => "Unix datagram",
            Mech::Tcp => "TCP loopback",
            Mech::PosixMq => "POSIX mq",
            Mech::SysvMq => "SysV mq",
            Mech::Signal => "RT signal, sigwaitinfo",
            Mech::Signalfd => "RT signal, signalfd",
            Mech::PosixSem => "POSIX semaphore",
            Mech::SysvSem => "SysV semaphore",
            Mech::Futex => "futex",
            Mech::Eventfd => "eventfd",
            Mech::Shm => "shared memory, busy-poll",
        }
    }

    /// The `--only` family this mechanism belongs to.
    pub fn family(self) -> Family {
        match self {
            Mech::Pipe | Mech::Pipe1m | Mech::PipeVmsplice => Family::Pipe,
            Mech::Fifo => Family::Fifo,
            Mech::UnixStream => Family::UnixStream,
            Mech::UnixDgram => Family::UnixDgram,
            Mech::Tcp => Family::Tcp,
            Mech::PosixMq => Family::PosixMq,
            Mech::SysvMq => Family::SysvMq,
            Mech::Signal | Mech::Signalfd => Family::Signal,
            Mech::PosixSem => Family::PosixSem,
            Mech::SysvSem => Family::SysvSem,
            Mech::Futex => Family::Futex,
            Mech::Eventfd => Family::Eventfd,
            Mech::Shm => Family::Shm,
        }
    }

    /// True if the round trip is measured (the pipe's tuned variants only differ in bulk).
    pub fn has_latency(self) -> bool {
        !matches!(self, Mech::Pipe1m | Mech::PipeVmsplice)
    }

    /// True if the mechanism carries data, so its throughput is measured.
    pub fn carries_data(self) -> bool {
        !matches!(
            self,
            Mech::Signal
                | Mech::Signalfd
                | Mech::PosixSem
                | Mech::SysvSem
                | Mech::Futex
                | Mech::Eventfd
        )
    }
}

impl fmt::Display for Mech {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Names for the objects one measurement creates: two FIFO paths or two POSIX names, unique
/// per run so that parallel runs (and the tests) never meet.
#[derive(Clone, Debug)]
pub struct Names {
    /// The first object (ping → pong).
    pub a: String,
    /// The second object (pong → ping).
    pub b: String,
}

impl Names {
    /// Fresh names for `mech`: FIFOs in the private runtime dir, POSIX names
    /// `/ipc-demo-bench-…` otherwise.
    pub fn for_mech(mech: Mech) -> Result<Names> {
        let one = |end: &str| -> Result<String> {
            let what = common::names::unique(&format!("bench-{}-{end}", mech.name()));
            Ok(match mech {
                Mech::Fifo => common::names::runtime_path(&format!("{what}.fifo"))?
                    .display()
                    .to_string(),
                _ => common::names::posix_name(&what),
            })
        };
        Ok(Names {
            a: one("a")?,
            b: one("b")?,
        })
    }
}

/// Make the pair for `mech` and hand it to `run`, which is generic so that the timed loops
/// are compiled for each mechanism's own types (no dynamic dispatch in a loop).
pub fn with_pair<R: PairRunner>(
    mech: Mech,
    msg_size: usize,
    names: &Names,
    run: R,
) -> Result<R::Output> {
    Ok(match mech {
        Mech::Pipe => run.run(pipe::pair(pipe::Variant::Plain)?),
        Mech::Pipe1m => run.run(pipe::pair(pipe::Variant::Big)?),
        Mech::PipeVmsplice => run.run(pipe::zerocopy_pair()?),
        Mech::Fifo => run.run(fifo::pair(names)?),
        Mech::UnixStream => run.run(socket::unix_pair(socket::Kind::Stream)?),
        Mech::UnixDgram => run.run(socket::unix_pair(socket::Kind::Datagram)?),
        Mech::Tcp => run.run(socket::tcp_pair()?),
        Mech::PosixMq => run.run(posix_mq::pair(names, msg_size)?),
        Mech::SysvMq => run.run(sysv_mq::pair()?),
        Mech::Signal => run.run(signal::pair(signal::Wait::Sigwaitinfo)?),
        Mech::Signalfd => run.run(signal::pair(signal::Wait::Signalfd)?),
        Mech::PosixSem => run.run(posix_sem::pair(names)?),
        Mech::SysvSem => run.run(sysv_sem::pair()?),
        Mech::Futex => run.run(futex::pair()?),
        Mech::Eventfd => run.run(eventfd::pair()?),
        Mech::Shm => run.run(shm::pair(names)?),
    })
}

/// What [`with_pair`] hands the pair to (a generic closure, which Rust spells as a trait).
pub trait PairRunner {
    /// The result of the run.
    type Output;
    /// Run the measurement on `pair`.
    fn run<A: Endpoint, B: Endpoint>(self, pair: Pair<A, B>) -> Self::Output;
}

/// Retry a call interrupted by a signal handler: the handlers of `common::cleanup` are
/// installed with SA_RESTART, but not every call restarts (semop, sigwaitinfo, futex).
pub fn retry<T>(mut call: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match call() {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other,
        }
    }
}
