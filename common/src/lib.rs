//! Shared plumbing for the ipc-demos workspace.
//!
//! Every demo needs the same few things around its lesson, and this crate holds them so the
//! demos can stay about their IPC mechanism:
//!
//! - [`error`]: one error type that names the failing call and the object it was applied to
//!   (`mkfifo /run/user/1000/ipc-demo/log.fifo: File exists`), and the exit status every
//!   binary gives (0 done, 1 failed, 2 usage, 128+N stopped by signal N), through
//!   [`error::finish`].
//! - [`names`]: the private runtime directory where named objects live, POSIX object names,
//!   unique names for tests that run in parallel, and a private file replaced atomically
//!   ([`names::replace_private`]: a sibling, fsync, rename).
//! - [`cleanup`]: RAII guards that remove a named object when dropped, and [`cleanup::Shutdown`],
//!   which turns SIGINT/SIGTERM into an orderly return through those guards.
//! - [`lifecycle`]: the one way every daemon announces readiness (`ready: pid N …` on stdout,
//!   `READY=1` to `NOTIFY_SOCKET`) and a stop; the convention the daemons share.
//! - [`narrate`]: the `-v/--trace` timeline, one line per IPC call on stderr.
//! - [`out`]: [`say!`], lines on stdout that are written at once, never panic on EPIPE and
//!   never wait past a stop signal; [`out::Output`] and [`tell!`], a daemon's status lines,
//!   which never block at all; [`out::verdict`], a demo's last line.
//! - [`sink`]: the non-blocking write under both, and under the trace.
//! - [`pidfile`]: a locked pid file, so a daemon tells a live rival from a dead one's leftovers.
//! - [`lock`]: a record lock on a whole file (`fcntl(F_SETLK)`) and the kernel's word on who
//!   holds it (`F_GETLK`).
//! - [`child`]: child processes that cannot outlive their supervisor or hang it;
//!   [`child::RoleCommand`], this binary started again as one of its roles; [`child::Ended`],
//!   how a process ended, for messages.
//! - [`pidfd`]: `pidfd_open(2)`, and waiting for any process to exit.
//! - [`sysv_key`]: System V keys for named objects (`0x1dc0xxxx`) and the FNV-1a hash behind
//!   them.
//! - [`deadline`]: the `poll` timeout that ends a wait at its deadline, not just before.
//! - [`generate`]: `--generate man|complete-bash|complete-zsh|complete-fish`, the man page and
//!   shell completions rendered from a binary's clap definition (what `make install` installs).
//! - `testkit` (feature `test-support`): unique temp dirs, deadline-bounded runs and a started
//!   daemon (`testkit::Daemon`) for integration tests.
//!
//! The modules build on each other in one direction, with no cycle: `deadline` and `sysv_key`
//! use nothing of the crate; `sink` uses `deadline`; `narrate` uses `sink`; `error` uses
//! `narrate` (its `finish` writes out the trace's pending count); `cleanup` uses `error` and
//! `narrate`; `out` uses those; everything else is above them. (The non-blocking [`sink`]
//! used to live in `out`, which made `error` → `narrate` → `out` → `error` a cycle.)
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
pub mod pidfd;
pub mod pidfile;
pub mod sink;
pub mod sysv_key;
#[cfg(feature = "test-support")]
pub mod testkit;

pub use error::{Context, Error, Result};
