//! `shm-demo del KEY`: delete under the writers' mutex, leaving no tombstone: the records
//! after the key whose probe passes over its slot move back (see `db/delete.rs`).
//! Exit 1 if the key was not stored.

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::Result;

use crate::cli::KeyArgs;
use crate::db::{self, Db};

/// Run the `del` role.
pub fn run(args: &KeyArgs) -> Result<ExitCode> {
    let mut db = Db::open(&args.db.target()?)?;
    db.stop_mid_write = db::stop_hook();
    let found = db.lock()?.del(args.key.as_bytes())?;
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
