//! `pipe-demo pipeline 'CMD ARGS' 'CMD ARGS' ...`: an N-stage pipeline built by hand.
//!
//! What it shows: what a shell does for `ps aux | grep ps | wc -l`, step by step:
//!
//! ```text
//! for each stage i:
//!     if i is not the last: pipe2(O_CLOEXEC) -> (read_i, write_i)
//!     fork(); the child: dup2(read_{i-1}, 0), dup2(write_i, 1), closes read_{i-1}, read_i,
//!             write_i, and execv's the command
//!     the parent: close(read_{i-1}), close(write_i); keeps read_i for the next stage
//! waitpid() every stage, in order
//! ```
//!
//! The exit status is the last stage's, as `sh` reports it (128 + N for a stage killed by
//! signal N); with `--pipefail`, the status of the rightmost stage that failed, as bash's
//! `set -o pipefail`.
//!
//! # Pitfalls
//!
//! - **A forgotten write end**, the most common way to make a pipeline hang: the reader never
//!   sees EOF. The parent creates each pipe only just before the stage that writes to it, and
//!   closes each end as soon as the stage that uses it has been forked. So it never holds more
//!   than two pipe ends, and no child inherits a pipe end of a stage it is not part of. Had the
//!   parent made all N-1 pipes first, every child would get copies of all of them, and each
//!   would have to close all of them.
//! - **A stage that cannot run** (`nosuch`): only the child knows that its `execv` failed. The
//!   error comes back through the stage's error pipe before the next stage starts, is reported
//!   (`stage 2: cannot run 'nosuch': ...`) and counts as exit 127 (126 for a file that is not
//!   executable), as in a shell; the other stages run on and are reaped.
//! - **SIGPIPE**: `yes | head -1` ends only because `yes` dies of SIGPIPE when head is gone.
//!   Rust ignores SIGPIPE, and an ignored signal stays ignored across `execv`, so each stage
//!   resets it to the default before it execs ([`crate::spawn`]).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitCode;

use common::{Context, Error, Result, trace};
use nix::fcntl::OFlag;
use nix::sys::signal::{SigAction, Signal};

use crate::cli::PipelineArgs;
use crate::program::Program;
use crate::spawn::{self, Status, Wiring};

/// Run the `pipeline` role.
pub fn run(args: &PipelineArgs) -> Result<ExitCode> {
    let programs = args
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| Program::parse(s).map_err(|e| Error::Usage(format!("stage {}: {e}", i + 1))))
        .collect::<Result<Vec<_>>>()?;
    let statuses = run_stages(&programs, &[])?;
    Ok(ExitCode::from(exit_status(&statuses, args.pipefail)))
}

/// The pipeline's exit status: the last stage's, or with `pipefail` the rightmost failure's.
pub fn exit_status(statuses: &[Status], pipefail: bool) -> u8 {
    let last = statuses.last().map_or(0, |s| s.code());
    if pipefail {
        statuses
            .iter()
            .rev()
            .map(|s| s.code())
            .find(|&c| c != 0)
            .unwrap_or(0)
    } else {
        last
    }
}

/// Start every stage, wired stdout-to-stdin by pipes, and wait for all of them. The first
/// stage reads our stdin, the last writes to our stdout.
///
/// A stage that cannot run is reported on stderr (`stage 2: cannot run 'nosuch': ...`) and
/// counts as exit 127 (126), as in a shell; the other stages run on. Each stage puts the
/// signal dispositions in `restore` back before it execs (see [`Wiring::restore`]).
pub fn run_stages(programs: &[Program], restore: &[(Signal, SigAction)]) -> Result<Vec<Status>> {
    spawn::ensure_std_fds()?;
    let mut started = Vec::with_capacity(programs.len());
    // The read end of the previous stage's pipe: this stage's stdin.
    let mut upstream: Option<OwnedFd> = None;
    let mut failure = None;
    for (i, prog) in programs.iter().enumerate() {
        let role = format!("stage {}", i + 1);
        let pipe = if i + 1 < programs.len() {
            match nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe2", &role) {
                Ok((r, w)) => {
                    trace!(
                        "pipe2(O_CLOEXEC) -> read={} write={} ({role} | stage {})",
                        r.as_raw_fd(),
                        w.as_raw_fd(),
                        i + 2
                    );
                    Some((r, w))
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        } else {
            None
        };
        let (downstream_read, downstream_write) = match pipe {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        let wiring = Wiring {
            stdin: upstream.as_ref().map(AsFd::as_fd),
            stdout: downstream_write.as_ref().map(AsFd::as_fd),
            // The child holds copies of all three; it needs none of them once dup2 has made
            // stdin and stdout. The next stage's read end above all: a child holding a read
            // end of its own output pipe would keep it from ever raising SIGPIPE/EPIPE.
            close: [&upstream, &downstream_read, &downstream_write]
                .into_iter()
                .flatten()
                .map(AsFd::as_fd)
                .collect(),
            restore,
        };
        let result = spawn::spawn(&role, prog, &wiring);
        // The parent's copies of the ends this stage uses are closed right away. Keeping
        // `downstream_write` would mean the next stage never sees EOF; keeping `upstream`
        // would let the previous stage write into a pipe nobody will read.
        for fd in [upstream.take(), downstream_write].into_iter().flatten() {
            trace!("close({}) (the parent's copy)", fd.as_raw_fd());
            drop(fd);
        }
        upstream = downstream_read;
        match result {
            Ok(child) => {
                if let Some(e) = child.exec_error {
                    let msg = spawn::describe_exec_error(prog, e);
                    let _ = writeln!(std::io::stderr().lock(), "pipe-demo: {role}: {msg}");
                }
                started.push((role, child.pid));
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // If a fork failed midway, the stages already running must still end: closing the last
    // read end gives the last of them EPIPE, and EOF travels down from the first.
    drop(upstream);
    let mut statuses = Vec::with_capacity(started.len());
    for (role, pid) in &started {
        statuses.push(spawn::wait(*pid, role)?);
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(statuses),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn pipefail_takes_the_rightmost_failure() {
        let s = [
            Status::Exited(3),
            Status::Signaled(Signal::SIGPIPE),
            Status::Exited(0),
        ];
        assert_eq!(exit_status(&s, false), 0);
        assert_eq!(exit_status(&s, true), 141);
        assert_eq!(exit_status(&[Status::Exited(0)], true), 0);
    }
}
