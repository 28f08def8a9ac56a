//! `socket-demo worker` (a test hook, see [`crate::cli`]): one of the demo's client processes.
//!
//! Rounds of four pipelined requests (SET and GET of a private key, INCR of a private counter
//! and of one shared by every worker), every reply checked: the demo starts eight of them at
//! once against its server, and `tests/hosts.rs` runs them from other hosts over lossy links
//! (`--tcp`). The last line, `worker N: M replies right`, is what they check.
//!
//! # System calls, in order
//!
//! `socket` + `connect` (see [`crate::sock::Target::connect`]); per round one `write` of four
//! requests, then `read` until four whole replies have arrived; `close` at exit.
//!
//! # Pitfalls
//!
//! - Four requests in one `write` reach the server as one `read`, or split anywhere: the
//!   server must parse a pipelined batch at every split point, and the replies may arrive
//!   in one `read` or in several (see [`Connection::reply`]).

use std::io::{self, Write};
use std::process::ExitCode;

use common::{Context, Error, Result};

use crate::cli::WorkerArgs;
use crate::client::Connection;
use crate::kv::protocol::Reply;
use crate::sock::Target;

/// One of the demo's clients: rounds of pipelined commands, every reply checked.
pub fn run(args: &WorkerArgs) -> Result<ExitCode> {
    let (id, rounds, counter) = (args.id, args.rounds, args.counter.as_str());
    let target = Target::from_flags(args.unix.as_deref(), args.tcp.as_deref())?;
    let mut conn = Connection::open(&target, None)?;
    let key = format!("{counter}:worker-{id}:value");
    let own_counter = format!("{counter}:worker-{id}:count");
    let mut last_shared = 0i64;
    let mut checked = 0u64;
    for round in 1..=rounds {
        let value = format!("worker {id} round {round}");
        // Four requests in one write: the server must parse a pipelined batch.
        conn.queue(&["SET", &key, &value]);
        conn.queue(&["INCR", counter]);
        conn.queue(&["GET", &key]);
        conn.queue(&["INCR", &own_counter]);
        conn.send()?;
        let replies = [conn.reply()?, conn.reply()?, conn.reply()?, conn.reply()?];
        let bad = |what: &str, got: &Reply| {
            Error::Check(format!(
                "worker {id} round {round}: {what}: got {}",
                crate::client::format_reply(got).trim_end()
            ))
        };
        if replies[0] != Reply::Status("OK".into()) {
            return Err(bad("SET", &replies[0]));
        }
        match replies[1] {
            // Others increment too, so the counter only has to move forward.
            Reply::Integer(n) if n > last_shared => last_shared = n,
            ref r => return Err(bad("INCR shared", r)),
        }
        if replies[2] != Reply::Bulk(Some(value.into_bytes())) {
            return Err(bad("GET", &replies[2]));
        }
        if replies[3] != Reply::Integer(i64::from(round)) {
            return Err(bad("INCR own", &replies[3]));
        }
        checked += 4;
    }
    let mut out = io::stdout().lock();
    writeln!(out, "worker {id}: {checked} replies right").ctx("write", "stdout")?;
    Ok(ExitCode::SUCCESS)
}
