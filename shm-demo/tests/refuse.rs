//! Bad input refused cleanly: a damaged or foreign object at the name, a full table, keys and
//! values over the limits. Each gets one line naming the object and the cause, exit 1, and
//! nothing is changed.

mod support;

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, PermissionsExt};

use common::testkit::Sandbox;
use support::{Name, Server, fails, ok};

/// Start a server, put a key, then damage the object with `damage` and check that a client
/// and a second server both refuse it with `want` in their message.
fn refused_after(damage: impl Fn(&std::fs::File), want: &str) {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "16", "--value-max", "100"]);
    ok(&sb, &name, &["put", "k", "v"]);
    server.kill(); // leave the object behind, then damage it
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.shm_path())
        .unwrap();
    damage(&file);
    let err = fails(&sb, &name, &["get", "k"]);
    assert!(
        err.starts_with(&format!("shm-demo: {}: ", name.name)) && err.contains(want),
        "get: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let err = fails(&sb, &name, &["server"]);
    assert!(
        err.contains(want) && err.contains("--fresh"),
        "server: {err}"
    );
    assert!(name.shm_path().exists(), "a refused object is left alone");
    // --fresh discards what is ours, damaged or not.
    let server = Server::start(&sb, &name, &["--fresh"]);
    assert!(fails(&sb, &name, &["get", "k"]).is_empty());
    server.stop();
}

#[test]
fn corrupt_magic() {
    refused_after(
        |f| f.write_all_at(b"GARBAGE!", 0).unwrap(),
        "not a shm-demo database",
    );
}

#[test]
fn wrong_version() {
    refused_after(
        |f| f.write_all_at(&7u32.to_le_bytes(), 8).unwrap(),
        "layout version 7",
    );
}

#[test]
fn slot_count_that_disagrees_with_the_sizes() {
    refused_after(
        |f| f.write_all_at(&17u32.to_le_bytes(), 24).unwrap(),
        "header sizes disagree",
    );
}

#[test]
fn total_size_that_disagrees() {
    refused_after(
        |f| f.write_all_at(&(1u64 << 40).to_le_bytes(), 16).unwrap(),
        "header sizes disagree",
    );
}

#[test]
fn truncated_object() {
    refused_after(
        |f| f.set_len(f.metadata().unwrap().len() / 2).unwrap(),
        "truncated",
    );
}

#[test]
fn object_smaller_than_a_header() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    std::fs::write(name.shm_path(), b"tiny").unwrap();
    std::fs::set_permissions(name.shm_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = fails(&sb, &name, &["get", "k"]);
    assert!(err.contains("smaller than a header"), "{err}");
    let err = fails(&sb, &name, &["server", "--fresh"]);
    assert!(err.contains("smaller than a header"), "{err}");
}

#[test]
fn object_of_another_mode_is_refused_even_with_fresh() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    ok(&sb, &name, &["put", "k", "v"]);
    server.kill();
    std::fs::set_permissions(name.shm_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(&sb, &name, &["get", "k"]);
    assert!(
        err.contains("has mode 0644, expected 0600; not using it"),
        "{err}"
    );
    let err = fails(&sb, &name, &["server", "--fresh"]);
    assert!(err.contains("has mode 0644"), "{err}");
    let err = fails(&sb, &name, &["destroy"]);
    assert!(err.contains("has mode 0644"), "{err}");
    assert!(name.shm_path().exists(), "not ours to remove");
}

#[test]
fn object_of_another_size_is_refused() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "8"]);
    server.kill();
    let f = OpenOptions::new()
        .write(true)
        .open(name.shm_path())
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + 4096).unwrap();
    let err = fails(&sb, &name, &["list"]);
    assert!(
        err.contains(&format!(
            "the header says {len} bytes but the object has {}",
            len + 4096
        )),
        "{err}"
    );
}

#[test]
fn full_table_key_and_value_limits() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "4", "--value-max", "16"]);
    for k in ["a", "b", "c", "d"] {
        ok(&sb, &name, &["put", k, k]);
    }
    let err = fails(&sb, &name, &["put", "e", "e"]);
    assert!(err.contains("table full: all 4 slots hold keys"), "{err}");
    ok(&sb, &name, &["put", "a", "replaced"]); // an existing key still fits
    let long_key = "k".repeat(65);
    let err = fails(&sb, &name, &["put", &long_key, "v"]);
    assert!(
        err.contains("key is 65 bytes; keys are 1..=64 bytes"),
        "{err}"
    );
    let err = fails(&sb, &name, &["get", &long_key]);
    assert!(err.contains("key is 65 bytes"), "{err}");
    let err = fails(&sb, &name, &["put", "a", &"v".repeat(17)]);
    assert!(err.contains("value is 17 bytes; the limit in"), "{err}");
    // Read up to the limit + 1, so its length is not known: the message does not make one
    // up (it said "value is 17 bytes").
    let out = support::run(&sb, &name, &["put", "a", "-"], &[b'x'; 5000]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::testkit::stderr(&out);
    assert_eq!(
        err,
        format!(
            "shm-demo: value on stdin is over 16 bytes, the limit in {} (server --value-max)\n",
            name.name
        )
    );
    assert_eq!(ok(&sb, &name, &["get", "a"]), "replaced", "nothing changed");
    ok(&sb, &name, &["del", "b"]);
    ok(&sb, &name, &["put", "e", "e"]); // room again after a delete
    server.stop();
}

#[test]
fn missing_database_and_bad_names() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let err = fails(&sb, &name, &["get", "k"]);
    assert!(
        err.contains("no such database (start one with: shm-demo server --name"),
        "{err}"
    );
    let out = common::testkit::run(
        sb.command(support::BIN)
            .args(["get", "k", "--name", "no/slash"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = common::testkit::stderr(&out);
    assert!(err.contains("bad name \"no/slash\""), "{err}");
}

/// A record whose key length was damaged while the server ran: `put` and `del` of that key
/// refuse, naming the record, as `get` does. Before, the writer passed over the record as
/// some other key's and stored the key a second time further on; `get` and `list` refused
/// the table, and once the length was right again the old value was back.
#[test]
fn a_damaged_key_length_stops_writers_instead_of_duplicating_the_key() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &["--slots", "4", "--value-max", "64"]);
    ok(&sb, &name, &["put", "k", "committed"]);
    // k's record; its key length is at 24 of it (src/layout.rs).
    let file = support::Tamper::open(&name);
    let (slot, rec) = file.live_record();
    file.write_at(&200u32.to_le_bytes(), rec + 24);

    let want = format!("record {slot} is corrupt (key length 200, value length 9)");
    for args in [&["put", "k", "second"][..], &["del", "k"], &["get", "k"]] {
        let err = fails(&sb, &name, args);
        assert!(err.contains(&want), "{args:?}: {err}");
    }
    file.write_at(&1u32.to_le_bytes(), rec + 24);
    assert_eq!(ok(&sb, &name, &["get", "k"]), "committed");
    assert_eq!(ok(&sb, &name, &["list"]), "k\n", "one copy of the key");
    assert!(ok(&sb, &name, &["stats"]).contains("records 1\n"));
    server.stop();
}
