//! `shm-demo reader`: one of the demo's reader processes, mapping the segment on its own and
//! getting random keys of the writers without any lock, every value's checksum checked (see
//! [`crate::workload`]); exit 1 if one fails.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{Result, say};

use crate::cli::ReaderArgs;
use crate::db::Db;
use crate::workload::{key_for, value_ok};

/// `shm-demo reader`: random gets until the time is up, every value checked.
pub fn run(args: &ReaderArgs) -> Result<ExitCode> {
    let db = Db::open(&args.db.target()?)?;
    let keys: Vec<String> = (0..args.writers)
        .flat_map(|w| (0..args.keys).map(move |j| key_for(w, j)))
        .collect();
    let end = Instant::now() + Duration::from_millis(args.duration_ms);
    let mut x = u64::from(std::process::id()) | 1;
    let (mut gets, mut found, mut bad) = (0u64, 0u64, 0u64);
    let mut value = Vec::new();
    while gets == 0 || Instant::now() < end {
        for _ in 0..256 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = &keys[(x % keys.len() as u64) as usize];
            gets += 1;
            if db.get(key.as_bytes(), &mut value)? {
                found += 1;
                if !value_ok(key, &value) {
                    bad += 1;
                    eprintln!(
                        "shm-demo reader: checksum failure under {key}: {}",
                        common::out::escape(&value)
                    );
                }
            }
        }
    }
    say!("done: gets {gets} found {found} checksum failures {bad}")?;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
