//! The `path` role: print where fifo-demo's objects live.
//!
//! The runtime directory is `$XDG_RUNTIME_DIR/ipc-demo` in a desktop session and
//! `/tmp/ipc-demo-$UID` where XDG_RUNTIME_DIR is unset (ssh as root, cron, containers; see
//! [`common::names`]). A recipe that spelt the directory out would work in one of those and
//! write to `/ipc-demo/log.fifo` in the other; `"$(fifo-demo path fifo)"` works in both.
//! The directory is created (0700) if needed, as the daemon would create it.
//!
//! Paths are printed as their bytes, not re-encoded, so that a name that is not UTF-8 still
//! names the same file when a shell passes it on.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use common::names;
use common::{Context, Result};

use crate::cli::{Object, PathArgs};
use crate::daemon::{fifo_path, pid_path_for};

/// Run the `path` role.
pub fn run(args: &PathArgs) -> Result<ExitCode> {
    let fifo = fifo_path(args.fifo.as_deref())?;
    let pid_file = args.pid_file.clone().unwrap_or_else(|| pid_path_for(&fifo));
    let dir = names::runtime_dir()?;
    let objects = [
        (Object::Fifo, "fifo", fifo.as_path()),
        (Object::PidFile, "pid-file", pid_file.as_path()),
        (Object::Dir, "dir", dir.as_path()),
    ];
    let mut text = Vec::new();
    for (object, name, path) in objects {
        match args.object {
            Some(wanted) if wanted == object => line(&mut text, None, path),
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

/// `PATH` or `NAME PATH`, then a newline.
fn line(out: &mut Vec<u8>, name: Option<&str>, path: &Path) {
    if let Some(name) = name {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(path.as_os_str().as_bytes());
    out.push(b'\n');
}
