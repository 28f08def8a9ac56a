//! Several hosts for one test: network namespaces on a private switch, with faults on their
//! links.
//!
//! A [`Network`] runs `tests/netns/netns.sh up HOST...` (at the top of the repository; its
//! header says exactly what it builds) and keeps it running for as long as the test holds the
//! `Network`: each host is a network namespace with its own stack, an `eth0` on the switch and
//! an address from 10.23.0.0/16, which exists only inside the namespaces, so no packet of a
//! test ever leaves them. Programs run on a host through [`Host::command`] (or
//! [`Sandbox::command_on`](super::Sandbox::command_on) for the binaries under test), and the
//! faults are methods: [`Network::loss`], [`Network::rate`], [`Network::link`] and
//! [`Network::vanish`].
//!
//! # Removal
//!
//! The script removes every namespace it made, with whatever still runs in them, when its stdin
//! ends: when the `Network` is dropped (the test ended or panicked), and also when the test
//! process dies without unwinding (Ctrl-C, SIGKILL), since the kernel then closes the pipe. It
//! runs in a process group of its own, so a Ctrl-C at the terminal reaches only the test. What
//! a SIGKILL of the script itself leaves, the next `Network` removes: names carry the pid and
//! start time of the script that made them.
//!
//! # When the machine cannot
//!
//! Making namespaces needs root, `ip`, `nft` and `tc` (Debian's iproute2 and nftables, which
//! `.ci/run` installs). Where any is missing, [`Network::new`] writes `SKIPPED test: reason`
//! straight to stderr (past the test harness's capture, so that it shows) and returns None, and
//! the test returns without checking anything, visibly. With `IPC_DEMO_NETNS_REQUIRED=1` in
//! the environment (CI sets it) it panics instead: there, a skip would hide a broken setup.
//!
//! # Example
//!
//! ```no_run
//! use common::testkit::netns::Network;
//!
//! let Some(net) = Network::new(&["server", "client"]) else { return };
//! let server = net.host("server");
//! let mut ping = net.host("client").command("redis-cli");
//! ping.args(["-h", &server.addr.to_string(), "PING"]);
//! net.loss("client", 5); // 5% of packets dropped, each way, from now on
//! net.link("client", false); // the cable unplugged...
//! net.link("client", true); // ...and back
//! net.vanish("client"); // gone, with everything running on it
//! ```

use std::ffi::OsStr;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{ChildStdin, Command, Stdio};

use crate::child::Supervised;
use nix::unistd::Pid;

use super::DEADLINE;

/// The harness script.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/netns/netns.sh");

/// The script's exit status for "hosts cannot be made on this machine".
const CANNOT: i32 = 77;

/// Set to 1 to make a missing prerequisite fail a test instead of skipping it.
pub const REQUIRED_ENV: &str = "IPC_DEMO_NETNS_REQUIRED";

/// One host: a network namespace with one address on the switch.
#[derive(Clone, Debug)]
pub struct Host {
    /// The name the test gave it.
    pub name: String,
    /// Its network namespace (`ip netns exec NETNS ...`).
    pub netns: String,
    /// Its address on the switch.
    pub addr: Ipv4Addr,
}

impl Host {
    /// A command that runs `program` on this host (through `ip netns exec`, which execs it:
    /// the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns]).arg(program);
        cmd
    }

    /// Run `program args` on this host to completion (within the test deadline) and return
    /// its stdout; panics, with its stderr, if it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let mut cmd = self.command(program);
        cmd.args(args);
        let out = super::run(&mut cmd, b"");
        assert!(
            out.status.success(),
            "{program} {args:?} on {}: {}\n{}",
            self.name,
            super::stderr(&out),
            super::stdout(&out)
        );
        super::stdout(&out)
    }
}

/// Hosts on one switch, removed when dropped (see the module docs).
pub struct Network {
    owner: Supervised,
    /// The owner's stdin: closing it asks for the teardown.
    stdin: Option<ChildStdin>,
    run: String,
    hosts: Vec<Host>,
}

impl Network {
    /// Make `hosts` (each a lower-case letter, then at most 12 letters or digits; the first
    /// gets 10.23.0.1, the next 10.23.0.2, ...). None, after saying `SKIPPED` on stderr, if
    /// this machine cannot make them; the test's name for that line is its thread's name,
    /// which the test harness sets.
    pub fn new(hosts: &[&str]) -> Option<Network> {
        let mut cmd = Command::new(SCRIPT);
        cmd.arg("up")
            .args(hosts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // No deadline: the script lives exactly as long as its stdin, the test's end of the
        // pipe, so it cannot outlive the test; a watchdog's SIGKILL would only cut the hosts
        // away from under a slow test (and leave them to the next run's sweep).
        let owner = Supervised::spawn(
            "netns.sh up",
            &mut cmd,
            crate::child::Options {
                deadline: None,
                own_group: true,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let stdin = owner.take_stdin();
        let mut out = owner.stdout_lines().expect("stdout is piped");
        let mut err = owner.stderr_lines().expect("stderr is piped");
        if out.wait_for(|l| l.starts_with("ready "), DEADLINE).is_err() {
            let status = owner
                .wait_timeout(DEADLINE)
                .unwrap_or_else(|e| panic!("netns.sh up {hosts:?}: no ready line: {e}"));
            let why = err.rest(DEADLINE).unwrap_or_default().join("\n");
            if status.code() == Some(CANNOT) {
                skip(&why);
                return None;
            }
            panic!("netns.sh up {hosts:?} failed ({status}): {why}");
        }
        let mut run = String::new();
        let mut made = Vec::new();
        for line in out.seen() {
            let words: Vec<&str> = line.split(' ').collect();
            match words[..] {
                ["host", name, netns, addr] => made.push(Host {
                    name: name.to_owned(),
                    netns: netns.to_owned(),
                    addr: addr.parse().expect("netns.sh prints IPv4 addresses"),
                }),
                ["ready", r] => run = r.to_owned(),
                _ => {}
            }
        }
        assert_eq!(
            made.len(),
            hosts.len(),
            "netns.sh up printed {:?}",
            out.seen()
        );
        Some(Network {
            owner,
            stdin,
            run,
            hosts: made,
        })
    }

    /// This set of hosts' name in the script's other subcommands (`PID-START`, see its header).
    pub fn run_id(&self) -> &str {
        &self.run
    }

    /// Every host, in the order they were named.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The pid of the script that keeps the hosts (`netns.sh up`).
    pub fn owner(&self) -> Pid {
        self.owner.pid()
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in this network"))
    }

    /// Drop `percent`% of the packets on `host`'s link, each way, from now on (0: none).
    pub fn loss(&self, host: &str, percent: u32) {
        self.fault(&["loss", &self.run, host, &percent.to_string()]);
    }

    /// Limit `host`'s link to `rate` each way (tc's syntax: `200kbit`, `10mbit`), or remove the
    /// limit with `off`.
    pub fn rate(&self, host: &str, rate: &str) {
        self.fault(&["rate", &self.run, host, rate]);
    }

    /// Plug `host`'s cable into the switch (`up`), or unplug it: its packets go nowhere, and
    /// TCP retransmits until the cable is back or it gives up.
    pub fn link(&self, host: &str, up: bool) {
        self.fault(&["link", &self.run, host, if up { "up" } else { "down" }]);
    }

    /// Make `host` vanish as a machine whose power fails: its cable is cut first, so that its
    /// peers hear nothing (no FIN, no RST), then everything running on it is killed and its
    /// namespace deleted.
    pub fn vanish(&self, host: &str) {
        self.fault(&["vanish", &self.run, host]);
    }

    fn fault(&self, args: &[&str]) {
        let mut cmd = Command::new(SCRIPT);
        cmd.args(args);
        let out = super::run(&mut cmd, b"");
        assert!(
            out.status.success(),
            "netns.sh {}: {}",
            args.join(" "),
            super::stderr(&out)
        );
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // The end of stdin is the script's signal to remove everything; then wait for it, so
        // that the next test finds the machine as it was. Should it not finish, dropping the
        // owner sends it SIGTERM, which also removes everything.
        drop(self.stdin.take());
        match self.owner.wait_timeout(DEADLINE) {
            Ok(status) if status.success() => {}
            outcome if !std::thread::panicking() => {
                panic!("netns.sh up did not remove its hosts cleanly: {outcome:?}")
            }
            _ => {}
        }
    }
}

/// True if hosts can be made here; if not, false after saying `SKIPPED` as [`Network::new`]
/// does. For tests that run `netns.sh` themselves.
pub fn available() -> bool {
    let out = super::run(Command::new(SCRIPT).arg("check"), b"");
    match out.status.code() {
        Some(0) => true,
        Some(CANNOT) => {
            skip(&super::stderr(&out));
            false
        }
        _ => panic!("netns.sh check: {out:?}"),
    }
}

/// Say that the running test is skipped, and why; or fail it, if CI requires namespaces.
fn skip(why: &str) {
    let why = why.trim();
    assert!(
        std::env::var_os(REQUIRED_ENV).is_none_or(|v| v != "1"),
        "{REQUIRED_ENV}=1 but {why}"
    );
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}
