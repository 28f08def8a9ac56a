//! `shm-demo get KEY`: read a value without taking any lock, as any number of readers may at
//! once: the seqlock read of [`crate::db::Db::get`] (the records on the key's probe path,
//! each copied between two equal, even loads of its sequence count), then the raw bytes on
//! stdout. A missing key prints nothing and exits 1.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::out::escape;
use common::{Context, Result, trace};

use crate::cli::KeyArgs;
use crate::db::Db;

/// Run the `get` role.
pub fn run(args: &KeyArgs) -> Result<ExitCode> {
    let db = Db::open(&args.db.target()?)?;
    let key = args.key.as_bytes();
    let mut value = Vec::new();
    let found = db.get(key, &mut value)?;
    trace!(
        "get {}: seqlock read, no lock taken -> {}",
        escape(key),
        if found {
            format!("{} bytes", value.len())
        } else {
            "not stored".to_owned()
        }
    );
    if !found {
        return Ok(ExitCode::FAILURE);
    }
    // The raw bytes, as stored: scripts capture them with $(...) or pipe them on.
    let mut out = std::io::stdout().lock();
    out.write_all(&value)
        .and_then(|()| out.flush())
        .ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}
