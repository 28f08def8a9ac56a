//! The result lines, from our ping (through a pipe) and from the C twin (its stdout), reading
//! them with a deadline, and what a run produced ([`Outcome`]).
//!
//! ```text
//! lat NS           one round trip, in nanoseconds
//! tput BYTES NS    bytes sent and received, and the time it took
//! sysv msg|sem ID  a SysV object the C twin made (removed by us if it is killed)
//! err MESSAGE      the kernel refused: the call and the cause
//! done
//! ```
//!
//! A line that fits none of these ends the run as a failure naming the line: it came from
//! another process, so it is checked, not trusted.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use common::cleanup::Shutdown;
use common::{Error, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::unistd::read;

use crate::mech::sysv::{self, Removal};

/// What one run produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Round-trip times, in nanoseconds.
    Latency(Vec<u64>),
    /// Bytes moved, and the time it took in nanoseconds.
    Throughput {
        /// Bytes sent and received.
        bytes: u64,
        /// Nanoseconds from the first send to the receiver's acknowledgement.
        ns: u64,
    },
    /// The kernel refused (or the run failed): why, in one line.
    Refused(String),
}

/// The lines read from a results pipe or from the C twin's stdout.
#[derive(Debug, Default)]
pub struct Report {
    latencies: Vec<u64>,
    throughput: Option<(u64, u64)>,
    error: Option<String>,
    done: bool,
    /// SysV objects the C twin made, removed when the report is dropped.
    pub sysv: Vec<Removal>,
}

impl Report {
    /// Take one line; returns false once no more lines are expected.
    pub fn line(&mut self, line: &str) -> bool {
        let mut words = line.split_whitespace();
        let num = |w: Option<&str>| w.and_then(|w| w.parse::<u64>().ok());
        match words.next() {
            Some("lat") => match num(words.next()) {
                Some(ns) => self.latencies.push(ns),
                None => self.garbled(line),
            },
            Some("tput") => match (num(words.next()), num(words.next())) {
                (Some(b), Some(ns)) => self.throughput = Some((b, ns)),
                _ => self.garbled(line),
            },
            Some("sysv") => {
                let kind = words.next().and_then(sysv::Kind::parse);
                match (kind, words.next().and_then(|w| w.parse().ok())) {
                    (Some(kind), Some(id)) => self.sysv.push(Removal::new(kind, id)),
                    _ => self.garbled(line),
                }
            }
            Some("err") => {
                let msg = line.strip_prefix("err").unwrap_or(line).trim();
                self.error.get_or_insert_with(|| msg.to_owned());
            }
            Some("done") => self.done = true,
            _ => self.garbled(line),
        }
        !(self.done || self.error.is_some())
    }

    fn garbled(&mut self, line: &str) {
        let shown: String = line.chars().take(60).collect();
        self.error
            .get_or_insert_with(|| format!("unexpected result line {shown:?}"));
    }

    /// True if the run ended with `done`.
    pub fn is_done(&self) -> bool {
        self.done && self.error.is_none()
    }

    /// What the run produced.
    pub fn outcome(&self) -> Outcome {
        if let Some(e) = &self.error {
            return Outcome::Refused(e.clone());
        }
        if !self.done {
            return Outcome::Refused("the measuring process ended without a result".into());
        }
        match self.throughput {
            Some((bytes, ns)) => Outcome::Throughput { bytes, ns },
            None if self.latencies.is_empty() => Outcome::Refused("no round trip completed".into()),
            None => Outcome::Latency(self.latencies.clone()),
        }
    }
}

/// Read result lines from `fd` until `done`, `err`, EOF or the deadline; return at once with
/// an error if a shutdown signal arrives.
pub fn collect(fd: BorrowedFd<'_>, deadline: Duration, shutdown: &Shutdown) -> Result<Report> {
    let give_up = Instant::now() + deadline;
    let mut report = Report::default();
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match read_before(fd, &mut buf, give_up, shutdown)? {
            Some(n) => n,
            None => {
                report.error = Some(format!("no result within {} s", deadline.as_secs()));
                return Ok(report);
            }
        };
        if n == 0 {
            return Ok(report);
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line[..i]);
            if !report.line(&line) {
                return Ok(report);
            }
        }
    }
}

/// Read and drop what is left on `fd` until EOF, which comes once every process holding its
/// write end has closed it or exited. False if that has not happened by `deadline`.
pub fn wait_eof(fd: BorrowedFd<'_>, deadline: Duration, shutdown: &Shutdown) -> Result<bool> {
    let give_up = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    loop {
        match read_before(fd, &mut buf, give_up, shutdown)? {
            Some(0) => return Ok(true),
            Some(_) => {}
            None => return Ok(false),
        }
    }
}

/// One `read` of `fd` once it is readable; None if `give_up` comes first,
/// [`Error::Interrupted`] if a shutdown signal arrives (the wait wakes on
/// [`Shutdown::wake_fd`] at once).
fn read_before(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    give_up: Instant,
    shutdown: &Shutdown,
) -> Result<Option<usize>> {
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut fds = [
            PollFd::new(fd, PollFlags::POLLIN),
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, common::deadline::poll_timeout(left)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", "results", e)),
        }
        shutdown.err_if_requested()?;
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        match read(fd, buf) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("read", "results", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(lines: &[&str]) -> Report {
        let mut r = Report::default();
        for l in lines {
            if !r.line(l) {
                break;
            }
        }
        r
    }

    #[test]
    fn samples_then_done() {
        let r = report(&["lat 1200", "lat 1300", "done"]);
        assert_eq!(r.outcome(), Outcome::Latency(vec![1200, 1300]));
    }

    #[test]
    fn throughput_line() {
        let r = report(&["tput 4096 1000", "done"]);
        assert_eq!(
            r.outcome(),
            Outcome::Throughput {
                bytes: 4096,
                ns: 1000
            }
        );
    }

    #[test]
    fn an_error_ends_the_report_and_is_the_outcome() {
        let r = report(&["lat 5", "err msgsnd: Invalid argument", "lat 6"]);
        assert_eq!(
            r.outcome(),
            Outcome::Refused("msgsnd: Invalid argument".into())
        );
    }

    #[test]
    fn garbage_and_truncation_are_failures_not_figures() {
        let r = report(&["lat twelve"]);
        assert_eq!(
            r.outcome(),
            Outcome::Refused("unexpected result line \"lat twelve\"".into())
        );
        let r = report(&["lat 5"]);
        assert!(matches!(r.outcome(), Outcome::Refused(m) if m.contains("without a result")));
        let r = report(&["done"]);
        assert_eq!(
            r.outcome(),
            Outcome::Refused("no round trip completed".into())
        );
    }

    #[test]
    fn sysv_ids_become_guards() {
        // An id nobody has: its IPC_RMID fails with EINVAL on drop, which is ignored.
        let r = report(&["sysv msg 2147483000", "sysv sem 2147483001", "done"]);
        assert_eq!(r.sysv.len(), 2);
        assert_eq!(r.sysv[0].id(), 2147483000);
    }
}
