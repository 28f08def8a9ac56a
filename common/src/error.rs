//! One error type for every demo, and the exit codes derived from it.
//!
//! TLPI's `errExit("mkfifo %s", SERVER_FIFO)` is the model: an error names the call that failed
//! and the object it was applied to, then the cause. [`Context::ctx`] attaches both to a
//! `nix::Result` or an `io::Result`:
//!
//! ```
//! use common::Context;
//! let err = nix::unistd::mkfifo("/nonexistent/dir/log.fifo", nix::sys::stat::Mode::S_IRUSR)
//!     .ctx("mkfifo", "/nonexistent/dir/log.fifo")
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "mkfifo /nonexistent/dir/log.fifo: No such file or directory");
//! ```
//!
//! # Exit status
//!
//! One meaning in every binary of the workspace, as the shell and grep use them (issue 20,
//! item 19), so that a script can tell "the check failed" from "the user stopped it":
//!
//! | status | meaning |
//! |--------|---------|
//! | 0 | done (a daemon asked to stop, and stopped, included) |
//! | 1 | the check or the operation failed |
//! | 2 | bad usage |
//! | 128+N | stopped by signal N before it finished, after cleaning up |
//!
//! - **0** also for a reader of our output that went away (`demo | head -1`): a broken pipe
//!   ends a program quietly, as ripgrep and coreutils do. A daemon stopping on SIGTERM or
//!   SIGINT is not an interruption: stopping is its job.
//! - **1**: [`Error::Check`] (the scenario ran and its check did not hold), [`Error::Sys`] and
//!   [`Error::Msg`] (an operation failed).
//! - **2**: clap's own refusals, and [`Error::Usage`] for what clap cannot see.
//! - **128+N**: [`Error::Interrupted`]: 129 for SIGHUP (a closed terminal), 130 for SIGINT
//!   (Ctrl-C), 143 for SIGTERM. A second stop signal during the cleanup exits at once with its
//!   own 128+N and skips what is left of it (see [`crate::cleanup::Shutdown`]).
//!
//! A role reports "interrupted by signal N" by returning `Err(Error::Interrupted(sig))`,
//! which [`crate::cleanup::Shutdown::err_if_requested`] makes; [`finish`] then exits
//! 128+N, and [`crate::out::verdict`] ends a demo with `interrupted by SIGINT before the check
//! was done` in place of its `ok:`/`FAILED:` line. A role with nothing to clean up installs no
//! handler and dies of the signal, which the shell reports as the same 128+N.
//!
//! Pitfall: bash, waiting for a child when the user pressed Ctrl-C, goes on with its script
//! (the next iteration of a loop) if the child *exited*, whatever the status, and stops only
//! if the child *died* of SIGINT ("wait and cooperative exit"). So `for f in *; do
//! fifo-demo; done` takes one Ctrl-C per iteration; `set -e`, or `|| break` on the status,
//! stops it at the first. The workspace's rule is the exit status above (what `$?`, `make`
//! and `set -e` see), kept in this one place, [`Error::exit_code`].
//!
//! Some roles add codes of their own (`pipe-demo grep` follows grep: 1 means "no line
//! matched"; `pipe-demo pipeline` exits with its last stage's status; `sem-demo run` with its
//! command's); they return their own [`std::process::ExitCode`] and use [`finish`] only for
//! errors.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Exit status for success.
pub const EXIT_OK: u8 = 0;
/// Exit status for a runtime failure or a failed check.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for bad usage.
pub const EXIT_USAGE: u8 = 2;

/// The exit status of a run that signal `sig` stopped before it finished: 128 + its number,
/// as the shell reports a process the signal killed (130 for SIGINT, 143 for SIGTERM).
pub fn exit_status_for(sig: Signal) -> u8 {
    // Signal numbers run from 1 to 31: the sum fits.
    128 + sig as u8
}

/// The result type used throughout the workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error as the user should see it: what was called, on what, and why it failed.
#[derive(Debug)]
pub enum Error {
    /// A system call failed.
    Sys {
        /// The call, as its man page names it (`mkfifo`, `open`, `mq_send`).
        call: String,
        /// What it was applied to: a path, a POSIX name, a pid, `stdout`. May be empty.
        object: String,
        /// The cause.
        errno: Errno,
    },
    /// The command line was wrong in a way the parser could not see (exit 2).
    Usage(String),
    /// The scenario ran to its end, but its check did not hold (exit 1).
    Check(String),
    /// Any other failure, already phrased for the user (exit 1).
    Msg(String),
    /// A stop signal (SIGINT, SIGTERM, SIGHUP...) ended the run before it finished, and the
    /// role has cleaned up: exit 128 + the signal's number. Made by
    /// [`crate::cleanup::Shutdown::err_if_requested`]; see "Exit status".
    Interrupted(Signal),
}

impl Error {
    /// A system-call error: `call object: cause`.
    pub fn sys(call: &str, object: impl fmt::Display, errno: Errno) -> Self {
        Error::Sys {
            call: call.to_owned(),
            object: object.to_string(),
            errno,
        }
    }

    /// A failure phrased in the caller's own words.
    pub fn msg(text: impl Into<String>) -> Self {
        Error::Msg(text.into())
    }

    /// The errno behind this error, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Sys { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// True if this is a write to a reader that has gone away (EPIPE). Such a program should
    /// stop quietly and exit 0: the reader no longer wants its output (`yes | head -1`).
    pub fn is_broken_pipe(&self) -> bool {
        self.errno() == Some(Errno::EPIPE)
    }

    /// The process exit status this error maps to (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Interrupted(sig) => exit_status_for(*sig),
            _ if self.is_broken_pipe() => EXIT_OK,
            _ => EXIT_FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys {
                call,
                object,
                errno,
            } if object.is_empty() => {
                write!(f, "{call}: {}", errno.desc())
            }
            Error::Sys {
                call,
                object,
                errno,
            } => write!(f, "{call} {object}: {}", errno.desc()),
            Error::Usage(m) | Error::Check(m) | Error::Msg(m) => f.write_str(m),
            Error::Interrupted(sig) => write!(f, "interrupted by {sig}"),
        }
    }
}

impl std::error::Error for Error {}

/// The cause of an I/O error as one phrase (`No such file or directory`), without the
/// ` (os error 2)` that std's `Display` appends: for messages that are not about one call.
pub fn io_cause(e: &io::Error) -> String {
    e.raw_os_error().map_or_else(
        || e.to_string(),
        |code| Errno::from_raw(code).desc().to_owned(),
    )
}

/// Errors from std's I/O keep their errno when they have one, so `is_broken_pipe` still works.
fn from_io(call: &str, object: &dyn fmt::Display, e: &io::Error) -> Error {
    match e.raw_os_error() {
        Some(code) => Error::sys(call, object, Errno::from_raw(code)),
        None if object.to_string().is_empty() => Error::Msg(format!("{call}: {e}")),
        None => Error::Msg(format!("{call} {object}: {e}")),
    }
}

/// Attach the failing call and its object to a low-level error.
pub trait Context<T> {
    /// Turn the error into [`Error::Sys`] naming `call` and `object`.
    fn ctx(self, call: &str, object: impl fmt::Display) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, call: &str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|errno| Error::sys(call, object, errno))
    }
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, call: &str, object: impl fmt::Display) -> Result<T> {
        self.map_err(|e| from_io(call, &object, &e))
    }
}

/// The end of every `main`: report an error on one line of stderr as `prog: error` and turn
/// the outcome into the process exit code (see "Exit status"): a broken pipe ends the program
/// quietly with 0, [`Error::Interrupted`] with 128 + the signal's number
/// (`prog: interrupted by SIGINT`).
pub fn finish(prog: &str, outcome: Result<ExitCode>) -> ExitCode {
    // A count of repeated trace lines still pending is the last thing the timeline shows.
    crate::narrate::flush();
    match outcome {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            // If stderr itself is gone there is nobody left to tell.
            let _ = writeln!(io::stderr().lock(), "{prog}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_error_names_call_object_and_cause() {
        let e = Error::sys("mkfifo", "/run/x/log.fifo", Errno::EEXIST);
        assert_eq!(e.to_string(), "mkfifo /run/x/log.fifo: File exists");
        assert_eq!(e.exit_code(), EXIT_FAILURE);
        let e = Error::sys("fork", "", Errno::EACCES);
        assert_eq!(e.to_string(), "fork: Permission denied");
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let io = io::Error::from_raw_os_error(libc::EPIPE);
        let e = Err::<(), _>(io).ctx("write", "stdout").unwrap_err();
        assert!(e.is_broken_pipe());
        assert_eq!(e.exit_code(), EXIT_OK);
        let io = io::Error::other("custom");
        let e = Err::<(), _>(io).ctx("parse", "cfg").unwrap_err();
        assert_eq!(e.to_string(), "parse cfg: custom");
    }

    #[test]
    fn usage_exits_2() {
        assert_eq!(Error::Usage("bad".into()).exit_code(), EXIT_USAGE);
        assert_eq!(
            Error::Check("lost 3 lines".into()).exit_code(),
            EXIT_FAILURE
        );
    }

    #[test]
    fn an_interrupted_run_exits_128_plus_the_signal() {
        for (sig, code) in [
            (Signal::SIGHUP, 129),
            (Signal::SIGINT, 130),
            (Signal::SIGTERM, 143),
        ] {
            let e = Error::Interrupted(sig);
            assert_eq!(e.exit_code(), code);
            assert_eq!(e.to_string(), format!("interrupted by {sig}"));
            assert_eq!(
                finish("x", Err(e)),
                ExitCode::from(code),
                "finish maps it the same way"
            );
        }
    }
}
