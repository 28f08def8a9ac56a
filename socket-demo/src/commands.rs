//! The commands: what each request does to the store, and the reply it gets.
//!
//! [`execute`] takes one parsed request and appends its reply to an output buffer; nothing
//! here touches a socket, so the servers' event loops decide when the bytes go out. The
//! stream server and the datagram server share it.
//!
//! # The table
//!
//! [`COMMANDS`] lists every command with its arity (Redis's convention, counting the name:
//! `2` is exactly two words, `-3` at least three), its usage line (for `client --help`) and
//! the function that runs it. It is sorted by name, and a request's name is found by binary
//! search after upper-casing it into a stack buffer: no allocation, and a handful of integer
//! comparisons however many commands there are. A name not in the table gets
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
//!   (see [`crate::protocol::Resp`]). `HELLO 2` (or no HELLO) keeps RESP2;
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

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::protocol::{self, Resp};
use crate::store::{Store, Ttl, glob_match};

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

/// How a command relates to connections and transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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
    key: u128,
    /// Words including the name: N exactly, -N at least N.
    arity: i32,
    /// The arguments, for `client --help`.
    pub usage: &'static str,
    kind: Kind,
    run: fn(&mut Call<'_>, &[&[u8]]),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Command {
    fn takes(&self, words: usize) -> bool {
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
    data("APPEND", 3, "key value", append),
    session(
        "CLIENT",
        -2,
        "SETNAME name | GETNAME | ID | SETINFO attr value",
        client,
    ),
    data("COMMAND", -1, "[COUNT | DOCS]", command),
    data("CONFIG", -3, "GET save | appendonly | databases", config),
    data("DBSIZE", 1, "", dbsize),
    data("DECR", 2, "key", decr),
    data("DECRBY", 3, "key decrement", decrby),
    data("DEL", -2, "key [key ...]", del),
    transaction("DISCARD", discard),
    data("ECHO", 2, "message", echo),
    transaction("EXEC", exec),
    data("EXISTS", -2, "key [key ...]", exists),
    data("EXPIRE", 3, "key seconds", expire),
    data("FLUSHALL", -1, "[ASYNC | SYNC]", flush),
    data("FLUSHDB", -1, "[ASYNC | SYNC]", flush),
    data("GET", 2, "key", get),
    data("GETSET", 3, "key value", getset),
    session(
        "HELLO",
        -1,
        "[2 | 3 [AUTH default password] [SETNAME name]]",
        hello,
    ),
    data("INCR", 2, "key", incr),
    data("INCRBY", 3, "key increment", incrby),
    data(
        "INFO",
        -1,
        "[server | clients | memory | persistence | stats | keyspace]",
        info,
    ),
    data("KEYS", 2, "pattern", keys),
    data("MGET", -2, "key [key ...]", mget),
    data("MSET", -3, "key value [key value ...]", mset),
    transaction("MULTI", multi),
    data("PERSIST", 2, "key", persist),
    data("PEXPIRE", 3, "key milliseconds", pexpire),
    data("PING", -1, "[message]", ping),
    data("PTTL", 2, "key", pttl),
    data("QUIT", -1, "", quit),
    data(
        "SCAN",
        -2,
        "cursor [MATCH pattern] [COUNT count] [TYPE string]",
        scan,
    ),
    data("SELECT", 2, "0", select),
    data(
        "SET",
        -3,
        "key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]",
        set,
    ),
    data("SETNX", 3, "key value", setnx),
    data("STRLEN", 2, "key", strlen),
    data("TTL", 2, "key", ttl),
    data("TYPE", 2, "key", type_),
];

/// The longest value APPEND may build: what our own client accepts in a reply. Requests are
/// bounded by the parser; this bounds what many of them can add up to in one key.
const MAX_VALUE: usize = protocol::MAX_REPLY_BULK;

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

// ---------------------------------------------------------------------------------------
// Strings

fn get(c: &mut Call<'_>, a: &[&[u8]]) {
    let Call {
        state,
        session,
        out,
        ..
    } = c;
    match state.store.get(a[0]) {
        Some(v) => protocol::bulk(out, v),
        None => protocol::nil(out, session.resp),
    }
}

/// SET key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]
fn set(c: &mut Call<'_>, a: &[&[u8]]) {
    let (key, value) = (a[0], a[1]);
    if a.len() == 2 {
        // The common case first: no options.
        c.store().set(key, value, Ttl::Clear);
        c.ok();
        return;
    }
    let (mut nx, mut xx, mut get, mut ttl) = (false, false, false, None);
    let mut opts = a[2..].iter();
    while let Some(&opt) = opts.next() {
        if is(opt, "NX") && !xx {
            nx = true;
        } else if is(opt, "XX") && !nx {
            xx = true;
        } else if is(opt, "GET") {
            get = true;
        } else if is(opt, "KEEPTTL") && ttl.is_none() {
            ttl = Some(Ttl::Keep);
        } else if (is(opt, "EX") || is(opt, "PX")) && ttl.is_none() {
            let Some(&amount) = opts.next() else {
                return c.syntax_error();
            };
            let unit = if is(opt, "EX") { 1000 } else { 1 };
            match deadline_in(amount, unit) {
                Ok(Some(at)) => ttl = Some(Ttl::At(at)),
                Ok(None) | Err(()) => {
                    return c.error("ERR invalid expire time in 'set' command");
                }
            }
        } else {
            return c.syntax_error();
        }
    }
    let exists = c.store().contains(key);
    let old = if get {
        c.store().get(key).map(<[u8]>::to_vec)
    } else {
        None
    };
    let write = !(nx && exists || xx && !exists);
    if write {
        c.store().set(key, value, ttl.unwrap_or(Ttl::Clear));
    }
    if get {
        c.bulk_or_nil(old.as_deref());
    } else if write {
        c.ok();
    } else {
        c.nil();
    }
}

fn setnx(c: &mut Call<'_>, a: &[&[u8]]) {
    let fresh = !c.store().contains(a[0]);
    if fresh {
        c.store().set(a[0], a[1], Ttl::Clear);
    }
    c.bool(fresh);
}

fn getset(c: &mut Call<'_>, a: &[&[u8]]) {
    let old = c.store().get(a[0]).map(<[u8]>::to_vec);
    c.store().set(a[0], a[1], Ttl::Clear);
    c.bulk_or_nil(old.as_deref());
}

fn mget(c: &mut Call<'_>, a: &[&[u8]]) {
    let Call {
        state,
        session,
        out,
        ..
    } = c;
    protocol::array_len(out, a.len());
    for key in a {
        match state.store.get(key) {
            Some(v) => protocol::bulk(out, v),
            None => protocol::nil(out, session.resp),
        }
    }
}

fn mset(c: &mut Call<'_>, a: &[&[u8]]) {
    if a.len() % 2 != 0 {
        c.error("ERR wrong number of arguments for 'mset' command");
        return;
    }
    for pair in a.chunks_exact(2) {
        c.store().set(pair[0], pair[1], Ttl::Clear);
    }
    c.ok();
}

fn append(c: &mut Call<'_>, a: &[&[u8]]) {
    let (key, more) = (a[0], a[1]);
    let len = match c.store().get_mut(key) {
        Some(v) if v.len() + more.len() > MAX_VALUE => {
            return c.error(&format!(
                "ERR string exceeds maximum allowed size ({MAX_VALUE} bytes)"
            ));
        }
        Some(v) => {
            v.extend_from_slice(more);
            v.len()
        }
        None => {
            c.store().set(key, more, Ttl::Clear);
            more.len()
        }
    };
    c.integer(len as i64);
}

fn strlen(c: &mut Call<'_>, a: &[&[u8]]) {
    let len = c.store().get(a[0]).map_or(0, <[u8]>::len);
    c.integer(len as i64);
}

fn incr(c: &mut Call<'_>, a: &[&[u8]]) {
    incr_by(c, a[0], 1);
}

fn decr(c: &mut Call<'_>, a: &[&[u8]]) {
    incr_by(c, a[0], -1);
}

fn incrby(c: &mut Call<'_>, a: &[&[u8]]) {
    match protocol::parse_decimal(a[1]) {
        Some(n) => incr_by(c, a[0], n),
        None => c.not_an_integer(),
    }
}

fn decrby(c: &mut Call<'_>, a: &[&[u8]]) {
    match protocol::parse_decimal(a[1]).map(i64::checked_neg) {
        Some(Some(n)) => incr_by(c, a[0], n),
        Some(None) => c.error("ERR decrement would overflow"),
        None => c.not_an_integer(),
    }
}

/// Add `delta` to the integer stored at `key` (0 if there is none), keeping its deadline.
fn incr_by(c: &mut Call<'_>, key: &[u8], delta: i64) {
    let Call { state, out, .. } = c;
    let next = match state.store.get_mut(key) {
        // Strict like Redis (no "+1", " 1", "01" or "-0"), so that the value stored always
        // reads back as the same string.
        Some(v) => match protocol::parse_decimal(v).map(|n| n.checked_add(delta)) {
            Some(Some(next)) => {
                v.clear();
                protocol::decimal(v, next);
                next
            }
            Some(None) => return protocol::error(out, "ERR increment or decrement would overflow"),
            None => return protocol::error(out, "ERR value is not an integer or out of range"),
        },
        None => {
            let mut digits = Vec::new();
            protocol::decimal(&mut digits, delta);
            state.store.set(key, &digits, Ttl::Clear);
            delta
        }
    };
    protocol::integer(out, next);
}

// ---------------------------------------------------------------------------------------
// Keys

fn del(c: &mut Call<'_>, a: &[&[u8]]) {
    let n = a.iter().filter(|k| c.store().remove(k)).count();
    c.integer(n as i64);
}

fn exists(c: &mut Call<'_>, a: &[&[u8]]) {
    // Counted once per mention, as in Redis: EXISTS k k is 2.
    let n = a.iter().filter(|k| c.store().contains(k)).count();
    c.integer(n as i64);
}

fn type_(c: &mut Call<'_>, a: &[&[u8]]) {
    let kind = if c.store().contains(a[0]) {
        "string"
    } else {
        "none"
    };
    protocol::simple(c.out, kind);
}

fn keys(c: &mut Call<'_>, a: &[&[u8]]) {
    let Call { state, out, .. } = c;
    let found: Vec<&[u8]> = state.store.keys().filter(|k| glob_match(a[0], k)).collect();
    protocol::array_len(out, found.len());
    for k in found {
        protocol::bulk(out, k);
    }
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]: see [`Store::scan`] for what the
/// cursor promises. COUNT is how many keys to look at, so with MATCH a step may return fewer
/// (even none) before the scan is complete; only cursor 0 says it is.
fn scan(c: &mut Call<'_>, a: &[&[u8]]) {
    let Some(cursor) = std::str::from_utf8(a[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return c.error("ERR invalid cursor");
    };
    let (mut pattern, mut count, mut strings) = (None, 10, true);
    let mut opts = a[1..].iter();
    while let Some(&opt) = opts.next() {
        let Some(&value) = opts.next() else {
            return c.syntax_error();
        };
        if is(opt, "MATCH") {
            pattern = Some(value);
        } else if is(opt, "COUNT") {
            match protocol::parse_decimal(value) {
                Some(n) if n >= 1 => count = usize::try_from(n).unwrap_or(usize::MAX),
                Some(_) => return c.syntax_error(),
                None => return c.not_an_integer(),
            }
        } else if is(opt, "TYPE") {
            // Every value here is a string.
            strings = is(value, "string");
        } else {
            return c.syntax_error();
        }
    }
    let Call { state, out, .. } = c;
    let (next, mut found) = state.store.scan(cursor, count);
    found.retain(|k| strings && pattern.is_none_or(|p| glob_match(p, k)));
    protocol::array_len(out, 2);
    let mut digits = Vec::new();
    protocol::decimal(&mut digits, i64::try_from(next).unwrap_or(i64::MAX));
    protocol::bulk(out, &digits);
    protocol::array_len(out, found.len());
    for k in found {
        protocol::bulk(out, k);
    }
}

fn dbsize(c: &mut Call<'_>, _: &[&[u8]]) {
    let n = c.store().len();
    c.integer(n as i64);
}

fn flush(c: &mut Call<'_>, a: &[&[u8]]) {
    match a {
        [] => {}
        [mode] if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        _ => return c.syntax_error(),
    }
    c.store().clear();
    c.ok();
}

fn select(c: &mut Call<'_>, a: &[&[u8]]) {
    match protocol::parse_decimal(a[0]) {
        Some(0) => c.ok(),
        Some(_) => c.error("ERR DB index is out of range: this server has one database, 0"),
        None => c.not_an_integer(),
    }
}

// ---------------------------------------------------------------------------------------
// Expiry

/// The instant `amount` units of `unit_ms` milliseconds from now: Ok(None) if `amount` is not
/// positive, Err if it is not an integer or too far away.
fn deadline_in(amount: &[u8], unit_ms: u64) -> Result<Option<Instant>, ()> {
    let n = protocol::parse_decimal(amount).ok_or(())?;
    if n <= 0 {
        return Ok(None);
    }
    let ms = n.unsigned_abs().checked_mul(unit_ms).ok_or(())?;
    Instant::now()
        .checked_add(Duration::from_millis(ms))
        .map(Some)
        .ok_or(())
}

fn expire(c: &mut Call<'_>, a: &[&[u8]]) {
    expire_in(c, a, 1000, "expire");
}

fn pexpire(c: &mut Call<'_>, a: &[&[u8]]) {
    expire_in(c, a, 1, "pexpire");
}

/// EXPIRE and PEXPIRE: 1 if the key exists and now has the deadline. A deadline that is not
/// in the future deletes the key at once, as in Redis.
fn expire_in(c: &mut Call<'_>, a: &[&[u8]], unit_ms: u64, name: &str) {
    if protocol::parse_decimal(a[1]).is_none() {
        return c.not_an_integer();
    }
    match deadline_in(a[1], unit_ms) {
        Ok(Some(at)) => {
            let set = c.store().set_deadline(a[0], Some(at));
            c.bool(set);
        }
        Ok(None) => {
            let removed = c.store().remove(a[0]);
            c.bool(removed);
        }
        Err(()) => c.error(&format!("ERR invalid expire time in '{name}' command")),
    }
}

fn ttl(c: &mut Call<'_>, a: &[&[u8]]) {
    // Whole seconds, rounded as Redis rounds them.
    let left = time_left_ms(c, a[0]);
    c.integer(if left < 0 { left } else { (left + 500) / 1000 });
}

fn pttl(c: &mut Call<'_>, a: &[&[u8]]) {
    let left = time_left_ms(c, a[0]);
    c.integer(left);
}

/// Milliseconds until `key` expires; -1 if it has no deadline, -2 if there is no such key.
fn time_left_ms(c: &mut Call<'_>, key: &[u8]) -> i64 {
    match c.store().deadline(key) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            let left = at.saturating_duration_since(Instant::now());
            i64::try_from(left.as_millis()).unwrap_or(i64::MAX)
        }
    }
}

fn persist(c: &mut Call<'_>, a: &[&[u8]]) {
    let had = matches!(c.store().deadline(a[0]), Some(Some(_)));
    if had {
        c.store().set_deadline(a[0], None);
    }
    c.bool(had);
}

// ---------------------------------------------------------------------------------------
// Connection and server

fn ping(c: &mut Call<'_>, a: &[&[u8]]) {
    match a {
        [] => protocol::simple(c.out, "PONG"),
        [msg] => protocol::bulk(c.out, msg),
        _ => c.error("ERR wrong number of arguments for 'ping' command"),
    }
}

fn echo(c: &mut Call<'_>, a: &[&[u8]]) {
    protocol::bulk(c.out, a[0]);
}

fn quit(c: &mut Call<'_>, _: &[&[u8]]) {
    c.ok();
    c.after = After::Close;
}

/// A client name must be one word of printable ASCII: it shows in logs and lists.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// HELLO [protover [AUTH username password] [SETNAME name]]
fn hello(c: &mut Call<'_>, a: &[&[u8]]) {
    let mut resp = c.session.resp;
    let mut rest = a;
    if let Some((version, tail)) = rest.split_first() {
        resp = match protocol::parse_decimal(version) {
            Some(2) => Resp::V2,
            Some(3) => Resp::V3,
            Some(_) => return c.error("NOPROTO unsupported protocol version"),
            None => return c.error("ERR Protocol version is not an integer or out of range"),
        };
        rest = tail;
    }
    let mut name = None;
    loop {
        match rest {
            [] => break,
            [auth, user, _password, tail @ ..] if is(auth, "AUTH") => {
                // There are no passwords here: like a Redis whose default user has none,
                // any password is accepted for `default`, and other users do not exist.
                if *user != b"default" {
                    return c
                        .error("WRONGPASS invalid username-password pair or user is disabled.");
                }
                rest = tail;
            }
            [setname, new, tail @ ..] if is(setname, "SETNAME") => {
                if !valid_name(new) {
                    return c.error(BAD_NAME);
                }
                name = Some(*new);
                rest = tail;
            }
            [opt, ..] => {
                return c.error(&format!(
                    "ERR Syntax error in HELLO option '{}'",
                    quoted(opt)
                ));
            }
        }
    }
    c.session.resp = resp;
    if let Some(name) = name {
        c.session.name = name.to_vec();
    }
    let out = &mut *c.out;
    protocol::map_len(out, 7, resp);
    protocol::bulk(out, b"server");
    protocol::bulk(out, b"socket-demo");
    protocol::bulk(out, b"version");
    protocol::bulk(out, env!("CARGO_PKG_VERSION").as_bytes());
    protocol::bulk(out, b"proto");
    protocol::integer(out, if resp == Resp::V3 { 3 } else { 2 });
    protocol::bulk(out, b"id");
    protocol::integer(out, i64::try_from(c.session.id).unwrap_or(i64::MAX));
    protocol::bulk(out, b"mode");
    protocol::bulk(out, b"standalone");
    protocol::bulk(out, b"role");
    protocol::bulk(out, b"master");
    protocol::bulk(out, b"modules");
    protocol::array_len(out, 0);
}

/// CLIENT SETNAME | GETNAME | ID | SETINFO
fn client(c: &mut Call<'_>, a: &[&[u8]]) {
    match a {
        [sub, name] if is(sub, "SETNAME") => {
            if valid_name(name) {
                c.session.name = name.to_vec();
                c.ok();
            } else {
                c.error(BAD_NAME);
            }
        }
        [sub] if is(sub, "GETNAME") => {
            if c.session.name.is_empty() {
                c.nil();
            } else {
                protocol::bulk(c.out, &c.session.name);
            }
        }
        [sub] if is(sub, "ID") => {
            let id = i64::try_from(c.session.id).unwrap_or(i64::MAX);
            c.integer(id);
        }
        // The library's name and version (redis-py sends them): accepted, not kept.
        [sub, attr, _] if is(sub, "SETINFO") => {
            if is(attr, "LIB-NAME") || is(attr, "LIB-VER") {
                c.ok();
            } else {
                c.error(&format!("ERR Unrecognized option '{}'", quoted(attr)));
            }
        }
        [sub, ..] => c.error(&format!(
            "ERR unknown subcommand or wrong number of arguments for 'CLIENT {}'; \
             supported: SETNAME, GETNAME, ID, SETINFO",
            quoted(sub)
        )),
        [] => c.error("ERR wrong number of arguments for 'client' command"),
    }
}

/// COMMAND COUNT, and COMMAND DOCS from an interactive redis-cli: no docs to offer, which it
/// accepts.
fn command(c: &mut Call<'_>, a: &[&[u8]]) {
    match a.first() {
        Some(sub) if is(sub, "COUNT") => c.integer(COMMANDS.len() as i64),
        Some(sub) if is(sub, "DOCS") => protocol::map_len(c.out, 0, c.session.resp),
        _ => protocol::array_len(c.out, 0),
    }
}

/// CONFIG GET: the few parameters clients ask about, answered truthfully.
fn config(c: &mut Call<'_>, a: &[&[u8]]) {
    let [sub, param] = a else {
        return c.error("ERR only CONFIG GET <parameter> is supported");
    };
    if !is(sub, "GET") {
        return c.error("ERR only CONFIG GET <parameter> is supported");
    }
    let value: Option<&[u8]> = if is(param, "save") {
        // No snapshots, no append-only file: nothing is persisted.
        Some(b"")
    } else if is(param, "appendonly") {
        Some(b"no")
    } else if is(param, "databases") {
        Some(b"1")
    } else {
        None
    };
    let resp = c.session.resp;
    match value {
        Some(v) => {
            protocol::map_len(c.out, 1, resp);
            protocol::bulk(c.out, &param.to_ascii_lowercase());
            protocol::bulk(c.out, v);
        }
        None => protocol::map_len(c.out, 0, resp),
    }
}

/// INFO [section ...]: the sections `redis-cli --stat` and monitoring tools read.
fn info(c: &mut Call<'_>, a: &[&[u8]]) {
    let all = a.is_empty()
        || a.iter()
            .any(|s| is(s, "all") || is(s, "default") || is(s, "everything"));
    let wants = |section: &str| all || a.iter().any(|s| is(s, section));
    let state = &*c.state;
    let stats = &state.stats;
    // Each section is a title and `field:value` lines. Every line ends in CRLF, the last one
    // too: redis-cli reads a value up to the next CR (or comma), and without one it reads
    // past the end. An empty line separates sections.
    let mut sections: Vec<String> = Vec::new();
    if wants("server") {
        sections.push(format!(
            "# Server\r\n\
             redis_version:7.0.0\r\n\
             socket_demo_version:{}\r\n\
             redis_mode:standalone\r\n\
             process_id:{}\r\n\
             uptime_in_seconds:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            state.started.elapsed().as_secs()
        ));
    }
    if wants("clients") {
        sections.push(format!(
            "# Clients\r\n\
             connected_clients:{}\r\n\
             maxclients:{}\r\n\
             blocked_clients:0\r\n",
            stats.connected_clients, stats.max_clients
        ));
    }
    if wants("memory") {
        let rss = resident_bytes();
        sections.push(format!(
            "# Memory\r\n\
             used_memory:{rss}\r\n\
             used_memory_human:{:.2}M\r\n\
             used_memory_rss:{rss}\r\n",
            rss as f64 / (1024.0 * 1024.0)
        ));
    }
    if wants("persistence") {
        // Nothing is ever saved, loaded or rewritten here.
        sections.push(
            "# Persistence\r\n\
             loading:0\r\n\
             rdb_bgsave_in_progress:0\r\n\
             aof_enabled:0\r\n\
             aof_rewrite_in_progress:0\r\n"
                .to_owned(),
        );
    }
    if wants("stats") {
        sections.push(format!(
            "# Stats\r\n\
             total_connections_received:{}\r\n\
             total_commands_processed:{}\r\n",
            stats.total_connections_received, stats.total_commands_processed
        ));
    }
    if wants("keyspace") {
        let mut keyspace = "# Keyspace\r\n".to_owned();
        // As in Redis, an empty database is not listed.
        if state.store.len() > 0 {
            let _ = write!(
                keyspace,
                "db0:keys={},expires={},avg_ttl=0\r\n",
                state.store.len(),
                state.store.volatile_len()
            );
        }
        sections.push(keyspace);
    }
    protocol::bulk(c.out, sections.join("\r\n").as_bytes());
}

/// The server's resident memory in bytes (INFO's used_memory: this server does not count
/// its allocations one by one, so it reports what the kernel says it occupies).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    pages * page
}

// ---------------------------------------------------------------------------------------
// Transactions

fn multi(c: &mut Call<'_>, _: &[&[u8]]) {
    if c.session.queued.is_some() {
        // Redis refuses it and leaves the transaction open (not aborted).
        return c.error("ERR MULTI calls can not be nested");
    }
    c.session.queued = Some(Vec::new());
    c.session.aborted = false;
    c.ok();
}

fn discard(c: &mut Call<'_>, _: &[&[u8]]) {
    if c.session.queued.take().is_none() {
        return c.error("ERR DISCARD without MULTI");
    }
    c.session.aborted = false;
    c.ok();
}

/// EXEC: run the queued commands, one reply each, in one array. Nothing else can run in
/// between: the server has one thread, and this loop does not return to it until done.
fn exec(c: &mut Call<'_>, _: &[&[u8]]) {
    let Some(queued) = c.session.queued.take() else {
        return c.error("ERR EXEC without MULTI");
    };
    if std::mem::take(&mut c.session.aborted) {
        return c.error("EXECABORT Transaction discarded because of previous errors.");
    }
    protocol::array_len(c.out, queued.len());
    for q in &queued {
        let args: Vec<&[u8]> = q.args.iter().map(Vec::as_slice).collect();
        c.state.stats.total_commands_processed += 1;
        if run(c.state, c.session, q.command, &args[1..], c.out) == After::Close {
            c.after = After::Close;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_words(state: &mut State, session: &mut Session, words: &[&str]) -> String {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let mut out = Vec::new();
        execute(state, session, &args, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A fresh connection to a fresh store, and a function to send it commands.
    fn connection() -> impl FnMut(&[&str]) -> String {
        let mut state = State::new(10);
        let mut session = Session::connection(1);
        move |words| run_words(&mut state, &mut session, words)
    }

    #[test]
    fn the_table_is_sorted_and_every_name_is_found_in_any_case() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
        for c in COMMANDS {
            assert!(
                c.name.len() <= 16,
                "{} is too long for lookup's buffer",
                c.name
            );
            assert_eq!(
                lookup(c.name.to_ascii_lowercase().as_bytes()).unwrap().name,
                c.name
            );
        }
        assert!(lookup(b"NOSUCHCOMMAND").is_none());
        assert!(lookup(b"GET\0").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(b"GETX").is_none());
        assert!(lookup(&[b'A'; 40]).is_none());
    }

    #[test]
    fn commands() {
        let mut call = connection();
        assert_eq!(call(&["ping"]), "+PONG\r\n");
        assert_eq!(call(&["PING", "hi"]), "$2\r\nhi\r\n");
        assert_eq!(call(&["SET", "k", "v"]), "+OK\r\n");
        assert_eq!(call(&["get", "k"]), "$1\r\nv\r\n");
        assert_eq!(call(&["GET", "nope"]), "$-1\r\n");
        assert_eq!(call(&["EXISTS", "k", "nope", "k"]), ":2\r\n");
        assert_eq!(call(&["INCR", "n"]), ":1\r\n");
        assert_eq!(call(&["INCRBY", "n", "41"]), ":42\r\n");
        assert_eq!(call(&["DECR", "n"]), ":41\r\n");
        assert_eq!(call(&["DECRBY", "n", "-9"]), ":50\r\n");
        assert_eq!(call(&["DBSIZE"]), ":2\r\n");
        assert_eq!(call(&["APPEND", "k", "alue"]), ":5\r\n");
        assert_eq!(call(&["STRLEN", "k"]), ":5\r\n");
        assert_eq!(call(&["STRLEN", "nope"]), ":0\r\n");
        assert_eq!(call(&["SETNX", "k", "x"]), ":0\r\n");
        assert_eq!(call(&["SETNX", "k2", "x"]), ":1\r\n");
        assert_eq!(call(&["GETSET", "k2", "y"]), "$1\r\nx\r\n");
        assert_eq!(call(&["MSET", "a", "1", "b", "2"]), "+OK\r\n");
        assert_eq!(
            call(&["MGET", "a", "nope", "b"]),
            "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"
        );
        assert_eq!(call(&["TYPE", "a"]), "+string\r\n");
        assert_eq!(call(&["TYPE", "nope"]), "+none\r\n");
        assert_eq!(call(&["KEYS", "[ab]"]), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
        assert_eq!(call(&["DEL", "k", "n", "x"]), ":2\r\n");
        assert_eq!(call(&["ECHO", "a b"]), "$3\r\na b\r\n");
        assert_eq!(
            call(&["CONFIG", "GET", "save"]),
            "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
        );
        assert_eq!(call(&["COMMAND", "DOCS"]), "*0\r\n");
        assert_eq!(
            call(&["command", "count"]),
            format!(":{}\r\n", COMMANDS.len())
        );
        assert_eq!(call(&["SELECT", "0"]), "+OK\r\n");
        assert_eq!(call(&["FLUSHDB"]), "+OK\r\n");
        assert_eq!(call(&["DBSIZE"]), ":0\r\n");
    }

    #[test]
    fn set_options() {
        let mut call = connection();
        assert_eq!(call(&["SET", "k", "1", "NX"]), "+OK\r\n");
        assert_eq!(call(&["SET", "k", "2", "NX"]), "$-1\r\n");
        assert_eq!(call(&["SET", "k", "3", "XX", "GET"]), "$1\r\n1\r\n");
        assert_eq!(call(&["SET", "new", "3", "XX"]), "$-1\r\n");
        assert_eq!(call(&["SET", "new", "3", "GET"]), "$-1\r\n");
        assert_eq!(call(&["SET", "k", "4", "EX", "100"]), "+OK\r\n");
        assert_eq!(call(&["TTL", "k"]), ":100\r\n");
        assert_eq!(call(&["SET", "k", "5", "KEEPTTL"]), "+OK\r\n");
        assert_eq!(call(&["TTL", "k"]), ":100\r\n");
        assert_eq!(call(&["INCR", "k"]), ":6\r\n");
        assert_eq!(call(&["TTL", "k"]), ":100\r\n", "INCR keeps the deadline");
        assert_eq!(call(&["SET", "k", "6"]), "+OK\r\n");
        assert_eq!(call(&["TTL", "k"]), ":-1\r\n", "SET clears it");
        let syntax = "-ERR syntax error\r\n";
        assert_eq!(call(&["SET", "k", "1", "NX", "XX"]), syntax);
        assert_eq!(call(&["SET", "k", "1", "EX", "1", "PX", "1"]), syntax);
        assert_eq!(call(&["SET", "k", "1", "EX"]), syntax);
        assert_eq!(call(&["SET", "k", "1", "BOGUS"]), syntax);
        let bad_time = "-ERR invalid expire time in 'set' command\r\n";
        assert_eq!(call(&["SET", "k", "1", "EX", "0"]), bad_time);
        assert_eq!(call(&["SET", "k", "1", "PX", "-5"]), bad_time);
        assert_eq!(call(&["SET", "k", "1", "EX", "x"]), bad_time);
        assert_eq!(
            call(&["SET", "k", "1", "EX", "9223372036854775807"]),
            bad_time
        );
    }

    #[test]
    fn expiry_commands() {
        let mut call = connection();
        assert_eq!(call(&["TTL", "nope"]), ":-2\r\n");
        assert_eq!(call(&["EXPIRE", "nope", "10"]), ":0\r\n");
        call(&["SET", "k", "v"]);
        assert_eq!(call(&["TTL", "k"]), ":-1\r\n");
        assert_eq!(call(&["PERSIST", "k"]), ":0\r\n");
        assert_eq!(call(&["EXPIRE", "k", "10"]), ":1\r\n");
        assert_eq!(call(&["TTL", "k"]), ":10\r\n");
        let pttl = call(&["PTTL", "k"]);
        let ms: i64 = pttl[1..pttl.len() - 2].parse().unwrap();
        assert!((9_000..=10_000).contains(&ms), "{pttl}");
        assert_eq!(call(&["PERSIST", "k"]), ":1\r\n");
        assert_eq!(call(&["TTL", "k"]), ":-1\r\n");
        assert_eq!(call(&["PEXPIRE", "k", "1"]), ":1\r\n");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(call(&["GET", "k"]), "$-1\r\n", "expired");
        assert_eq!(call(&["DBSIZE"]), ":0\r\n");
        call(&["SET", "k", "v"]);
        assert_eq!(
            call(&["EXPIRE", "k", "0"]),
            ":1\r\n",
            "a past deadline deletes"
        );
        assert_eq!(call(&["EXISTS", "k"]), ":0\r\n");
        assert_eq!(
            call(&["EXPIRE", "k", "soon"]),
            "-ERR value is not an integer or out of range\r\n"
        );
    }

    #[test]
    fn scan_walks_in_steps_with_match_count_and_type() {
        let mut call = connection();
        for i in 0..25 {
            call(&["SET", &format!("key:{i:02}"), "v"]);
        }
        call(&["SET", "other", "v"]);
        let mut cursor = "0".to_owned();
        let mut found = Vec::new();
        loop {
            let reply = call(&["SCAN", &cursor, "MATCH", "key:*", "COUNT", "10"]);
            let lines: Vec<&str> = reply.split("\r\n").collect();
            assert_eq!(lines[0], "*2");
            cursor = lines[2].to_owned();
            found.extend(
                lines[4..]
                    .iter()
                    .filter(|l| !l.starts_with('$') && !l.is_empty())
                    .map(|l| l.to_string()),
            );
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(found.len(), 25);
        assert_eq!(
            call(&["SCAN", "0", "TYPE", "list"]),
            "*2\r\n$2\r\n11\r\n*0\r\n"
        );
        assert_eq!(call(&["SCAN", "x"]), "-ERR invalid cursor\r\n");
        assert_eq!(call(&["SCAN", "0", "COUNT", "0"]), "-ERR syntax error\r\n");
        assert_eq!(call(&["SCAN", "0", "MATCH"]), "-ERR syntax error\r\n");
    }

    #[test]
    fn errors() {
        let mut call = connection();
        assert_eq!(call(&["FOO"]), "-ERR unknown command 'FOO'\r\n");
        assert_eq!(
            call(&["GET"]),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        assert_eq!(
            call(&["MSET", "a", "1", "b"]),
            "-ERR wrong number of arguments for 'mset' command\r\n"
        );
        call(&["SET", "t", "abc"]);
        let not_int = "-ERR value is not an integer or out of range\r\n";
        assert_eq!(call(&["INCR", "t"]), not_int);
        assert_eq!(call(&["INCRBY", "n", "1.5"]), not_int);
        call(&["SET", "t", "007"]);
        assert_eq!(call(&["INCR", "t"]), not_int);
        call(&["SET", "t", "9223372036854775807"]);
        assert_eq!(
            call(&["INCR", "t"]),
            "-ERR increment or decrement would overflow\r\n"
        );
        assert_eq!(
            call(&["DECRBY", "t", "-9223372036854775808"]),
            "-ERR decrement would overflow\r\n"
        );
        call(&["SET", "t", "-5"]);
        assert_eq!(call(&["INCR", "t"]), ":-4\r\n");
        assert_eq!(
            call(&["BAD\r\nNAME"]),
            "-ERR unknown command 'BAD??NAME'\r\n"
        );
        assert_eq!(
            call(&["SELECT", "1"]),
            "-ERR DB index is out of range: this server has one database, 0\r\n"
        );
    }

    #[test]
    fn hello_switches_the_session_to_resp3() {
        let mut call = connection();
        let two = call(&["HELLO", "2"]);
        assert!(two.starts_with("*14\r\n$6\r\nserver\r\n"), "{two}");
        let three = call(&["HELLO", "3", "AUTH", "default", "any", "SETNAME", "me"]);
        assert!(three.starts_with("%7\r\n$6\r\nserver\r\n"), "{three}");
        assert!(three.contains("$5\r\nproto\r\n:3\r\n"), "{three}");
        assert_eq!(call(&["GET", "nope"]), "_\r\n");
        assert_eq!(call(&["CLIENT", "GETNAME"]), "$2\r\nme\r\n");
        assert_eq!(
            call(&["CONFIG", "GET", "appendonly"]),
            "%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
        );
        assert_eq!(
            call(&["HELLO", "4"]),
            "-NOPROTO unsupported protocol version\r\n"
        );
        assert!(call(&["HELLO", "3", "AUTH", "root", "pw"]).starts_with("-WRONGPASS"));
        assert_eq!(
            call(&["CLIENT", "SETNAME", "two words"]),
            format!("-{BAD_NAME}\r\n")
        );
        assert_eq!(
            call(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
            "+OK\r\n"
        );
        assert_eq!(call(&["CLIENT", "ID"]), ":1\r\n");
    }

    #[test]
    fn multi_queues_and_exec_runs_them_together() {
        let mut call = connection();
        assert_eq!(call(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
        assert_eq!(call(&["DISCARD"]), "-ERR DISCARD without MULTI\r\n");
        assert_eq!(call(&["MULTI"]), "+OK\r\n");
        assert_eq!(call(&["SET", "a", "1"]), "+QUEUED\r\n");
        assert_eq!(call(&["INCRBY", "a", "2"]), "+QUEUED\r\n");
        assert_eq!(call(&["MULTI"]), "-ERR MULTI calls can not be nested\r\n");
        assert_eq!(call(&["GET", "a"]), "+QUEUED\r\n");
        assert_eq!(call(&["EXEC"]), "*3\r\n+OK\r\n:3\r\n$1\r\n3\r\n");
        // Refused while queuing: EXEC refuses the whole transaction.
        call(&["MULTI"]);
        call(&["SET", "a", "10"]);
        assert!(call(&["NOPE"]).starts_with("-ERR unknown command"));
        assert!(call(&["HELLO", "3"]).starts_with("-ERR Command not allowed"));
        assert_eq!(
            call(&["EXEC"]),
            "-EXECABORT Transaction discarded because of previous errors.\r\n"
        );
        assert_eq!(call(&["GET", "a"]), "$1\r\n3\r\n");
        call(&["MULTI"]);
        call(&["SET", "a", "10"]);
        assert_eq!(call(&["DISCARD"]), "+OK\r\n");
        assert_eq!(call(&["GET", "a"]), "$1\r\n3\r\n");
    }

    #[test]
    fn datagrams_refuse_what_needs_a_connection() {
        let mut state = State::new(0);
        for words in [&["MULTI"][..], &["HELLO", "3"], &["CLIENT", "ID"]] {
            let reply = run_words(&mut state, &mut Session::datagram(), words);
            assert!(reply.contains("needs a connection"), "{reply}");
        }
        let reply = run_words(&mut state, &mut Session::datagram(), &["PING"]);
        assert_eq!(reply, "+PONG\r\n");
    }

    #[test]
    fn info_has_the_fields_redis_cli_stat_reads() {
        let mut call = connection();
        call(&["SET", "a", "1"]);
        call(&["SET", "b", "1", "EX", "100"]);
        let info = call(&["INFO"]);
        for field in [
            "redis_version:",
            "connected_clients:",
            "blocked_clients:0",
            "used_memory:",
            "total_commands_processed:3",
            "total_connections_received:",
            "loading:0",
            "db0:keys=2,expires=1,avg_ttl=0",
        ] {
            assert!(info.contains(field), "{field} missing from {info}");
        }
        let keyspace = call(&["INFO", "keyspace"]);
        assert!(keyspace.contains("# Keyspace") && !keyspace.contains("# Server"));
    }
}
