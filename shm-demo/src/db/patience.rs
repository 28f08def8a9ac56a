//! How long a lock-free reader retries before it gives up with an error, never spinning
//! for ever: a record whose writer died mid-write stays odd until the next writer repairs it,
//! and a table whose records deletes keep moving may never hold still for a miss. A reader
//! spins briefly, then yields, then after [`READ_PATIENCE`] says which it was.

use std::time::{Duration, Instant};

use common::{Error, Result};

use super::Db;

/// How long a reader retries a record that stays odd or keeps changing (or, for a miss or a
/// list, a table whose records keep being moved by deletes).
pub const READ_PATIENCE: Duration = Duration::from_secs(2);

/// Bounded retrying for a reader: spin briefly, then yield, then give up at the deadline.
#[derive(Default)]
pub(super) struct Patience {
    tries: u32,
    since: Option<Instant>,
}

/// What a reader is waiting for.
#[derive(Clone, Copy)]
pub(super) enum Stuck {
    /// A record that is odd or keeps changing.
    Record(u32),
    /// A table whose records keep being moved by deletes.
    Moves,
}

impl Patience {
    pub(super) fn wait(&mut self, db: &Db, stuck: Stuck) -> Result<()> {
        self.tries += 1;
        if self.tries < 64 {
            std::hint::spin_loop();
            return Ok(());
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > READ_PATIENCE {
            let label = &db.region.label;
            let secs = READ_PATIENCE.as_secs();
            return Err(Error::msg(match stuck {
                Stuck::Record(slot) => format!(
                    "{label}: record {slot} is still being written after {secs} s (its writer \
                     may have died mid-write; the next put repairs it)"
                ),
                Stuck::Moves => format!(
                    "{label}: deletes kept moving records for {secs} s; no consistent look at \
                     the table (try again)"
                ),
            }));
        }
        std::thread::yield_now();
        Ok(())
    }
}
