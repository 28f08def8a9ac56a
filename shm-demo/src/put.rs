//! `shm-demo put KEY VALUE|-`: store a value straight into the segment, under the writers'
//! robust mutex (see [`crate::db`]): map the segment, `pthread_mutex_timedlock` (repairing
//! what a writer killed holding it left: `EOWNERDEAD`), the undo image, the record's sequence
//! count odd, the bytes, even again, `FUTEX_WAKE` if a watcher sleeps, unlock.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use common::out::escape;
use common::{Context, Error, Result, trace};

use crate::cli::PutArgs;
use crate::db::{self, Db};

/// Run the `put` role.
pub fn run(args: &PutArgs) -> Result<ExitCode> {
    let target = args.db.target()?;
    let mut db = Db::open(&target)?;
    let value = if args.value == "-" {
        // At most one byte over the limit: enough to know that it is over, without reading
        // an endless stdin into memory first (so its real length is not known).
        let max = db.geometry().value_max;
        let mut buf = Vec::new();
        std::io::stdin()
            .take(u64::from(max) + 1)
            .read_to_end(&mut buf)
            .ctx("read", "stdin")?;
        if buf.len() > max as usize {
            return Err(Error::msg(format!(
                "value on stdin is over {max} bytes, the limit in {} (server --value-max)",
                target.label()
            )));
        }
        buf
    } else {
        args.value.as_bytes().to_vec()
    };
    db.stop_mid_write = db::stop_hook();
    let key = args.key.as_bytes();
    db.lock()?.put(key, &value)?;
    trace!("put {} ({} bytes)", escape(key), value.len());
    Ok(ExitCode::SUCCESS)
}
