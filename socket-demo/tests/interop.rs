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
    // Our own client prints what redis-cli prints: raw in a pipe, as on a terminal with
    // --no-raw.
    let sock = server.sock.to_str().unwrap();
    let out = run(&sb, &["client", "--unix", sock, "GET", "a"], b"");
    assert_eq!(testkit::stdout(&out), "11\n");
    let out = run(
        &sb,
        &["client", "--unix", sock, "--no-raw", "GET", "a"],
        b"",
    );
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
                  s.sendall(b\"SET lang python\\r\\n*2\\r\\n$3\\r\\nGET\\r\\n$4\\r\\n\
                  lang\\r\\n\"); print(s.recv(100))";
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
    let input = b"SET greeting \"hello world\"\nGET greeting\n# a comment\n\nINCR n\n\
                  GET nope\nFOO\nDEL greeting n\n";
    let out = run(&sb, &["client", "--unix", sock], input);
    assert_eq!(
        testkit::stdout(&out),
        "OK\nhello world\n1\n\nERR unknown command 'FOO'\n2\n"
    );
    // One error reply among them: exit 1, as redis-cli does.
    assert_eq!(out.status.code(), Some(1));
    let out = run(&sb, &["client", "--unix", sock, "--no-raw"], input);
    assert_eq!(
        testkit::stdout(&out),
        "OK\n\"hello world\"\n(integer) 1\n(nil)\n(error) ERR unknown command 'FOO'\n(integer) 2\n"
    );
    let out = run(&sb, &["client", "--unix", sock], b"SET k 'unbalanced\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("stdin line 1: "),
        "{}",
        testkit::stderr(&out)
    );
}

/// What redis-py 8 does with its defaults: `HELLO 3` first (and it checks the reply says
/// proto 3), INCRBY/DECRBY for incr()/decr(), MULTI/EXEC for pipeline(), SCAN for
/// scan_iter(), INFO parsed into a dict; plus expiry that really happens.
const REDIS_PY_SCRIPT: &str = r#"
import redis, sys, time
r = redis.Redis(unix_socket_path=sys.argv[1])
assert r.ping()
assert r.set("k", "v") is True
assert r.get("k") == b"v"
assert r.get("nope") is None
assert r.incr("n") == 1 and r.incr("n", 5) == 6 and r.decr("n") == 5 and r.decr("n", 2) == 3
assert r.mset({"a": "1", "b": "2"}) is True
assert r.mget("a", "nope", "b") == [b"1", None, b"2"]
assert r.append("k", "w") == 2 and r.strlen("k") == 2
assert r.setnx("k", "x") is False
assert r.getset("k", "z") == b"vw"
assert r.set("t", "1", ex=100) is True and 99 <= r.ttl("t") <= 100
assert r.persist("t") is True and r.ttl("t") == -1
assert r.set("t", "2", nx=True) is None
assert r.set("t", "3", xx=True, get=True) == b"1"
assert r.expire("k", 100) is True and r.pttl("k") > 99000
assert r.type("k") == b"string"
assert sorted(r.keys("*")) == [b"a", b"b", b"k", b"n", b"t"], r.keys("*")
assert sorted(r.scan_iter(match="*", count=2)) == sorted(r.keys("*"))
p = r.pipeline(); p.set("p", 1); p.incr("p"); p.get("p")
assert p.execute() == [True, 2, b"2"]
info = r.info()
assert info["db0"]["keys"] == 6 and info["db0"]["expires"] == 1, info
assert r.client_setname("me") is True and r.client_getname() == "me"
assert r.execute_command("SELECT", 0)
try:
    r.execute_command("SELECT", 1); raise SystemExit("SELECT 1 accepted")
except redis.ResponseError as e:
    assert "out of range" in str(e)
assert r.set("gone", "1", px=300) is True and r.pttl("gone") > 0
end = time.monotonic() + 30
while r.exists("gone") and time.monotonic() < end: time.sleep(0.05)
assert not r.exists("gone")
assert r.flushdb() is True and r.dbsize() == 0
r2 = redis.Redis(unix_socket_path=sys.argv[1], protocol=2)
assert r2.get("nope") is None and r2.ping()
print("ok")
"#;

#[test]
fn redis_py_with_its_defaults() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(REDIS_PY_SCRIPT).arg(&server.sock);
    let out = testkit::run(&mut cmd, b"");
    assert!(
        !testkit::stderr(&out).contains("No module named 'redis'"),
        "redis-py is not installed: pip install redis"
    );
    assert_eq!(testkit::stdout(&out), "ok\n", "{}", testkit::stderr(&out));
    // The README's recipe, verbatim.
    let recipe = "import redis,sys; r=redis.Redis(unix_socket_path=sys.argv[1]);\n\
                  p=r.pipeline(); p.set(\"a\",1); p.incr(\"a\"); print(p.execute())";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(recipe).arg(&server.sock);
    let out = testkit::run(&mut cmd, b"");
    assert_eq!(
        testkit::stdout(&out),
        "[True, 2]\n",
        "{}",
        testkit::stderr(&out)
    );
}

#[test]
fn redis_cli_stat_scan_and_bigkeys() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    cli(
        &server,
        &["MSET", "user:1", "ann", "user:2", "robert", "other", "x"],
    );
    let mut scanned: Vec<String> = cli(&server, &["--scan", "--pattern", "user:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    scanned.sort();
    assert_eq!(scanned, ["user:1", "user:2"]);
    let big = cli(&server, &["--bigkeys"]);
    assert!(
        big.contains("Biggest string found '\"user:2\"' has 6 bytes"),
        "{big}"
    );
    assert!(big.contains("3 strings with 10 bytes"), "{big}");
    // --stat runs until stopped: read its first figures, then let the drop stop it. Every
    // 10 ms, so that its buffered output (not a terminal) fills a block soon.
    let mut cmd = redis_cli();
    cmd.arg("-s")
        .arg(&server.sock)
        .args(["--stat", "-i", "0.01"]);
    let stat = testkit::spawn(&mut cmd);
    let mut lines = stat.stdout_lines().unwrap();
    let figures = lines
        .wait_for(|l| l.starts_with(|c: char| c.is_ascii_digit()), WAIT)
        .unwrap();
    let fields: Vec<&str> = figures.split_whitespace().collect();
    // keys, memory, clients (redis-cli itself), blocked, requests.
    assert_eq!(fields[0], "3", "{figures}");
    assert!(
        fields[1].ends_with('M') || fields[1].ends_with('K'),
        "{figures}"
    );
    assert_eq!(&fields[2..4], ["1", "0"], "{figures}");
}

#[test]
fn unsupported_commands_are_still_unknown() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let mut s = server.connect();
    for cmd in [
        &["LPUSH", "l", "x"][..],
        &["WATCH", "k"],
        &["HSET", "h", "f", "v"],
    ] {
        let reply = call(&mut s, cmd);
        assert_eq!(reply, format!("-ERR unknown command '{}'\r\n", cmd[0]));
    }
}

#[test]
fn client_in_scripts_raw_output_and_options() {
    let sb = Sandbox::new();
    let server = Server::start(&sb, &[]);
    let sock = server.sock.to_str().unwrap();
    let client = |args: &[&str]| {
        let mut full = vec!["client", "--unix", sock];
        full.extend_from_slice(args);
        run(&sb, &full, b"")
    };
    // Values starting with '-' are values once the command has begun.
    assert_eq!(testkit::stdout(&client(&["SET", "n", "-1"])), "OK\n");
    assert_eq!(
        testkit::stdout(&client(&["INCRBY", "n", "-999"])),
        "-1000\n"
    );
    // Options before the command, in any order; the last of --raw/--no-raw wins.
    assert_eq!(testkit::stdout(&client(&["--raw", "GET", "n"])), "-1000\n");
    assert_eq!(
        testkit::stdout(&client(&["--no-raw", "GET", "n"])),
        "\"-1000\"\n"
    );
    assert_eq!(
        testkit::stdout(&client(&["--raw", "--no-raw", "INCR", "n"])),
        "(integer) -999\n"
    );
    // After the command, an option-like word is the command's.
    assert_eq!(testkit::stdout(&client(&["SET", "--raw", "x"])), "OK\n");
    assert_eq!(testkit::stdout(&client(&["GET", "--raw"])), "x\n");
    // Arrays: one value per line raw, numbered formatted.
    assert_eq!(
        testkit::stdout(&client(&["MGET", "n", "nope", "--raw"])),
        "-999\n\nx\n"
    );
    assert_eq!(
        testkit::stdout(&client(&["--no-raw", "MGET", "n", "nope"])),
        "1) \"-999\"\n2) (nil)\n"
    );
    // An unknown option is a usage error, before anything is sent.
    let out = client(&["--bogus", "GET", "n"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        testkit::stderr(&out).contains("unexpected argument '--bogus'"),
        "{}",
        testkit::stderr(&out)
    );
    let out = run(&sb, &["dgram-client", "--bogus", "PING"], b"");
    assert_eq!(out.status.code(), Some(2));
    // --help lists every supported command.
    let help = testkit::stdout(&run(&sb, &["client", "--help"], b""));
    for line in [
        "  SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]\n",
        "  SCAN cursor [MATCH pattern] [COUNT count] [TYPE string]\n",
        "  MULTI\n",
        "  HELLO [2 | 3 [AUTH default password] [SETNAME name]]\n",
        "Anything else gets: (error) ERR unknown command\n",
    ] {
        assert!(help.contains(line), "{line:?} not in {help}");
    }
}
