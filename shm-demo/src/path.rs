//! `shm-demo path [object|pid-file|dir]`: where the database's files live, for scripts
//! (`kill -USR1 "$(cat "$(shm-demo path pid-file)")"`): the runtime directory depends on
//! `XDG_RUNTIME_DIR`, which ssh, cron and containers often leave unset.

use std::process::ExitCode;

use common::Result;

use crate::cli::{PathArgs, PathObject};
use crate::segment::Flavor;

/// `shm-demo path`: where the database's files live, as raw bytes (a name that is not UTF-8
/// still names the same file when a shell passes it on). The runtime directory is created
/// (0700) if needed, as a server would create it.
pub fn run(args: &PathArgs) -> Result<ExitCode> {
    let target = args.db.target()?;
    let object = match target.flavor {
        Flavor::Posix => std::path::PathBuf::from(format!("/dev/shm{}", target.name)),
        Flavor::Sysv => target.key_path()?,
    };
    common::out::paths(
        &[
            (PathObject::Object, "object", &object),
            (PathObject::PidFile, "pid-file", &target.pid_path()?),
            (PathObject::Dir, "dir", &common::names::runtime_dir()?),
        ],
        args.object,
    )
}
