//! Shared plumbing for the ipc-demos workspace.
//!
//! Every demo needs the same few things around its lesson, and this crate holds them so the
//! demos can stay about their IPC mechanism:
//!
//! - [`error`]: one error type that names the failing call and the object it was applied to
//!   (`mkfifo /run/user/1000/ipc-demo/log.fifo: File exists`), and the exit codes every binary
//!   uses.
//! - [`names`]: the private runtime directory where named objects live, POSIX object names, and
//!   unique names for tests that run in parallel.
//! - [`cleanup`]: RAII guards that remove a named object when dropped, and [`cleanup::Shutdown`],
//!   which turns SIGINT/SIGTERM into an orderly return through those guards.
//! - [`lifecycle`]: the one way every daemon announces readiness (`ready: pid N …` on stdout,
//!   `READY=1` to `NOTIFY_SOCKET`) and a stop; the convention the daemons share.
//! - [`narrate`]: the `-v/--trace` timeline, one line per IPC call on stderr.
//! - [`out`]: [`say!`], lines on stdout that are flushed at once and never panic on EPIPE.
//! - [`pidfile`]: a locked pid file, so a daemon tells a live rival from a dead one's leftovers.
//! - [`lock`]: a record lock on a whole file (`fcntl(F_SETLK)`) and the kernel's word on who
//!   holds it (`F_GETLK`).
//! - [`child`]: child processes that cannot outlive their supervisor or hang it.
//! - [`deadline`]: the `poll` timeout that ends a wait at its deadline, not just before.
//! - [`generate`]: `--generate man|complete-bash|complete-zsh|complete-fish`, the man page and
//!   shell completions rendered from a binary's clap definition (what `make install` installs).
//! - `testkit` (feature `test-support`): unique temp dirs and deadline-bounded runs for
//!   integration tests.
//!
//! Something moves in here only once two demos need it.
#![deny(missing_docs)]

pub mod child;
pub mod cleanup;
pub mod deadline;
pub mod error;
pub mod generate;
pub mod lifecycle;
pub mod lock;
pub mod names;
pub mod narrate;
pub mod out;
pub mod pidfile;
#[cfg(feature = "test-support")]
pub mod testkit;

pub use error::{Context, Error, Result};
