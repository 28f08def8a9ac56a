//! `mqueue-demo path`: where the supervisor's objects are, for scripts, which should never
//! spell them out: the queues as `/dev/mqueue` shows them (when it is mounted), the record in
//! `/dev/shm`, the pid file and the runtime dir.

use std::process::ExitCode;

use common::Result;

use crate::cli::{PathArgs, PathObject};
use crate::names::Names;

/// Print every object's path as `NAME PATH`, or only the one asked for
/// ([`common::out::paths`]).
pub fn run(args: &PathArgs) -> Result<ExitCode> {
    let names = Names::new(&args.name)?;
    let in_dev = |name: &str| std::path::PathBuf::from(format!("/dev/mqueue{name}"));
    common::out::paths(
        &[
            (PathObject::Tasks, "tasks", &in_dev(&names.tasks)),
            (PathObject::Results, "results", &in_dev(&names.results)),
            (PathObject::Dead, "dead", &in_dev(&names.dead)),
            (PathObject::Done, "done", &in_dev(&names.done)),
            (
                PathObject::Record,
                "record",
                &std::path::PathBuf::from(format!("/dev/shm{}", names.record)),
            ),
            (PathObject::PidFile, "pid-file", &names.pid_file()?),
            (PathObject::Dir, "dir", &common::names::runtime_dir()?),
        ],
        args.object,
    )
}
