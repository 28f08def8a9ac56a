//! `shm-demo writer`: one of the demo's writer processes, mapping the segment on its own and
//! putting rounds of self-checking values (see [`crate::workload`]) to its own keys, one lock
//! of the writers' mutex per put, as independent clients would, until its time is up.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{Result, say};

use crate::cli::WriterArgs;
use crate::db::Db;
use crate::workload::{key_for, value_for};

/// `shm-demo writer`: rounds of puts until the time is up; the last round is whole.
pub fn run(args: &WriterArgs) -> Result<ExitCode> {
    let mut db = Db::open(&args.db.target()?)?;
    let keys: Vec<String> = (0..args.keys).map(|j| key_for(args.id, j)).collect();
    let end = Instant::now() + Duration::from_millis(args.duration_ms);
    let (mut rounds, mut puts) = (0u64, 0u64);
    while rounds == 0 || Instant::now() < end {
        rounds += 1;
        for (j, key) in keys.iter().enumerate() {
            // One lock per put, as independent clients would do.
            db.lock()?
                .put(key.as_bytes(), &value_for(args.id, j as u32, rounds))?;
            puts += 1;
        }
        // -v narrates the first round; the rest are the same calls again.
        db.quiet = true;
    }
    say!("done: rounds {rounds} puts {puts}")?;
    Ok(ExitCode::SUCCESS)
}
