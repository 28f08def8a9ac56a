//! The commands: what each request does to the store, and the reply it gets.
//!
//! [`execute`] takes one parsed request and appends its reply to an output buffer; nothing
//! here touches a socket, so the servers' event loops decide when the bytes go out. The
//! stream server and the datagram server share it.
//!
//! # Families
//!
//! One file per command family, as Redis groups its commands (the `group` of `COMMAND DOCS`):
//!
//! | file | commands |
//! |---|---|
//! | `strings.rs` | GET, SET, SETNX, GETSET, MGET, MSET, APPEND, STRLEN, INCR(BY), DECR(BY) |
//! | `keys.rs` | DEL, EXISTS, TYPE, KEYS, SCAN; expiry: EXPIRE, PEXPIRE, TTL, PTTL, PERSIST |
//! | `connection.rs` | PING, ECHO, QUIT, HELLO, CLIENT, SELECT |
//! | `server.rs` | INFO, CONFIG, COMMAND, DBSIZE, FLUSHALL, FLUSHDB |
//! | `transactions.rs` | MULTI, EXEC, DISCARD |
//!
//! A command is a function `fn(&mut Call, &[&[u8]])`: it gets its arguments after the name,
//! already counted against its arity, and writes its reply through the [`Call`]. A new
//! family is one new file of such functions, its `mod` line below, and its rows in
//! [`table::COMMANDS`].
//!
//! # The table
//!
//! [`table::COMMANDS`] lists every command with its arity (Redis's convention, counting the
//! name: `2` is exactly two words, `-3` at least three), its usage line (for `client --help`)
//! and the function that runs it. It is sorted by name, and a request's name is found by
//! binary search after upper-casing it into a stack buffer: no allocation, and a handful of
//! integer comparisons however many commands there are. A name not in the table gets
//! `-ERR unknown command`, a wrong number of words `-ERR wrong number of arguments`, both
//! before anything runs.
//!
//! # Sessions and what real clients send
//!
//! A connection has a [`Session`]: its protocol version, its name, its transaction. Clients
//! send more than the commands a user types:
//!
//! - redis-py 8 opens with `HELLO 3` and checks that the reply says `proto 3`: the session
//!   then speaks RESP3, which for our replies changes only how "nothing" and maps are written
//!   (see [`Resp`]). `HELLO 2` (or no HELLO) keeps RESP2;
//! - redis-py's `pipeline()` wraps its commands in MULTI/EXEC. Commands after MULTI are
//!   checked (name, arity), queued (`+QUEUED`), and run by EXEC one after the other. The
//!   server has one thread, so nothing can run in between: the transaction is atomic without
//!   any locking. A command refused while queuing makes EXEC refuse the whole transaction
//!   (`-EXECABORT`), as in Redis. WATCH is not supported;
//! - `redis-benchmark` asks `CONFIG GET save` and `appendonly` (no persistence here, truly);
//!   an interactive `redis-cli` asks `COMMAND DOCS` (an empty answer means "no docs");
//! - `redis-cli --stat` reads INFO every second, `--scan` and `--bigkeys` use SCAN, DBSIZE,
//!   TYPE and STRLEN.
//!
//! The datagram server has no connections: each datagram gets a fresh session, and the
//! commands that only make sense on a connection (HELLO, CLIENT, MULTI, EXEC, DISCARD) are
//! refused there with a reply that says so.

mod connection;
mod keys;
mod server;
mod strings;
pub mod table;
mod transactions;

use std::time::Instant;

use super::protocol::{self, Resp};
use super::store::Store;
use table::{Command, Kind, lookup};

pub use table::help;

/// What the connection should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Carry on reading requests.
    Continue,
    /// Send what is buffered, then close (QUIT).
    Close,
}

/// The server's counters, for INFO. The server keeps the connection counts up to date.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients connected now.
    pub connected_clients: usize,
    /// The most clients accepted at once.
    pub max_clients: usize,
    /// Connections accepted since the start.
    pub total_connections_received: u64,
    /// Requests executed since the start.
    pub total_commands_processed: u64,
}

/// Everything the commands act on: the data, and the counters INFO reports.
pub struct State {
    /// The keyspace.
    pub store: Store,
    /// The counters.
    pub stats: Stats,
    started: Instant,
}

impl State {
    /// An empty store, counters at zero.
    pub fn new(max_clients: usize) -> Self {
        State {
            store: Store::new(),
            stats: Stats {
                max_clients,
                ..Stats::default()
            },
            started: Instant::now(),
        }
    }
}

/// What a connection remembers between requests.
#[derive(Debug)]
pub struct Session {
    id: u64,
    resp: Resp,
    /// Set with CLIENT SETNAME or HELLO … SETNAME.
    name: Vec<u8>,
    /// The commands queued since MULTI; None outside a transaction.
    queued: Option<Vec<Queued>>,
    /// A command could not be queued: EXEC must refuse the transaction.
    aborted: bool,
    /// False on the datagram server, where each request stands alone.
    connected: bool,
}

/// A command checked and queued by MULTI, run by EXEC.
#[derive(Debug)]
struct Queued {
    command: &'static Command,
    args: Vec<Vec<u8>>,
}

impl Session {
    /// The session of stream connection number `id` (CLIENT ID).
    pub fn connection(id: u64) -> Self {
        Session {
            id,
            resp: Resp::V2,
            name: Vec::new(),
            queued: None,
            aborted: false,
            connected: true,
        }
    }

    /// The session of one datagram: nothing lasts beyond it.
    pub fn datagram() -> Self {
        Session {
            connected: false,
            ..Self::connection(0)
        }
    }

    /// A command was refused: inside MULTI, that dooms the transaction.
    fn refused(&mut self) {
        if self.queued.is_some() {
            self.aborted = true;
        }
    }
}

/// One command being run: where it reads and writes.
pub struct Call<'a> {
    state: &'a mut State,
    session: &'a mut Session,
    out: &'a mut Vec<u8>,
    after: After,
}

impl Call<'_> {
    fn store(&mut self) -> &mut Store {
        &mut self.state.store
    }

    fn ok(&mut self) {
        protocol::simple(self.out, "OK");
    }

    fn error(&mut self, text: &str) {
        protocol::error(self.out, text);
    }

    fn integer(&mut self, n: i64) {
        protocol::integer(self.out, n);
    }

    fn bool(&mut self, yes: bool) {
        protocol::integer(self.out, i64::from(yes));
    }

    fn nil(&mut self) {
        protocol::nil(self.out, self.session.resp);
    }

    fn bulk_or_nil(&mut self, value: Option<&[u8]>) {
        match value {
            Some(v) => protocol::bulk(self.out, v),
            None => self.nil(),
        }
    }

    fn not_an_integer(&mut self) {
        self.error("ERR value is not an integer or out of range");
    }

    fn syntax_error(&mut self) {
        self.error("ERR syntax error");
    }
}

/// Run one request (its words, the name first) and append its reply to `out`.
pub fn execute(
    state: &mut State,
    session: &mut Session,
    args: &[&[u8]],
    out: &mut Vec<u8>,
) -> After {
    let Some(&name) = args.first() else {
        return After::Continue;
    };
    state.stats.total_commands_processed += 1;
    let Some(command) = lookup(name) else {
        protocol::error(out, &format!("ERR unknown command '{}'", quoted(name)));
        session.refused();
        return After::Continue;
    };
    if !command.takes(args.len()) {
        protocol::error(
            out,
            &format!(
                "ERR wrong number of arguments for '{}' command",
                command.name.to_ascii_lowercase()
            ),
        );
        session.refused();
        return After::Continue;
    }
    if command.kind != Kind::Data && !session.connected {
        protocol::error(
            out,
            &format!(
                "ERR {} needs a connection; over datagrams each request stands alone",
                command.name
            ),
        );
        return After::Continue;
    }
    if let Some(queue) = &mut session.queued {
        match command.kind {
            Kind::Data => {
                queue.push(Queued {
                    command,
                    args: args.iter().map(|a| a.to_vec()).collect(),
                });
                protocol::simple(out, "QUEUED");
                return After::Continue;
            }
            Kind::Session => {
                protocol::error(out, "ERR Command not allowed inside a transaction");
                session.refused();
                return After::Continue;
            }
            Kind::Transaction => {}
        }
    }
    run(state, session, command, &args[1..], out)
}

/// Run a command that has passed every check.
fn run(
    state: &mut State,
    session: &mut Session,
    command: &Command,
    rest: &[&[u8]],
    out: &mut Vec<u8>,
) -> After {
    state.store.expire_due();
    let mut call = Call {
        state,
        session,
        out,
        after: After::Continue,
    };
    (command.run)(&mut call, rest);
    call.after
}

/// At most 128 bytes of a peer's command name, made printable, for an error message.
fn quoted(name: &[u8]) -> String {
    name.iter()
        .take(128)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

fn is(word: &[u8], keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword.as_bytes())
}

#[cfg(test)]
mod tests;
