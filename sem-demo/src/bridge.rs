//! The bridge: a counting semaphore with K permits (lanes) that N car processes cross.
//!
//! `bridge` creates the semaphore with K permits and the shared board (see [`crate::board`]),
//! starts N `car` processes at once, waits for them, then prints the timeline from the
//! board's event log and checks it: every car entered once and left once, and the occupancy
//! never went above K, as computed from the log *and* as every car saw it at the instant it
//! entered. Both objects are removed at the end, on Ctrl-C too.
//!
//! Each car is a `sem-demo car` process ([`crate::car`]).

use std::process::ExitCode;

use common::cleanup::{Object, Shutdown, Unlink};
use common::{Result, names, say};

use crate::board::{Board, Event};
use crate::cli::BridgeArgs;
use crate::creation::Creation;
use crate::procs;
use crate::sem::{Flavor, Remove, Sem};

/// What a bridge run found.
pub struct Outcome {
    /// The check's one-line result, `ok: ...` or `FAILED: ...`.
    pub verdict: String,
    /// True if the check held.
    pub ok: bool,
}

/// `sem-demo bridge`.
pub fn run(args: &BridgeArgs) -> Result<ExitCode> {
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    crate::stale::sweep()?;
    let flavor = args.flavor.or(Flavor::Posix);
    let tag = names::unique("sem-bridge");
    let out = play(
        &tag,
        args.cars,
        args.lanes,
        args.cross_ms,
        flavor,
        !args.quiet,
        &shutdown,
    )?;
    // A verdict only for a run that was not interrupted.
    shutdown.err_if_requested()?;
    say!("{}", out.verdict)?;
    Ok(if out.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Create the semaphore and the board (both named `tag`), run the cars, print the timeline,
/// check it.
pub fn play(
    tag: &str,
    cars: u32,
    lanes: u16,
    cross_ms: u32,
    flavor: Flavor,
    timeline: bool,
    shutdown: &Shutdown,
) -> Result<Outcome> {
    let (sem, _) = Sem::open(flavor, tag, Creation::Exclusive { value: lanes })?;
    let _sem_guard = Remove(&sem);
    let board_name = names::posix_name(tag);
    let board = Board::create(&board_name, u32::from(lanes), cars)?;
    let _board_guard = Unlink::new(Object::Shm(board_name));

    let cross = cross_ms.to_string();
    let mut children = Vec::new();
    for i in 0..cars {
        let id = i.to_string();
        let args = [
            "car",
            "--name",
            tag,
            "--board",
            tag,
            flavor.flag(),
            "--id",
            &id,
            "--cross-ms",
            &cross,
        ];
        children.push(procs::start(&format!("car {i}"), &args)?);
        shutdown.err_if_requested()?;
    }
    let failed = procs::wait_all(&children, shutdown)?;
    let events = board.timeline();
    if timeline {
        print_timeline(&events, u32::from(lanes), cars, shutdown)?;
    }
    let (max_seen, over) = board.max_and_over();
    let problems = check(&events, cars, u32::from(lanes), &board, &failed);
    let permits = sem.value()?;
    let mut verdict = if problems.is_empty() {
        format!(
            "ok: {cars} cars crossed, at most {max_seen} of {lanes} lanes in use, never more \
             ({} semaphore, {} events)",
            flavor.name(),
            events.len()
        )
    } else {
        format!("FAILED: {}", problems.join("; "))
    };
    if problems.is_empty() && permits != i32::from(lanes) {
        verdict = format!("FAILED: {permits} permits left at the end, expected {lanes}");
    }
    let ok = verdict.starts_with("ok") && over == 0;
    Ok(Outcome { verdict, ok })
}

/// What is wrong with the timeline, if anything.
fn check(events: &[Event], cars: u32, lanes: u32, board: &Board, failed: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    if !failed.is_empty() {
        problems.push(format!("cars failed: {}", failed.join(", ")));
    }
    let (max_seen, over) = board.max_and_over();
    if over > 0 || max_seen > lanes {
        problems.push(format!(
            "{over} entries found more than {lanes} cars (max {max_seen})"
        ));
    }
    // Replay the log: the occupancy each event claims must follow from the ones before.
    let mut on = std::collections::HashSet::new();
    let mut crossed = 0;
    for (i, e) in events.iter().enumerate() {
        let fine = if e.enter {
            on.insert(e.car)
        } else {
            crossed += u32::from(on.remove(&e.car));
            true
        };
        if !fine || e.occupancy as usize != on.len() {
            problems.push(format!(
                "event {i} ({e:?}) does not follow from the ones before"
            ));
            break;
        }
    }
    if crossed != cars || board.occupancy() != 0 {
        problems.push(format!(
            "{crossed} of {cars} cars crossed, {} still on the bridge",
            board.occupancy()
        ));
    }
    problems
}

/// One line per event with a bar of the lanes in use. The bar is never wider than the number
/// of cars: the occupancy comes from shared memory, and a bad value must not become a huge line.
fn print_timeline(events: &[Event], lanes: u32, cars: u32, shutdown: &Shutdown) -> Result<()> {
    for (i, e) in events.iter().enumerate() {
        let bar: String = (0..lanes.max(e.occupancy.min(cars)))
            .map(|l| if l < e.occupancy { '#' } else { '.' })
            .collect();
        // `say!` gives up only when it would wait: a stop must end a long timeline even while
        // stdout takes every line.
        shutdown.err_if_requested()?;
        say!(
            "  {:>4}  car {:>3} {:<6} [{bar}] {}/{lanes}",
            i + 1,
            e.car,
            if e.enter { "enters" } else { "leaves" },
            e.occupancy
        )?;
    }
    Ok(())
}
