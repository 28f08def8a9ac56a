//! The connection: PING, ECHO, QUIT, HELLO (the protocol version), CLIENT (the name),
//! SELECT.

use crate::kv::protocol::{self, Resp};

use super::{After, Call, is, quoted};

pub(super) fn ping(c: &mut Call<'_>, a: &[&[u8]]) {
    match a {
        [] => protocol::simple(c.out, "PONG"),
        [msg] => protocol::bulk(c.out, msg),
        _ => c.error("ERR wrong number of arguments for 'ping' command"),
    }
}

pub(super) fn echo(c: &mut Call<'_>, a: &[&[u8]]) {
    protocol::bulk(c.out, a[0]);
}

pub(super) fn quit(c: &mut Call<'_>, _: &[&[u8]]) {
    c.ok();
    c.after = After::Close;
}

/// A client name must be one word of printable ASCII: it shows in logs and lists.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

pub(super) const BAD_NAME: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";

/// HELLO [protover [AUTH username password] [SETNAME name]]
pub(super) fn hello(c: &mut Call<'_>, a: &[&[u8]]) {
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
pub(super) fn client(c: &mut Call<'_>, a: &[&[u8]]) {
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

pub(super) fn select(c: &mut Call<'_>, a: &[&[u8]]) {
    match protocol::parse_decimal(a[0]) {
        Some(0) => c.ok(),
        Some(_) => c.error("ERR DB index is out of range: this server has one database, 0"),
        None => c.not_an_integer(),
    }
}
