//! The server: adopt a dead server's leftover, refuse a live one's, --fresh, snapshots,
//! SIGUSR1, SIGTERM leaving nothing behind; POSIX and System V.

mod support;

use std::os::unix::fs::MetadataExt;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::{Name, Server, WAIT, exists, fails, ok, run};

fn adopts_a_leftover_with_its_data_and_refuses_a_second_server(sysv: bool) {
    let sb = Sandbox::new();
    let name = Name::new(sysv);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "kept", "across a crash"]);
    let err = fails(&sb, &name, &["server"]);
    assert!(
        err.contains("already serves") && err.contains("refusing to start a second one"),
        "{err}"
    );
    server.kill();
    assert!(exists(&sb, &name), "kill -9 leaves the object");

    let server = Server::start(&sb, &name, &[]);
    assert!(
        server
            .started
            .contains("adopted the database left by dead server pid")
            && server.started.contains(": 1 records"),
        "{}",
        server.started
    );
    assert_eq!(ok(&sb, &name, &["get", "kept"]), "across a crash");
    let rest = server.stop();
    assert!(rest.iter().any(|l| l.starts_with("SIGTERM: ")), "{rest:?}");
    assert!(!exists(&sb, &name), "SIGTERM leaves no object");
}

#[test]
fn posix_adopt_and_refuse() {
    adopts_a_leftover_with_its_data_and_refuses_a_second_server(false);
}

#[test]
fn sysv_adopt_and_refuse() {
    adopts_a_leftover_with_its_data_and_refuses_a_second_server(true);
}

/// A live server in another runtime dir has no pid file here: the header's creator pid and
/// start time still tell that it lives, and its database is not taken.
#[test]
fn live_server_is_never_taken_over_even_without_its_pid_file() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let err = fails(&other, &name, &["server"]);
    assert!(
        err.contains("its server (pid")
            && err.contains("is still running; refusing to take it over"),
        "{err}"
    );
    let err = fails(&other, &name, &["server", "--fresh"]);
    assert!(err.contains("is still running"), "{err}");
    ok(&sb, &name, &["put", "k", "still here"]);
    server.stop();
}

#[test]
fn fresh_discards_a_leftover() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "old", "x"]);
    server.kill();
    let server = Server::start(&sb, &name, &["--fresh"]);
    assert!(server.started.contains("(created;"), "{}", server.started);
    fails(&sb, &name, &["get", "old"]);
    server.stop();
}

#[test]
fn save_and_load_round_trip_binary_values() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let snap = sb.join("db.snap");
    let snap = snap.to_str().unwrap();
    let server = Server::start(&sb, &name, &["--save", snap]);
    let binary: Vec<u8> = (0..=255).collect();
    let out = run(&sb, &name, &["put", "bin", "-"], &binary);
    assert!(out.status.success());
    ok(&sb, &name, &["put", "text", "hello world"]);
    ok(&sb, &name, &["put", "gone", "x"]);
    ok(&sb, &name, &["del", "gone"]);
    let rest = server.stop();
    assert!(
        rest.iter().any(|l| l.contains("saved 2 records to")),
        "{rest:?}"
    );
    assert!(
        !sb.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp."))
    );

    let server = Server::start(&sb, &name, &["--load", snap]);
    let out = run(&sb, &name, &["get", "bin"], b"");
    assert_eq!(out.stdout, binary);
    assert_eq!(ok(&sb, &name, &["get", "text"]), "hello world");
    assert_eq!(ok(&sb, &name, &["list"]), "bin\ntext\n");
    server.stop();

    // A damaged snapshot is refused as a whole, with the file named.
    let mut bytes = std::fs::read(snap).unwrap();
    bytes.truncate(bytes.len() - 3);
    std::fs::write(snap, bytes).unwrap();
    let err = fails(&sb, &name, &["server", "--load", snap]);
    assert!(
        err.contains(snap) && err.contains("checksum mismatch"),
        "{err}"
    );
    assert!(
        !exists(&sb, &name),
        "a failed start removes what it created"
    );
}

#[test]
fn sigusr1_prints_stats_and_stats_counts_attached_processes() {
    for sysv in [false, true] {
        let sb = Sandbox::new();
        let name = Name::new(sysv);
        let mut server = Server::start(&sb, &name, &["--slots", "100"]);
        ok(&sb, &name, &["put", "a", "1"]);
        ok(&sb, &name, &["put", "b", "2"]);
        server.child.signal(Signal::SIGUSR1).unwrap();
        let line = server
            .stderr
            .wait_for(|l| l.starts_with("stats: "), WAIT)
            .unwrap();
        assert!(
            line.contains("records 2, slots 100, longest_probe ")
                && line.contains(", generation 2, "),
            "{line}"
        );
        // The server and the stats process itself are attached.
        let stats = ok(&sb, &name, &["stats"]);
        assert!(stats.contains("attached 2\n"), "sysv={sysv}: {stats}");
        assert!(
            stats.contains(&format!("server_pid {} (running)", server.child.pid())),
            "{stats}"
        );
        server.stop();
    }
}

#[test]
fn sysv_segment_is_visible_in_ipcs_with_our_key() {
    let sb = Sandbox::new();
    let name = Name::new(true);
    let server = Server::start(&sb, &name, &[]);
    // ftok(path, 0x1d): the project id in the top byte, then the low byte of the file's
    // device and the low 16 bits of its inode.
    let key_file = sb.runtime_dir().join(format!("{}.sysv", &name.name[1..]));
    let meta = std::fs::metadata(&key_file).unwrap();
    let (dev, ino) = (MetadataExt::dev(&meta), MetadataExt::ino(&meta));
    let key = format!("0x1d{:02x}{:04x}", dev & 0xff, ino & 0xffff);
    let ipcs = testkit::run(std::process::Command::new("ipcs").arg("-m"), b"");
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let line = testkit::stdout(&ipcs)
        .lines()
        .find(|l| l.starts_with(&key))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no segment with key {key}: {}", testkit::stdout(&ipcs)));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((cols[2], cols[3]), (me.as_str(), "600"), "{line}");
    server.stop();
    assert!(!exists(&sb, &name));
    assert!(
        !sb.runtime_dir()
            .join(format!("{}.sysv", &name.name[1..]))
            .exists(),
        "key file removed"
    );
}

#[test]
fn destroy_stops_a_live_server_or_removes_a_leftover() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let out = ok(&sb, &name, &["destroy"]);
    assert!(
        out.starts_with(&format!("stopped server pid {}", server.child.pid())),
        "{out}"
    );
    let status = server.child.wait_timeout(WAIT).unwrap();
    assert!(status.success());
    assert!(!exists(&sb, &name));

    let server = Server::start(&sb, &name, &[]);
    server.kill();
    assert_eq!(
        ok(&sb, &name, &["destroy"]),
        format!("removed {}\n", name.name)
    );
    assert!(!exists(&sb, &name));
}

/// Two servers started at once on one leftover, from two runtime dirs (so no pid file stops
/// the second): both find its creator dead, both wait for the writers' mutex (held by a
/// writer frozen in its critical section); when that writer is killed, the first to lock
/// adopts the database, and the second, looking again under the mutex, refuses.
#[test]
fn two_servers_adopting_one_leftover_at_once_only_one_wins() {
    let (sb, other) = (Sandbox::new(), Sandbox::new());
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "k", "v"]);
    let frozen = support::stop_a_writer_inside(&sb, &name, "k", "never");
    server.kill();

    let a = testkit::spawn(&mut support::cmd(&sb, &name, &["server"]));
    let b = testkit::spawn(&mut support::cmd(&other, &name, &["server"]));
    for server in [&a, &b] {
        support::wait_until_in(server.pid(), libc::SYS_futex, "waited for the mutex");
    }
    frozen.signal(Signal::SIGKILL).unwrap();
    frozen.wait_timeout(WAIT).unwrap();

    // The loser exits 1; the winner serves until we stop it.
    let give_up = std::time::Instant::now() + WAIT;
    let (winner, loser) = loop {
        if a.try_wait().unwrap().is_some() {
            break (b, a);
        }
        if b.try_wait().unwrap().is_some() {
            break (a, b);
        }
        assert!(
            std::time::Instant::now() < give_up,
            "neither server refused"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let status = loser.wait_timeout(WAIT).unwrap();
    let err = loser.stderr_lines().unwrap().rest(WAIT).unwrap().join("\n");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("is still running; refusing to take it over"),
        "{err}"
    );
    let mut out = winner.stdout_lines().unwrap();
    out.wait_for(|l| l.starts_with("ready: "), WAIT).unwrap();
    assert_eq!(ok(&sb, &name, &["get", "k"]), "v");
    winner.signal(Signal::SIGTERM).unwrap();
    assert!(winner.wait_timeout(WAIT).unwrap().success());
    assert!(!exists(&sb, &name));
}

/// A leftover whose header names, as its creator, a live process of ours that is no server
/// of it (a pid and start time written by hand): `destroy` removes the object and leaves
/// that process alone, and a new server adopts the leftover instead of refusing it.
#[test]
fn a_header_naming_another_live_process_does_not_make_it_the_server() {
    use std::os::unix::fs::FileExt;
    let sb = Sandbox::new();
    let name = Name::new(false);
    let bystander = testkit::spawn(std::process::Command::new("sleep").arg("600"));
    let pid = bystander.pid().as_raw();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let forge = || {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(name.shm_path())
            .unwrap();
        // Creator pid at 40, creator start time at 48 (src/layout.rs).
        file.write_all_at(&(pid as u32).to_le_bytes(), 40).unwrap();
        file.write_all_at(&start.to_le_bytes(), 48).unwrap();
    };

    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "k", "v"]);
    server.kill();
    forge();
    let server = Server::start(&sb, &name, &[]);
    assert!(
        server
            .started
            .contains("adopted the database left by dead server pid"),
        "{}",
        server.started
    );
    server.kill();
    forge();
    assert_eq!(
        ok(&sb, &name, &["destroy"]),
        format!("removed {}\n", name.name)
    );
    assert!(!exists(&sb, &name));
    assert_eq!(
        bystander.try_wait().unwrap(),
        None,
        "destroy signalled a bystander"
    );
}

/// SIGHUP (the terminal the server runs in was closed) stops it like SIGTERM: the object and
/// the pid file go, exit 0. Its default action would kill it and leave both behind.
#[test]
fn sighup_stops_the_server_cleanly() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    server.child.signal(Signal::SIGHUP).unwrap();
    let status = server.child.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "SIGHUP: {status:?}");
    assert!(!exists(&sb, &name), "SIGHUP leaves no object");
    let left = sb.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `--pid-file` puts the server's locked pid file where the caller wants it (a service
/// manager's PIDFile=), holding the server's pid, and the stop removes it.
#[test]
fn pid_file_option_names_the_pid_file() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let pid_file = sb.join("server.pid");
    let server = Server::start(&sb, &name, &["--pid-file", pid_file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&pid_file).expect("the pid file exists");
    assert_eq!(text.trim(), server.child.pid().to_string());
    server.stop();
    assert!(!pid_file.exists(), "the stop removes the pid file");
}

/// Two `--sysv` names whose key files give one `ftok` key (made certain here with a hard link,
/// one inode; on tmpfs, two inodes 65536 apart do the same): the second name's clients, server
/// and `destroy` refuse the first name's segment, naming the collision, and leave it alone.
/// Before, they read it, wrote it, and `destroy` removed it.
#[test]
fn sysv_names_that_share_a_key_do_not_share_a_database() {
    let sb = Sandbox::new();
    let (a, b) = (Name::new(true), Name::new(true));
    let server = Server::start(&sb, &a, &[]);
    ok(&sb, &a, &["put", "k", "a's value"]);
    let key_file = |n: &Name| sb.runtime_dir().join(format!("{}.sysv", &n.name[1..]));
    std::fs::hard_link(key_file(&a), key_file(&b)).unwrap();

    let want = "holds another database (its header records the name hash";
    for args in [
        &["get", "k"][..],
        &["put", "k", "b's"],
        &["server"],
        &["destroy"],
    ] {
        let err = fails(&sb, &b, args);
        assert!(
            err.contains(&format!("sysv:{}: the segment at key 0x1d", b.name))
                && err.contains(want),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ok(&sb, &a, &["get", "k"]), "a's value");
    server.stop();
    std::fs::remove_file(key_file(&b)).unwrap();
}
