//! The `path` role: print where fifo-demo's objects live.
//!
//! The runtime directory is `$XDG_RUNTIME_DIR/ipc-demo` in a desktop session and
//! `/tmp/ipc-demo-$UID` where XDG_RUNTIME_DIR is unset (ssh as root, cron, containers; see
//! [`common::names`]). A recipe that spelt the directory out would work in one of those and
//! write to `/ipc-demo/log.fifo` in the other; `"$(fifo-demo path fifo)"` works in both.
//! The directory is created (0700) if needed, as the daemon would create it.
//!
//! Paths are printed as their bytes (see [`common::out::paths`]).

use std::process::ExitCode;

use common::Result;
use common::names;

use crate::cli::{Object, PathArgs};
use crate::fifo::{fifo_path, pid_path_for};

/// Run the `path` role.
pub fn run(args: &PathArgs) -> Result<ExitCode> {
    let fifo = fifo_path(args.fifo.as_deref())?;
    let pid_file = args.pid_file.clone().unwrap_or_else(|| pid_path_for(&fifo));
    let dir = names::runtime_dir()?;
    common::out::paths(
        &[
            (Object::Fifo, "fifo", &fifo),
            (Object::PidFile, "pid-file", &pid_file),
            (Object::Dir, "dir", &dir),
        ],
        args.object,
    )
}
