//! Clients nobody here wrote: redis-cli (Debian's redis-tools) and Python's stdlib socket.
//! These also run the shell recipes of the README, so the recipes stay true.

mod support;

use std::process::Command;

use common::testkit::{self, Sandbox};
use support::*;

/// redis-cli must be installed (`apt-get install redis-tools`); a missing tool fails the test
/// with that message rather than letting it pass without checking anything.
fn redis_cli() -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("redis-cli").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "redis-cli is not installed: install Debian's redis-tools (apt-get install -y redis-tools)"
    );
    Command::new("redis-cli")
}

fn cli(server: &Server, args: &[&str]) -> String {
    let mut cmd = redis_cli();
    cmd.arg("-s").arg(&server.sock).args(args);
    let out = testkit::run(&mut cmd, b"");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        testkit::stderr(&out)
    );
    testkit::stdout(&out)
}

#[test]
fn redis_cli_set_get_incr_del() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    // Not a terminal, so redis-cli prints raw values (no quotes, no "(integer)").
    assert_eq!(cli(&server, &["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&server, &["GET", "greeting"]), "hello world\n");
    assert_eq!(cli(&server, &["INCR", "visits"]), "1\n");
    assert_eq!(cli(&server, &["INCR", "visits"]), "2\n");
    assert_eq!(cli(&server, &["EXISTS", "greeting", "visits"]), "2\n");
    assert_eq!(cli(&server, &["DEL", "greeting"]), "1\n");
    assert_eq!(cli(&server, &["GET", "greeting"]), "\n");
    assert_eq!(cli(&server, &["PING"]), "PONG\n");
    assert!(cli(&server, &["NOPE"]).contains("ERR unknown command 'NOPE'"));
    // Recipe: a script of commands piped into redis-cli.
    let mut cmd = redis_cli();
    cmd.arg("-s").arg(&server.sock);
    let out = testkit::run(&mut cmd, b"SET a 10\nINCR a\nGET a\nDBSIZE\n");
    assert_eq!(testkit::stdout(&out), "OK\n11\n11\n2\n");
    // Our own client prints what redis-cli prints on a terminal.
    let sock = server.sock.to_str().unwrap();
    let out = run(&sb, &["client", "--unix", sock, "GET", "a"], b"");
    assert_eq!(testkit::stdout(&out), "\"11\"\n");
}

#[test]
fn python_stdlib_socket_client() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    // Recipe: a Python client with nothing but the standard library: one inline command,
    // then a pipelined batch of RESP arrays, read back in one go.
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
s.sendall(b"SET lang python\r\n")
assert s.recv(100) == b"+OK\r\n"
s.sendall(resp("GET", "lang") + resp("INCR", "py") + resp("ECHO", "a\r\nb") + resp("QUIT"))
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(repr(data))
"#;
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(&server.sock);
    let out = testkit::run(&mut cmd, b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    assert_eq!(
        testkit::stdout(&out).trim(),
        r"b'$6\r\npython\r\n:1\r\n$4\r\na\r\nb\r\n+OK\r\n'"
    );
    // The README's one-liner, verbatim.
    let recipe = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);\n\
                  s.sendall(b\"SET lang python\\r\\n*2\\r\\n$3\\r\\nGET\\r\\n$4\\r\\nlang\\r\\n\"); print(s.recv(100))";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(recipe).arg(&server.sock);
    let out = testkit::run(&mut cmd, b"");
    assert_eq!(
        testkit::stdout(&out),
        "b'+OK\\r\\n$6\\r\\npython\\r\\n'\n",
        "{}",
        testkit::stderr(&out)
    );
}

#[test]
fn client_script_on_stdin() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let sock = server.sock.to_str().unwrap();
    // Recipe: `printf '...' | socket-demo client`, quoting as in a shell.
    let input = b"SET greeting \"hello world\"\nGET greeting\n# a comment\n\nINCR n\nGET nope\nFOO\nDEL greeting n\n";
    let out = run(&sb, &["client", "--unix", sock], input);
    assert_eq!(
        testkit::stdout(&out),
        "OK\n\"hello world\"\n(integer) 1\n(nil)\n(error) ERR unknown command 'FOO'\n(integer) 2\n"
    );
    // One error reply among them: exit 1, as redis-cli does.
    assert_eq!(out.status.code(), Some(1));
    let out = run(&sb, &["client", "--unix", sock], b"SET k 'unbalanced\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("stdin line 1: "),
        "{}",
        testkit::stderr(&out)
    );
}
