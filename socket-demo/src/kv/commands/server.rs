//! The server: INFO, CONFIG GET, COMMAND, DBSIZE, FLUSHALL, FLUSHDB.

use std::fmt::Write as _;

use crate::kv::protocol;

use super::table::COMMANDS;
use super::{Call, is};

/// COMMAND COUNT, and COMMAND DOCS from an interactive redis-cli: no docs to offer, which it
/// accepts.
pub(super) fn command(c: &mut Call<'_>, a: &[&[u8]]) {
    match a.first() {
        Some(sub) if is(sub, "COUNT") => c.integer(COMMANDS.len() as i64),
        Some(sub) if is(sub, "DOCS") => protocol::map_len(c.out, 0, c.session.resp),
        _ => protocol::array_len(c.out, 0),
    }
}

/// CONFIG GET: the few parameters clients ask about, answered truthfully.
pub(super) fn config(c: &mut Call<'_>, a: &[&[u8]]) {
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
pub(super) fn info(c: &mut Call<'_>, a: &[&[u8]]) {
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

pub(super) fn dbsize(c: &mut Call<'_>, _: &[&[u8]]) {
    let n = c.store().len();
    c.integer(n as i64);
}

pub(super) fn flush(c: &mut Call<'_>, a: &[&[u8]]) {
    match a {
        [] => {}
        [mode] if is(mode, "ASYNC") || is(mode, "SYNC") => {}
        _ => return c.syntax_error(),
    }
    c.store().clear();
    c.ok();
}
