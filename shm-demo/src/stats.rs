//! `shm-demo stats`: the header's counters (records, slots, the longest probe, the write
//! generation, the server's pid and whether it lives), how many processes have the segment
//! attached (`shm_nattch` from `IPC_STAT`, or the processes whose `/proc/PID/maps` show the
//! POSIX object) and how many `watch`es are alive (the open file description locks each
//! holds, from `/proc/locks`). The server prints the same on SIGUSR1.

use std::process::ExitCode;

use common::{Result, say};

use crate::cli::DbArgs;
use crate::db::Db;
use crate::segment::{self, Target};

/// Run the `stats` role: one `name value` per line.
pub fn run(args: &DbArgs) -> Result<ExitCode> {
    let target = args.target()?;
    let db = Db::open(&target)?;
    say!("{}", line(&db, &target).replace(", ", "\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// The stats as `name value` pairs joined by ", " (the server prints them on one line).
pub fn line(db: &Db, target: &Target) -> String {
    let s = db.stats();
    let known = |n: Option<u64>| n.map_or_else(|| "?".to_owned(), |n| n.to_string());
    let attached = known(segment::attached(target));
    let watchers = known(segment::watchers(target));
    format!(
        "records {}, slots {}, longest_probe {}, generation {}, server_pid {} ({}), \
         attached {attached}, watchers {watchers}, key_max {}, value_max {}, bytes {}",
        s.used,
        s.slots,
        s.longest_probe,
        s.generation,
        s.creator_pid,
        if s.creator_alive { "running" } else { "gone" },
        s.key_max,
        s.value_max,
        s.total_size
    )
}
