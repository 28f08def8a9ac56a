//! The commands as a client sees them: requests in, replies out, on a fresh store.

use std::time::Duration;

use super::connection::BAD_NAME;
use super::table::COMMANDS;
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
