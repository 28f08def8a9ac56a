//! The command table: every command's name, arity, usage and function, sorted for lookup.

use super::{Call, connection, keys, server, strings, transactions};

/// How a command relates to connections and transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Reads or writes data; queued inside MULTI.
    Data,
    /// Changes the connection's session (HELLO, CLIENT): refused inside MULTI, and over
    /// datagrams.
    Session,
    /// MULTI, EXEC, DISCARD: run at once, even inside MULTI; refused over datagrams.
    Transaction,
}

/// One command of the table.
pub struct Command {
    /// The name, in capitals.
    pub name: &'static str,
    /// The name as a number, for [`lookup`] (see [`name_key`]).
    pub(super) key: u128,
    /// Words including the name: N exactly, -N at least N.
    arity: i32,
    /// The arguments, for `client --help`.
    pub usage: &'static str,
    pub(super) kind: Kind,
    pub(super) run: fn(&mut Call<'_>, &[&[u8]]),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Command {
    pub(super) fn takes(&self, words: usize) -> bool {
        let n = self.arity.unsigned_abs() as usize;
        if self.arity < 0 {
            words >= n
        } else {
            words == n
        }
    }
}

const fn data(
    name: &'static str,
    arity: i32,
    usage: &'static str,
    run: fn(&mut Call<'_>, &[&[u8]]),
) -> Command {
    Command {
        name,
        key: name_key(name.as_bytes()),
        arity,
        usage,
        kind: Kind::Data,
        run,
    }
}

const fn session(
    name: &'static str,
    arity: i32,
    usage: &'static str,
    run: fn(&mut Call<'_>, &[&[u8]]),
) -> Command {
    Command {
        kind: Kind::Session,
        ..data(name, arity, usage, run)
    }
}

const fn transaction(name: &'static str, run: fn(&mut Call<'_>, &[&[u8]])) -> Command {
    Command {
        kind: Kind::Transaction,
        ..data(name, 1, "", run)
    }
}

/// Every command this server answers, sorted by name (a test checks the order).
pub const COMMANDS: &[Command] = &[
    data("APPEND", 3, "key value", strings::append),
    session(
        "CLIENT",
        -2,
        "SETNAME name | GETNAME | ID | SETINFO attr value",
        connection::client,
    ),
    data("COMMAND", -1, "[COUNT | DOCS]", server::command),
    data(
        "CONFIG",
        -3,
        "GET save | appendonly | databases",
        server::config,
    ),
    data("DBSIZE", 1, "", server::dbsize),
    data("DECR", 2, "key", strings::decr),
    data("DECRBY", 3, "key decrement", strings::decrby),
    data("DEL", -2, "key [key ...]", keys::del),
    transaction("DISCARD", transactions::discard),
    data("ECHO", 2, "message", connection::echo),
    transaction("EXEC", transactions::exec),
    data("EXISTS", -2, "key [key ...]", keys::exists),
    data("EXPIRE", 3, "key seconds", keys::expire),
    data("FLUSHALL", -1, "[ASYNC | SYNC]", server::flush),
    data("FLUSHDB", -1, "[ASYNC | SYNC]", server::flush),
    data("GET", 2, "key", strings::get),
    data("GETSET", 3, "key value", strings::getset),
    session(
        "HELLO",
        -1,
        "[2 | 3 [AUTH default password] [SETNAME name]]",
        connection::hello,
    ),
    data("INCR", 2, "key", strings::incr),
    data("INCRBY", 3, "key increment", strings::incrby),
    data(
        "INFO",
        -1,
        "[server | clients | memory | persistence | stats | keyspace]",
        server::info,
    ),
    data("KEYS", 2, "pattern", keys::keys),
    data("MGET", -2, "key [key ...]", strings::mget),
    data("MSET", -3, "key value [key value ...]", strings::mset),
    transaction("MULTI", transactions::multi),
    data("PERSIST", 2, "key", keys::persist),
    data("PEXPIRE", 3, "key milliseconds", keys::pexpire),
    data("PING", -1, "[message]", connection::ping),
    data("PTTL", 2, "key", keys::pttl),
    data("QUIT", -1, "", connection::quit),
    data(
        "SCAN",
        -2,
        "cursor [MATCH pattern] [COUNT count] [TYPE string]",
        keys::scan,
    ),
    data("SELECT", 2, "0", connection::select),
    data(
        "SET",
        -3,
        "key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]",
        strings::set,
    ),
    data("SETNX", 3, "key value", strings::setnx),
    data("STRLEN", 2, "key", strings::strlen),
    data("TTL", 2, "key", keys::ttl),
    data("TYPE", 2, "key", keys::type_),
];

/// A name of up to 16 bytes as a number that sorts as the name does: its bytes, big-endian,
/// padded with zeros. Comparing two of them is one integer comparison, where comparing the
/// names would call `memcmp`; the binary search in [`lookup`] makes several per request.
const fn name_key(name: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let mut i = 0;
    while i < name.len() {
        bytes[i] = name[i];
        i += 1;
    }
    u128::from_be_bytes(bytes)
}

/// The command named `name`, whatever its case.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    if name.len() > 16 {
        return None;
    }
    let mut upper = [0u8; 16];
    for (u, &b) in upper.iter_mut().zip(name) {
        *u = b.to_ascii_uppercase();
    }
    let key = u128::from_be_bytes(upper);
    let found = &COMMANDS[COMMANDS.binary_search_by_key(&key, |c| c.key).ok()?];
    // The padding cannot tell "GET" from "GET\0": the lengths can.
    (found.name.len() == name.len()).then_some(found)
}

/// The list of commands for `client --help`.
pub fn help() -> String {
    let mut text = String::from("Commands (any case; replies as in Redis):\n");
    for c in COMMANDS {
        let line = format!("  {} {}", c.name, c.usage);
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.push_str("Anything else gets: (error) ERR unknown command");
    text
}
