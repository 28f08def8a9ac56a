//! The end shared by every mechanism that is a file descriptor you `read` and `write`:
//! pipes, FIFOs, Unix stream and datagram sockets, TCP.
//!
//! A round trip is a one-byte `write` one way and a one-byte `read` back. In bulk, a stream
//! (pipe, FIFO, stream socket) may return less than a message from one `read`, which is fine:
//! the receiver counts bytes. A datagram socket returns exactly one message per `read`.

use std::os::fd::{AsRawFd, OwnedFd};

use common::{Context, Error, Result};
use nix::sys::socket::{Shutdown, shutdown};
use nix::unistd::{read, write};

use super::{Endpoint, retry};

/// How the sender tells the receiver that the stream is over.
#[derive(Clone, Copy, Debug)]
pub enum Finish {
    /// Close the write end: the reader sees EOF once every copy of it is closed (pipes).
    Close,
    /// `shutdown(SHUT_WR)`: EOF on a socket whose descriptor is still open for reading.
    Shutdown,
    /// An empty datagram: `read` returns 0 for it, and datagrams have no EOF.
    EmptyMessage,
}

/// One process's descriptors: `tx` to write to the peer, `rx` to read from it.
pub struct FdEnd {
    /// None once the stream has been ended by closing it.
    tx: Option<OwnedFd>,
    rx: OwnedFd,
    finish: Finish,
    /// Which object this is, for error messages: "pipe", "FIFO /run/…", "TCP socket".
    what: &'static str,
}

impl FdEnd {
    /// An end that writes `tx` and reads `rx` (for a socket, two descriptors of one socket).
    pub fn new(tx: OwnedFd, rx: OwnedFd, finish: Finish, what: &'static str) -> Self {
        FdEnd {
            tx: Some(tx),
            rx,
            finish,
            what,
        }
    }

    /// The descriptor this end writes, until the stream is ended by closing it.
    pub fn tx(&self) -> Result<&OwnedFd> {
        self.tx
            .as_ref()
            .ok_or_else(|| Error::msg(format!("{}: written after the end", self.what)))
    }

    /// The descriptor this end reads, for the zero-copy pipe's `splice`.
    pub fn rx(&self) -> &OwnedFd {
        &self.rx
    }
}

impl Endpoint for FdEnd {
    fn post(&mut self) -> Result<()> {
        self.send(b"x")
    }

    fn wait(&mut self) -> Result<()> {
        let mut byte = [0u8];
        match retry(|| read(&self.rx, &mut byte)).ctx("read", self.what)? {
            1 => Ok(()),
            _ => Err(Error::msg(format!("read {}: the peer has gone", self.what))),
        }
    }

    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let tx = self.tx()?;
        let mut rest = msg;
        // At least one write(2), so that an empty datagram (the end marker) is sent too.
        loop {
            let n = retry(|| write(tx, rest)).ctx("write", self.what)?;
            rest = &rest[n..];
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        retry(|| read(&self.rx, buf)).ctx("read", self.what)
    }

    fn end(&mut self) -> Result<()> {
        match self.finish {
            Finish::Close => drop(self.tx.take()),
            Finish::Shutdown => {
                shutdown(self.tx()?.as_raw_fd(), Shutdown::Write).ctx("shutdown", self.what)?;
            }
            Finish::EmptyMessage => self.send(&[])?,
        }
        Ok(())
    }
}
