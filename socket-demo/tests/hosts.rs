//! socket-demo across hosts: the server on one network namespace, its clients on others,
//! joined by a switch (`common::testkit::netns`), with the faults of a real network: lost
//! packets, a slow link, a cable unplugged for 5 s, a client machine that vanishes.
//!
//! Each test makes its own hosts (unique names, removed on every way out) and says SKIPPED
//! where the machine cannot make them (not root, no `ip`/`nft`/`tc`).

mod support;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::child::{Lines, Supervised};
use common::testkit::netns::{Host, Network};
use common::testkit::{self, Sandbox};
use support::*;

const PORT: u16 = 6380;

/// A server on the `server` host, listening on every address of that host.
struct Remote {
    child: Supervised,
    log: Lines,
    errors: Lines,
    /// Where clients on the other hosts connect: `10.23.0.1:6380`.
    addr: String,
}

impl Remote {
    /// `socket-demo server --tcp 0.0.0.0:PORT EXTRA...` on the host `server`, ready.
    fn start(net: &Network, sb: &Sandbox, port: u16, extra: &[&str]) -> Remote {
        let host = net.host("server");
        let mut cmd = sb.command_on(host, BIN);
        cmd.args(["server", "--tcp", &format!("0.0.0.0:{port}")])
            .args(extra);
        // `ip netns exec` execs the program: the child's pid is the server's.
        let server = testkit::Daemon::start(&mut cmd);
        assert_eq!(server.serves("tcp"), format!("0.0.0.0:{port}"));
        let testkit::Daemon {
            child,
            stdout: log,
            stderr: errors,
            ..
        } = server;
        Remote {
            child,
            log,
            errors,
            addr: format!("{}:{port}", host.addr),
        }
    }

    /// The server's open descriptors.
    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.pid()))
            .unwrap()
            .count()
    }

    /// Wait until the server has `n` descriptors open. A client's exit reaches the server a
    /// moment later, and no event tells the test when the server has closed its end.
    fn expect_descriptors(&self, n: usize) {
        let end = Instant::now() + WAIT;
        while self.descriptors() != n {
            assert!(
                Instant::now() < end,
                "{} descriptors open, not {n}",
                self.descriptors()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait for `n` log lines that satisfy `want`, counting from where the log was read to.
    fn wait_lines(&mut self, n: usize, want: impl Fn(&str) -> bool) {
        for i in 0..n {
            self.log
                .wait_for(&want, WAIT)
                .unwrap_or_else(|e| panic!("{i} of {n} lines: {e}"));
        }
    }
}

/// `socket-demo client --tcp ADDR ARGS` on `host`, to completion, with `input` on stdin.
fn client(sb: &Sandbox, host: &Host, addr: &str, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = sb.command_on(host, BIN);
    cmd.args(["client", "--tcp", addr]).args(args);
    testkit::run(&mut cmd, input)
}

/// A Python script on `host`, started (it runs until it exits or its host vanishes).
fn python(host: &Host, script: &str, args: &[&str]) -> Supervised {
    let mut cmd = host.command("python3");
    cmd.arg("-c").arg(script).args(args);
    testkit::spawn(&mut cmd)
}

/// The demo's own correctness run (`socket-demo worker`: pipelined SET/GET/INCR, every reply
/// checked, a shared counter) from two hosts, one of whose links loses 5% of its packets and
/// the other 30%. Every reply is right and the shared counter exact.
#[test]
fn the_demo_run_holds_across_links_that_lose_5_and_30_percent() {
    let Some(net) = Network::new(&["server", "a", "b"]) else {
        return;
    };
    let sb = Sandbox::new();
    let server = Remote::start(&net, &sb, PORT, &[]);
    net.loss("a", 5);
    net.loss("b", 30);
    // At 30% a round trip is often retransmitted, after 200 ms or more: fewer rounds there.
    let plan = [("a", 0, 250), ("a", 1, 250), ("b", 2, 25)];
    let workers: Vec<Supervised> = plan
        .iter()
        .map(|&(host, id, rounds)| {
            let mut cmd = sb.command_on(net.host(host), BIN);
            // `worker` is a test hook (see src/cli.rs).
            cmd.env(TEST_HOOKS, "1")
                .args(["worker", "--tcp", &server.addr, "--counter", "shared"])
                .args(["--id", &id.to_string(), "--rounds", &rounds.to_string()]);
            testkit::spawn_with_deadline(&mut cmd, Duration::from_secs(240))
        })
        .collect();
    for (w, (_, id, rounds)) in workers.iter().zip(plan) {
        let line = w
            .stdout_lines()
            .unwrap()
            .wait_for(|_| true, Duration::from_secs(240))
            .unwrap_or_else(|e| panic!("worker {id}: {e}"));
        assert_eq!(line, format!("worker {id}: {} replies right", 4 * rounds));
        assert!(w.wait_timeout(WAIT).unwrap().success());
    }
    for host in ["a", "b"] {
        let out = client(&sb, net.host(host), &server.addr, &["GET", "shared"], b"");
        assert_eq!(testkit::stdout(&out), "525\n", "{}", testkit::stderr(&out));
    }
}

/// What redis-py does across the network, with its defaults (HELLO 3, MULTI/EXEC pipelines).
const REDIS_PY: &str = r#"
import redis, sys
r = redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_timeout=60)
me = sys.argv[3]
assert r.ping()
assert r.set("py:" + me, me) is True and r.get("py:" + me) == me.encode()
p = r.pipeline(); p.incr("py:count"); p.incr("py:count"); p.execute()
assert r.info()["connected_clients"] >= 1
print("ok")
"#;

/// `socket-demo client`, redis-cli, redis-benchmark and redis-py, on both client hosts.
#[test]
fn redis_clients_on_two_hosts() {
    let Some(net) = Network::new(&["server", "a", "b"]) else {
        return;
    };
    let sb = Sandbox::new();
    let mut server = Remote::start(&net, &sb, PORT, &[]);
    let addr = server.addr.clone();
    let (ip, port) = addr.split_once(':').unwrap();
    for name in ["a", "b"] {
        let host = net.host(name);
        let out = client(&sb, host, &server.addr, &["SET", name, "from afar"], b"");
        assert_eq!(testkit::stdout(&out), "OK\n", "{}", testkit::stderr(&out));
        assert_eq!(
            host.run("redis-cli", &["-h", ip, "-p", port, "GET", name]),
            "from afar\n"
        );
        assert_eq!(
            host.run("python3", &["-c", REDIS_PY, ip, port, name]),
            "ok\n"
        );
        // redis-benchmark's INCR test increments one key, `counter:__rand_int__`: 2000
        // requests from each host make it 4000, whatever the interleaving.
        let bench = host.run(
            "redis-benchmark",
            &[
                "-h",
                ip,
                "-p",
                port,
                "-t",
                "ping,set,get,incr",
                "-n",
                "2000",
                "-c",
                "10",
                "-q",
            ],
        );
        // Its progress lines end in \r; each result line ends in \n.
        let results: Vec<&str> = bench
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| l.contains(" requests per second"))
            .collect();
        for test in ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"] {
            assert!(
                results.iter().any(|l| l.starts_with(&format!("{test}: "))),
                "no {test} in {results:?}"
            );
        }
    }
    let out = client(
        &sb,
        net.host("b"),
        &server.addr,
        &[],
        b"GET a\nGET py:count\nGET counter:__rand_int__\n",
    );
    assert_eq!(testkit::stdout(&out), "from afar\n4\n4000\n");
    // The server saw them come from their own addresses (a's clients all came first).
    for addr in ["10.23.0.2:", "10.23.0.3:"] {
        let want = format!("client connected: {addr}");
        server
            .log
            .wait_for(|l| l.starts_with(&want), WAIT)
            .unwrap_or_else(|e| panic!("no client from {addr}: {e}"));
    }
}

/// Sends the requests on argv[3] byte by byte, each byte a segment of its own (TCP_NODELAY,
/// and the next byte only once the kernel has sent the last: SIOCOUTQNSD, the unsent bytes,
/// is 0), then reads the replies a few bytes at a time; prints them as hex.
const ONE_BYTE_AT_A_TIME: &str = r#"
import fcntl, socket, struct, sys, time
SIOCOUTQNSD = 0x894B
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
requests, want = bytes.fromhex(sys.argv[3]), int(sys.argv[4])
for b in requests:
    s.send(bytes([b]))
    while struct.unpack("i", fcntl.ioctl(s, SIOCOUTQNSD, b"\0" * 4))[0]:
        time.sleep(0.0005)
got = b""
while len(got) < want:
    chunk = s.recv(7)
    if not chunk:
        break
    got += chunk
print(got.hex())
"#;

/// Partial reads at every byte: requests that reach the server one byte per segment, and
/// replies that reach the client in small pieces through a rate-limited link, give the same
/// replies as the same requests sent whole.
#[test]
fn partial_reads_at_every_byte_through_a_rate_limited_link() {
    let Some(net) = Network::new(&["server", "a"]) else {
        return;
    };
    let sb = Sandbox::new();
    let mut server = Remote::start(&net, &sb, PORT, &["-v"]);
    let (ip, port) = server.addr.split_once(':').unwrap();
    let value = "0123456789abcdef".repeat(512); // 8 KiB: a reply of several segments
    let requests = |k: &str| -> Vec<u8> {
        let mut all = Vec::new();
        for req in [
            &["SET", k, &value][..],
            &["GET", k],
            &["INCR", &format!("{k}:n")],
            &["INCR", &format!("{k}:n")],
            &["APPEND", k, "\r\n"],
            &["STRLEN", k],
            &["MGET", k, "nope"],
            &["ECHO", "a\r\nb"],
            &["PING"],
        ] {
            all.extend_from_slice(&resp(req));
        }
        // And an inline command, which ends at a newline rather than at a length.
        all.extend_from_slice(b"EXISTS nope\r\n");
        all
    };
    // The reference: the same requests (other keys) in one write, over an unlimited link.
    let whole = requests("whole");
    let whole_hex = net.host("a").run(
        "python3",
        &[
            "-c",
            "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2]))); \
             s.sendall(bytes.fromhex(sys.argv[3])); s.shutdown(socket.SHUT_WR); b=b''\n\
             while (c := s.recv(65536)): b += c\n\
             print(b.hex())",
            ip,
            port,
            &hex(&whole),
        ],
    );
    let expected = unhex(whole_hex.trim_end());
    assert!(expected.len() > 2 * value.len(), "{}", expected.len());
    net.rate("a", "200kbit");
    let bytes = requests("split");
    let split = net.host("a").run(
        "python3",
        &[
            "-c",
            ONE_BYTE_AT_A_TIME,
            ip,
            port,
            &hex(&bytes),
            &expected.len().to_string(),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&unhex(split.trim_end())),
        String::from_utf8_lossy(&expected)
    );
    // The server did read those requests in pieces: most of its reads on that connection
    // took one byte (its -v trace: `read(fd N) -> 1 bytes "."`).
    // Every trace line is written before the reply it leads to is sent: they are all in the
    // pipe already, and half a second without one means the last has been read.
    let mut one_byte_reads = 0;
    while let Ok(Some(line)) = server.errors.next_line(Duration::from_millis(500)) {
        one_byte_reads += usize::from(line.contains(") -> 1 bytes \""));
    }
    assert!(
        one_byte_reads * 2 > bytes.len(),
        "{one_byte_reads} one-byte reads for {} bytes",
        bytes.len()
    );
    // Our own client reads a big reply in pieces as well.
    let out = client(&sb, net.host("a"), &server.addr, &["GET", "split"], b"");
    assert_eq!(testkit::stdout(&out), format!("{value}\r\n\n"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Opens argv[3] connections, checks each with a PING, says so, and holds them open.
const HOLD_CONNECTIONS: &str = r#"
import socket, sys, time
conns = []
for _ in range(int(sys.argv[3])):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    s.sendall(b"PING\r\n")
    assert s.recv(100) == b"+PONG\r\n"
    conns.append(s)
print("holding", len(conns), flush=True)
time.sleep(3600)
"#;

/// Like HOLD_CONNECTIONS with one connection, which then asks for a reply far larger than
/// its receive buffer and never reads it: the server is left with data the client will never
/// acknowledge once it has vanished.
const STOP_READING: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET big\r\n")
time.sleep(0.5)
print("stopped reading", flush=True)
time.sleep(3600)
"#;

/// A client host that vanishes (no FIN, no RST): with `--keepalive 1` the server notices
/// within seconds and frees both its connections, the idle one (keepalive probes go
/// unanswered) and the one with replies in flight (TCP_USER_TIMEOUT); without keepalive, the
/// default, a second server keeps its connection from the same host.
#[test]
fn keepalive_frees_the_connections_of_a_vanished_host() {
    let Some(net) = Network::new(&["server", "a", "gone"]) else {
        return;
    };
    let sb = Sandbox::new();
    let mut with = Remote::start(&net, &sb, PORT, &["--keepalive", "1"]);
    let without = Remote::start(&net, &sb, PORT + 1, &[]);
    let baseline = with.descriptors();
    // Through stdin: one argument of a command line holds at most 128 KiB.
    let set = format!("SET big {}\n", "x".repeat(512 * 1024));
    let out = client(&sb, net.host("a"), &with.addr, &[], set.as_bytes());
    assert_eq!(testkit::stdout(&out), "OK\n", "{}", testkit::stderr(&out));
    with.expect_descriptors(baseline);
    let (ip, _) = with.addr.split_once(':').unwrap();
    let gone = net.host("gone");
    let idle = python(gone, HOLD_CONNECTIONS, &[ip, &PORT.to_string(), "1"]);
    let stuck = python(gone, STOP_READING, &[ip, &PORT.to_string()]);
    let other = python(gone, HOLD_CONNECTIONS, &[ip, &(PORT + 1).to_string(), "1"]);
    for (p, line) in [
        (&idle, "holding 1"),
        (&stuck, "stopped reading"),
        (&other, "holding 1"),
    ] {
        p.stdout_lines()
            .unwrap()
            .wait_for(|l| l == line, WAIT)
            .unwrap();
    }
    with.expect_descriptors(baseline + 2);
    net.vanish("gone");
    // Idle 1 s, then 3 probes 1 s apart: about 4 s.
    with.wait_lines(2, |l| {
        l.starts_with("client 10.23.0.3:") && l.ends_with(" lost: Connection timed out")
    });
    with.expect_descriptors(baseline);
    let clients = |addr: &str| {
        let out = client(&sb, net.host("a"), addr, &["INFO", "clients"], b"");
        testkit::stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:").map(str::to_owned))
            .unwrap()
    };
    // INFO's own connection, and nothing else.
    assert_eq!(clients(&with.addr), "1");
    // The same vanished host's connection, to a server without keepalive: still there.
    assert_eq!(clients(&without.addr), "2");
}

/// Server descriptors stay flat across 500 clients whose hosts vanished: two hosts of 250,
/// one after the other, each freed in full by keepalive before the next.
#[test]
fn descriptors_stay_flat_across_500_vanished_clients() {
    let Some(net) = Network::new(&["server", "c1", "c2"]) else {
        return;
    };
    let sb = Sandbox::new();
    let mut server = Remote::start(&net, &sb, PORT, &["--keepalive", "1"]);
    let ip = net.host("server").addr.to_string();
    let port = PORT.to_string();
    let baseline = server.descriptors();
    for host in ["c1", "c2"] {
        let holder = python(net.host(host), HOLD_CONNECTIONS, &[&ip, &port, "250"]);
        holder
            .stdout_lines()
            .unwrap()
            .wait_for(|l| l == "holding 250", WAIT)
            .unwrap();
        server.expect_descriptors(baseline + 250);
        net.vanish(host);
        let prefix = format!("client {}:", net.host(host).addr);
        server.wait_lines(250, |l| {
            l.starts_with(&prefix) && l.ends_with(" lost: Connection timed out")
        });
        server.expect_descriptors(baseline);
    }
}

/// The server's cable unplugged for 5 s: a connection open across the cut loses nothing (TCP
/// retransmits), a client with `--timeout 2` says what it waited for instead of hanging, and
/// a retry once the cable is back succeeds. (With the client's own cable out, its kernel
/// knows at once: `connect` fails with EHOSTUNREACH, "No route to host".)
#[test]
fn a_link_down_for_5_s() {
    let Some(net) = Network::new(&["server", "a"]) else {
        return;
    };
    let sb = Sandbox::new();
    let server = Remote::start(&net, &sb, PORT, &[]);
    let a = net.host("a");
    // Two clients that stay connected, fed one command at a time: one waits as long as TCP
    // does, the other gives up after 2 s.
    let connected = |timeout: &[&str]| {
        let mut cmd = sb.command_on(a, BIN);
        cmd.args(["client", "--tcp", &server.addr])
            .args(timeout)
            .stdin(Stdio::piped());
        let child = testkit::spawn(&mut cmd);
        let stdin = child.take_stdin().unwrap();
        let out = child.stdout_lines().unwrap();
        (child, stdin, out)
    };
    let (patient, mut patient_in, mut patient_out) = connected(&[]);
    let (hasty, mut hasty_in, mut hasty_out) = connected(&["--timeout", "2"]);
    for (input, output) in [
        (&mut patient_in, &mut patient_out),
        (&mut hasty_in, &mut hasty_out),
    ] {
        input.write_all(b"INCR n\n").unwrap();
        output.next_line(WAIT).unwrap().unwrap();
    }
    net.link("server", false);
    let down = Instant::now();
    patient_in.write_all(b"INCR n\n").unwrap();
    // Read-only: its request may still reach the server after the client gave up.
    hasty_in.write_all(b"GET n\n").unwrap();
    let status = hasty.wait_timeout(WAIT).unwrap();
    assert_eq!(status.code(), Some(1));
    let err = hasty.stderr_lines().unwrap().rest(WAIT).unwrap().join("\n");
    assert_eq!(
        err,
        format!(
            "socket-demo: {}: no reply within 2s (--timeout)",
            server.addr
        )
    );
    // A new connection while the cable is out: its SYN goes nowhere.
    let out = client(&sb, a, &server.addr, &["--timeout", "2", "PING"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!(
            "socket-demo: connect {}: no answer within 2s (--timeout)\n",
            server.addr
        )
    );
    // The cable stays out 5 s in all: this sleep is the fault itself, not a wait for an event.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down.elapsed()));
    net.link("server", true);
    // The patient client's INCR arrives with TCP's next retransmission, exactly once.
    assert_eq!(patient_out.next_line(WAIT).unwrap().unwrap(), "3");
    drop(patient_in);
    assert!(patient.wait_timeout(WAIT).unwrap().success());
    let out = client(&sb, a, &server.addr, &["--timeout", "10", "GET", "n"], b"");
    assert_eq!(testkit::stdout(&out), "3\n");
}

/// `--allow-from`: a client from an allowed host is served; one from another host is refused
/// at accept with an error reply, logged with its address, and its request never runs.
#[test]
fn allow_from_admits_one_host_and_refuses_the_other() {
    let Some(net) = Network::new(&["server", "a", "b"]) else {
        return;
    };
    let sb = Sandbox::new();
    let a = net.host("a").addr.to_string();
    let mut server = Remote::start(&net, &sb, PORT, &["--allow-from", &a]);
    let refused = client(&sb, net.host("b"), &server.addr, &["SET", "k", "b"], b"");
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        testkit::stdout(&refused),
        "ERR address 10.23.0.3 is not allowed here\n"
    );
    let line = server
        .log
        .wait_for(|l| l.starts_with("refused client "), WAIT)
        .unwrap();
    assert!(
        line.starts_with("refused client 10.23.0.3:") && line.ends_with(": not in --allow-from"),
        "{line}"
    );
    // Its SET never ran.
    let out = client(&sb, net.host("a"), &server.addr, &["EXISTS", "k"], b"");
    assert_eq!(testkit::stdout(&out), "0\n", "{}", testkit::stderr(&out));
    let admits = format!("0.0.0.0:{PORT} admits clients from {a}/32 only");
    assert!(
        server.log.seen().contains(&admits),
        "no {admits:?} in {:?}",
        server.log.seen()
    );
}
