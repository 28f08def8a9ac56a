//! The key-value store and its commands, shared by the stream and the datagram servers.
//!
//! Nothing here touches a socket: [`Store::execute`] takes a parsed request and appends the
//! RESP reply to an output buffer, so the server's event loop decides when the bytes go out.
//!
//! Besides the commands a user types (PING, ECHO, SET, GET, DEL, EXISTS, INCR, DBSIZE, QUIT),
//! the store answers what real clients send on their own: `redis-benchmark` asks
//! `CONFIG GET save` and `CONFIG GET appendonly` on start (we answer truthfully: no
//! persistence), and an interactive `redis-cli` asks `COMMAND DOCS` for its hints (we answer an
//! empty array, which it takes as "no docs").

use std::collections::HashMap;

use crate::protocol;

/// What the connection should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Carry on reading requests.
    Continue,
    /// Send what is buffered, then close (QUIT).
    Close,
}

/// The data: byte-string keys to byte-string values.
#[derive(Default)]
pub struct Store {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

/// The commands `execute` answers, for `COMMAND COUNT`.
const COMMANDS: [&str; 11] = [
    "GET", "SET", "PING", "INCR", "ECHO", "DEL", "EXISTS", "DBSIZE", "QUIT", "CONFIG", "COMMAND",
];

fn wrong_arity(out: &mut Vec<u8>, name: &str) {
    protocol::error(
        out,
        &format!("ERR wrong number of arguments for '{name}' command"),
    );
}

/// At most 128 bytes of a peer's command name, made printable, for an error message.
fn quoted_name(name: &[u8]) -> String {
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

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run one request (non-empty `args`) and append its reply to `out`.
    pub fn execute(&mut self, args: &[&[u8]], out: &mut Vec<u8>) -> After {
        let Some((&name, rest)) = args.split_first() else {
            return After::Continue;
        };
        let is = |cmd: &str| name.eq_ignore_ascii_case(cmd.as_bytes());
        let n = rest.len();
        if is("GET") {
            if n != 1 {
                wrong_arity(out, "get");
            } else {
                match self.map.get(rest[0]) {
                    Some(v) => protocol::bulk(out, v),
                    None => protocol::nil(out),
                }
            }
        } else if is("SET") {
            if n < 2 {
                wrong_arity(out, "set");
            } else if n > 2 {
                // Real SET takes options (EX, NX, ...); this subset does not.
                protocol::error(out, "ERR syntax error");
            } else {
                // Reuse the key's allocation when it exists: the common case for a benchmark.
                match self.map.get_mut(rest[0]) {
                    Some(v) => {
                        v.clear();
                        v.extend_from_slice(rest[1]);
                    }
                    None => {
                        self.map.insert(rest[0].to_vec(), rest[1].to_vec());
                    }
                }
                protocol::simple(out, "OK");
            }
        } else if is("PING") {
            match rest {
                [] => protocol::simple(out, "PONG"),
                [msg] => protocol::bulk(out, msg),
                _ => wrong_arity(out, "ping"),
            }
        } else if is("INCR") {
            if n != 1 {
                wrong_arity(out, "incr");
            } else {
                self.incr(rest[0], out);
            }
        } else if is("ECHO") {
            match rest {
                [msg] => protocol::bulk(out, msg),
                _ => wrong_arity(out, "echo"),
            }
        } else if is("DEL") || is("EXISTS") {
            if n == 0 {
                wrong_arity(out, if is("DEL") { "del" } else { "exists" });
            } else {
                let del = is("DEL");
                let mut count = 0;
                for key in rest {
                    let hit = if del {
                        self.map.remove(*key).is_some()
                    } else {
                        self.map.contains_key(*key)
                    };
                    count += i64::from(hit);
                }
                protocol::integer(out, count);
            }
        } else if is("DBSIZE") {
            if n != 0 {
                wrong_arity(out, "dbsize");
            } else {
                protocol::integer(out, self.map.len() as i64);
            }
        } else if is("QUIT") {
            protocol::simple(out, "OK");
            return After::Close;
        } else if is("CONFIG") {
            config(rest, out);
        } else if is("COMMAND") {
            if rest
                .first()
                .is_some_and(|sub| sub.eq_ignore_ascii_case(b"COUNT"))
            {
                protocol::integer(out, COMMANDS.len() as i64);
            } else {
                // `COMMAND DOCS` from an interactive redis-cli: no docs to offer, which it
                // accepts.
                protocol::array_len(out, 0);
            }
        } else {
            protocol::error(out, &format!("ERR unknown command '{}'", quoted_name(name)));
        }
        After::Continue
    }

    fn incr(&mut self, key: &[u8], out: &mut Vec<u8>) {
        let current = match self.map.get(key) {
            None => 0,
            // Strict like Redis (no "+1", " 1", "01" or "-0"), so that the value INCR stores
            // always reads back as the same string.
            Some(v) => match protocol::parse_decimal(v) {
                Some(n) => n,
                None => {
                    protocol::error(out, "ERR value is not an integer or out of range");
                    return;
                }
            },
        };
        let Some(next) = current.checked_add(1) else {
            protocol::error(out, "ERR increment or decrement would overflow");
            return;
        };
        self.map.insert(key.to_vec(), next.to_string().into_bytes());
        protocol::integer(out, next);
    }
}

/// `CONFIG GET <name>`: only the two parameters redis-benchmark asks about.
fn config(rest: &[&[u8]], out: &mut Vec<u8>) {
    match rest {
        [sub, param] if sub.eq_ignore_ascii_case(b"GET") => {
            let value: Option<&[u8]> = if param.eq_ignore_ascii_case(b"save") {
                Some(b"")
            } else if param.eq_ignore_ascii_case(b"appendonly") {
                Some(b"no")
            } else {
                None
            };
            match value {
                Some(v) => {
                    protocol::array_len(out, 2);
                    protocol::bulk(out, param);
                    protocol::bulk(out, v);
                }
                None => protocol::array_len(out, 0),
            }
        }
        _ => protocol::error(out, "ERR only CONFIG GET save|appendonly is supported"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(store: &mut Store, words: &[&str]) -> String {
        let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let mut out = Vec::new();
        store.execute(&args, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn commands() {
        let mut s = Store::new();
        assert_eq!(run(&mut s, &["ping"]), "+PONG\r\n");
        assert_eq!(run(&mut s, &["PING", "hi"]), "$2\r\nhi\r\n");
        assert_eq!(run(&mut s, &["SET", "k", "v"]), "+OK\r\n");
        assert_eq!(run(&mut s, &["get", "k"]), "$1\r\nv\r\n");
        assert_eq!(run(&mut s, &["GET", "nope"]), "$-1\r\n");
        assert_eq!(run(&mut s, &["EXISTS", "k", "nope", "k"]), ":2\r\n");
        assert_eq!(run(&mut s, &["INCR", "n"]), ":1\r\n");
        assert_eq!(run(&mut s, &["INCR", "n"]), ":2\r\n");
        assert_eq!(run(&mut s, &["DBSIZE"]), ":2\r\n");
        assert_eq!(run(&mut s, &["DEL", "k", "n", "x"]), ":2\r\n");
        assert_eq!(run(&mut s, &["ECHO", "a b"]), "$3\r\na b\r\n");
        assert_eq!(
            run(&mut s, &["CONFIG", "GET", "save"]),
            "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
        );
        assert_eq!(run(&mut s, &["COMMAND", "DOCS"]), "*0\r\n");
        assert_eq!(run(&mut s, &["command", "count"]), ":11\r\n");
    }

    #[test]
    fn errors() {
        let mut s = Store::new();
        assert_eq!(run(&mut s, &["FOO"]), "-ERR unknown command 'FOO'\r\n");
        assert_eq!(
            run(&mut s, &["GET"]),
            "-ERR wrong number of arguments for 'get' command\r\n"
        );
        run(&mut s, &["SET", "t", "abc"]);
        let not_int = "-ERR value is not an integer or out of range\r\n";
        assert_eq!(run(&mut s, &["INCR", "t"]), not_int);
        run(&mut s, &["SET", "t", "007"]);
        assert_eq!(run(&mut s, &["INCR", "t"]), not_int);
        run(&mut s, &["SET", "t", "9223372036854775807"]);
        assert_eq!(
            run(&mut s, &["INCR", "t"]),
            "-ERR increment or decrement would overflow\r\n"
        );
        run(&mut s, &["SET", "t", "-5"]);
        assert_eq!(run(&mut s, &["INCR", "t"]), ":-4\r\n");
        assert_eq!(
            run(&mut s, &["BAD\r\nNAME"]),
            "-ERR unknown command 'BAD??NAME'\r\n"
        );
    }
}
