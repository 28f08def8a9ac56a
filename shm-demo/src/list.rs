//! `shm-demo list [--values]`: every stored key (and value), each record read under its
//! seqlock and the whole scan checked against the table's moves count (a delete that moves
//! a record from ahead of the scan to behind it starts the scan again).

use std::process::ExitCode;

use common::out::escape;
use common::{Result, say};

use crate::cli::ListArgs;
use crate::db::Db;

/// Run the `list` role.
pub fn run(args: &ListArgs) -> Result<ExitCode> {
    let db = Db::open(&args.db.target()?)?;
    for (k, v) in db.list()? {
        if args.values {
            say!("{}\t{}", escape(&k), escape(&v))?;
        } else {
            say!("{}", escape(&k))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
