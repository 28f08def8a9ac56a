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

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{Context, Result, names};

use crate::cli::{Object, PathArgs};
use crate::sock;

/// Run the `path` role.
pub fn run(args: &PathArgs) -> Result<ExitCode> {
    let socket = or_default(args.unix.as_deref(), sock::DEFAULT_SOCKET)?;
    let dgram = or_default(args.dgram.as_deref(), sock::DEFAULT_DGRAM_SOCKET)?;
    let dir = names::runtime_dir()?;
    let objects = [
        (Object::Socket, "socket", socket.clone()),
        (Object::PidFile, "pid-file", sock::pid_path_for(&socket)),
        (Object::DgramSocket, "dgram-socket", dgram.clone()),
        (
            Object::DgramPidFile,
            "dgram-pid-file",
            sock::pid_path_for(&dgram),
        ),
        (Object::Dir, "dir", dir),
    ];
    let mut text = Vec::new();
    for (object, name, path) in &objects {
        match args.object {
            Some(wanted) if wanted == *object => line(&mut text, None, path),
            Some(_) => {}
            None => line(&mut text, Some(name), path),
        }
    }
    std::io::stdout()
        .lock()
        .write_all(&text)
        .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// `given`, or `name` in the runtime directory.
fn or_default(given: Option<&Path>, name: &str) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_owned()),
        None => names::runtime_path(name),
    }
}

/// `PATH` or `NAME PATH`, then a newline.
fn line(out: &mut Vec<u8>, name: Option<&str>, path: &Path) {
    if let Some(name) = name {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(path.as_os_str().as_bytes());
    out.push(b'\n');
}
