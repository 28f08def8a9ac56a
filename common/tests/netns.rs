//! The test hosts of `testkit::netns` (tests/netns/netns.sh): they reach each other and
//! nothing else, the faults do what they say, and every namespace goes on every way out.

use std::process::{Command, Stdio};

use common::child::Supervised;
use common::testkit::netns::{self, Host, Network, SCRIPT};
use common::testkit::{self, DEADLINE};
use nix::sys::signal::Signal;

/// The namespaces of run `run` that exist now.
fn namespaces_of(run: &str) -> Vec<String> {
    let out = testkit::run(Command::new("ip").args(["netns", "list"]), b"");
    let prefix = format!("ipc-demo-net-{run}");
    testkit::stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Whether `from` can open a TCP connection to a listener on `to` within `secs` seconds.
fn connects(from: &Host, to: &Host, secs: u32) -> bool {
    let listener = r"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000)); s.listen()
print('listening', flush=True)
while True: s.accept()[0].close()
";
    let mut cmd = to.command("python3");
    cmd.args(["-c", listener, &to.addr.to_string()]);
    let server = testkit::spawn(&mut cmd);
    let mut lines = server.stdout_lines().unwrap();
    lines.wait_for(|l| l == "listening", DEADLINE).unwrap();
    // The dialer keeps trying until its time is up: right after a cable is plugged back in,
    // the neighbour entry that failed while it was out answers EHOSTUNREACH at once for a
    // moment, as a real host's does, and "reaches within SECS" means any attempt in that time.
    let dialer = r"
import socket, sys, time
end = time.monotonic() + int(sys.argv[2])
while True:
    try:
        socket.create_connection((sys.argv[1], 7000), timeout=max(end - time.monotonic(), 0.1)).close()
        break
    except OSError:
        if time.monotonic() >= end:
            sys.exit(1)
        time.sleep(0.1)
";
    let mut cmd = from.command("python3");
    cmd.args(["-c", dialer, &to.addr.to_string(), &secs.to_string()]);
    testkit::run(&mut cmd, b"").status.success()
}

#[test]
fn hosts_reach_each_other_and_nothing_else() {
    let Some(net) = Network::new(&["server", "a", "b"]) else {
        return;
    };
    let run = net.run_id().to_owned();
    let addrs: Vec<String> = net.hosts().iter().map(|h| h.addr.to_string()).collect();
    assert_eq!(addrs, ["10.23.0.1", "10.23.0.2", "10.23.0.3"]);
    assert!(connects(net.host("a"), net.host("server"), 10));
    assert!(connects(net.host("server"), net.host("b"), 10));
    // Each host has its loopback and its one link, and no route but the switch's subnet: no
    // gateway, so no packet can be sent anywhere else.
    for host in net.hosts() {
        let routes = host.run("ip", &["-4", "route", "show", "table", "all"]);
        let routes: Vec<&str> = routes
            .lines()
            .filter(|l| !l.contains("table local"))
            .collect();
        assert_eq!(routes.len(), 1, "{}: {routes:?}", host.name);
        assert!(
            routes[0].starts_with("10.23.0.0/16 dev eth0 "),
            "{routes:?}"
        );
        let links = host.run("ip", &["-o", "link", "show"]);
        assert_eq!(links.lines().count(), 2, "{}: {links}", host.name);
    }
    // The machine's own namespace never sees our addresses or interfaces.
    let root = testkit::stdout(&testkit::run(
        Command::new("ip").args(["-o", "addr", "show"]),
        b"",
    ));
    assert!(!root.contains("10.23."), "{root}");
    assert_eq!(namespaces_of(&run).len(), 4);
    drop(net);
    assert_eq!(namespaces_of(&run), Vec::<String>::new());
}

#[test]
fn faults_cut_and_restore_a_link() {
    let Some(net) = Network::new(&["server", "a"]) else {
        return;
    };
    let (server, a) = (net.host("server"), net.host("a"));
    net.link("a", false);
    let down = a.run("ip", &["-o", "link", "show", "eth0"]);
    assert!(down.contains("NO-CARRIER"), "{down}");
    assert!(!connects(a, server, 2));
    net.link("a", true);
    assert!(connects(a, server, 30));
    net.loss("a", 30);
    let rules = a.run("nft", &["list", "ruleset"]);
    for rule in [
        "iifname \"eth0\" numgen random mod 100 < 30 drop",
        "oifname \"eth0\" numgen random mod 100 < 30 drop",
    ] {
        assert!(rules.contains(rule), "{rule} not in {rules}");
    }
    net.loss("a", 100);
    assert!(!connects(a, server, 2));
    net.loss("a", 0);
    assert_eq!(a.run("nft", &["list", "ruleset"]), "");
    assert!(connects(a, server, 30));
    net.rate("a", "1mbit");
    let qdisc = a.run("tc", &["qdisc", "show", "dev", "eth0"]);
    assert!(
        qdisc.contains("tbf") && qdisc.contains("rate 1Mbit"),
        "{qdisc}"
    );
    assert!(connects(a, server, 30));
    net.rate("a", "off");
    let qdisc = a.run("tc", &["qdisc", "show", "dev", "eth0"]);
    assert!(!qdisc.contains("tbf"), "{qdisc}");
}

#[test]
fn a_host_that_vanishes_takes_its_processes_with_it() {
    let Some(net) = Network::new(&["server", "gone"]) else {
        return;
    };
    let run = net.run_id().to_owned();
    let mut cmd = net.host("gone").command("sleep");
    cmd.arg("600");
    let sleeper = testkit::spawn(&mut cmd);
    net.vanish("gone");
    let status = sleeper.wait_timeout(DEADLINE).unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let left = namespaces_of(&run);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.iter().any(|n| n.ends_with("-gone")), "{left:?}");
}

#[test]
fn a_panicking_test_leaves_nothing() {
    // A thread named like its test, as the harness names a test's thread.
    let test = std::thread::Builder::new()
        .name("a_panicking_test_leaves_nothing".into())
        .spawn(|| {
            if let Some(net) = Network::new(&["a"]) {
                std::panic::panic_any(net.run_id().to_owned());
            }
        })
        .unwrap();
    // Skipped if it did not panic; else its payload is the run's name.
    if let Err(payload) = test.join() {
        let run = payload.downcast::<String>().unwrap();
        assert_eq!(namespaces_of(&run), Vec::<String>::new());
    }
}

/// Start `netns.sh up a` by hand (not through `Network`, whose drop would check its exit), and
/// return it, its stdin and its run name once it is ready.
fn start_owner() -> (Supervised, std::process::ChildStdin, String) {
    let mut cmd = Command::new(SCRIPT);
    cmd.args(["up", "a"]).stdin(Stdio::piped());
    let owner = testkit::spawn(&mut cmd);
    let ready = owner
        .stdout_lines()
        .unwrap()
        .wait_for(|l| l.starts_with("ready "), DEADLINE)
        .unwrap();
    let stdin = owner.take_stdin().unwrap();
    (owner, stdin, ready["ready ".len()..].to_owned())
}

#[test]
fn sigint_sigterm_and_sighup_remove_everything() {
    if !netns::available() {
        return;
    }
    for (sig, code) in [
        (Signal::SIGINT, 130),
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
    ] {
        let (owner, _stdin, run) = start_owner();
        assert_eq!(namespaces_of(&run).len(), 2);
        owner.signal(sig).unwrap();
        let status = owner.wait_timeout(DEADLINE).unwrap();
        assert_eq!(status.code(), Some(code), "{sig}");
        assert_eq!(namespaces_of(&run), Vec::<String>::new(), "{sig}");
    }
}

#[test]
fn what_a_sigkill_leaves_the_next_run_removes() {
    if !netns::available() {
        return;
    }
    let (owner, _stdin, run) = start_owner();
    owner.signal(Signal::SIGKILL).unwrap();
    owner.wait_timeout(DEADLINE).unwrap();
    assert_eq!(namespaces_of(&run).len(), 2, "nothing to sweep up");
    // Any new run sweeps up first (a parallel test's may get there before this one does).
    let out = testkit::run(Command::new(SCRIPT).arg("sweep"), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    assert_eq!(namespaces_of(&run), Vec::<String>::new());
    // A live run is never taken for a leftover.
    let (owner, stdin, run) = start_owner();
    let out = testkit::run(Command::new(SCRIPT).arg("sweep"), b"");
    assert!(out.status.success());
    assert_eq!(namespaces_of(&run).len(), 2);
    // The end of its stdin (its test process gone, however it went) ends it, cleanly.
    drop(stdin);
    assert!(owner.wait_timeout(DEADLINE).unwrap().success());
    assert_eq!(namespaces_of(&run), Vec::<String>::new());
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["up", "Bad"][..],
        &["up", "a", "a"],
        &["loss", "1-2", "a", "101"],
        &["link", "1-2", "a", "sideways"],
        &["frobnicate"],
    ] {
        let out = testkit::run(Command::new(SCRIPT).args(args), b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let out = testkit::run(Command::new(SCRIPT).args(["loss", "1-2", "a", "5"]), b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("no host a in run 1-2"),
        "{out:?}"
    );
}
