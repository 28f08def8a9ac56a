//! `sem-demo car`: one car of the bridge, a process holding one of K permits of a counting
//! semaphore while it crosses.
//!
//! In order: open the board (`shm_open` + `mmap`, checked) and the semaphore (existing,
//! checked) → take a permit (`sem_wait`, or `semop(-1, SEM_UNDO)`) → record the entry on
//! the board (one atomic add, which returns the occupancy it made) → sleep `--cross-ms` (the
//! crossing: simulated work, not synchronisation) → record the exit → give the permit back
//! (`sem_post`, `semop(+1, SEM_UNDO)`). It exits 1 if it found more than K cars on the
//! bridge.

use std::process::ExitCode;
use std::time::Duration;

use common::{Error, Result, names, trace};

use crate::board::Board;
use crate::cli::CarArgs;
use crate::creation::Creation;
use crate::sem::{Flavor, Sem};

/// `sem-demo car`.
pub fn run(args: &CarArgs) -> Result<ExitCode> {
    let board = Board::open(&names::posix_name(&args.board))?;
    if args.id >= board.cars() {
        return Err(Error::Usage(format!(
            "car {}: the board has cars 0..{}",
            args.id,
            board.cars()
        )));
    }
    let (sem, _) = Sem::open(args.flavor.or(Flavor::Posix), &args.name, Creation::Never)?;
    // Given back when dropped, on an error too (a board whose event log is full).
    let permit = sem.take(true)?;
    let occupancy = board.enter(args.id)?;
    trace!(
        "car {} on the bridge: {occupancy}/{}",
        args.id,
        board.lanes()
    );
    std::thread::sleep(Duration::from_millis(args.cross_ms.into()));
    let left = board.leave(args.id);
    permit.release()?;
    left?;
    if occupancy > board.lanes() {
        return Err(Error::Check(format!(
            "car {}: {occupancy} cars on a bridge of {} lanes",
            args.id,
            board.lanes()
        )));
    }
    Ok(ExitCode::SUCCESS)
}
