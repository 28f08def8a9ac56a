//! The `path` role: print where socket-demo's objects live.
//!
//! The runtime directory is `$XDG_RUNTIME_DIR/ipc-demo` in a desktop session and
//! `/tmp/ipc-demo-$UID` where XDG_RUNTIME_DIR is unset (ssh as root, cron, containers; see
//! [`common::names`]). A recipe that spelt the directory out would work in one of those and
//! not in the other; `redis-cli -s "$(socket-demo path socket)"` works in both. The
//! directory is created (0700) if needed, as a server would create it.
//!
//! # System calls, in order
//!
//! `mkdir(0700)` of the runtime dir if missing (with its owner and mode checked), one `write`
//! of every line to stdout.
//!
//! # Pitfalls
//!
//! - Paths are printed as their bytes, not re-encoded, so that a name that is not UTF-8 still
//!   names the same file when a shell passes it on.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{Result, names};

use crate::cli::{Object, PathArgs};
use crate::sock;

/// Run the `path` role.
pub fn run(args: &PathArgs) -> Result<ExitCode> {
    let socket = or_default(args.unix.as_deref(), sock::DEFAULT_SOCKET)?;
    let dgram = or_default(args.dgram.as_deref(), sock::DEFAULT_DGRAM_SOCKET)?;
    let dir = names::runtime_dir()?;
    common::out::paths(
        &[
            (Object::Socket, "socket", &socket),
            (Object::PidFile, "pid-file", &sock::pid_path_for(&socket)),
            (Object::DgramSocket, "dgram-socket", &dgram),
            (
                Object::DgramPidFile,
                "dgram-pid-file",
                &sock::pid_path_for(&dgram),
            ),
            (Object::Dir, "dir", &dir),
        ],
        args.object,
    )
}

/// `given`, or `name` in the runtime directory.
fn or_default(given: Option<&Path>, name: &str) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_owned()),
        None => names::runtime_path(name),
    }
}
