//! The database's unit tests: races made certain by running a delete at an exact point of a
//! probe, and a repair of a delete cut short.

use std::collections::BTreeMap;

use common::cleanup::{Object, Unlink};

use super::*;
use crate::segment::{self, Flavor, Target};

/// A new database of `slots` slots in a POSIX object of its own, removed when the guard
/// drops.
fn fresh(slots: u32) -> (Db, Unlink) {
    let name = common::names::posix_name(&common::names::unique("t"));
    let geo = Geometry::new(slots, layout::KEY_MAX, 64).unwrap();
    let region = segment::create(&Target::new(&name, Flavor::Posix).unwrap(), geo.total_size)
        .unwrap()
        .expect("a new name");
    let guard = Unlink::new(Object::Shm(name));
    (Db::init(region, geo).unwrap(), guard)
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

fn value(k: &[u8]) -> Vec<u8> {
    [b"value of ", k].concat()
}

fn put_all(db: &Db, keys: &[Vec<u8>]) {
    let mut w = db.lock().unwrap();
    for k in keys {
        w.put(k, &value(k)).unwrap();
    }
}

fn del_all(db: &Db, keys: &[Vec<u8>]) {
    let mut w = db.lock().unwrap();
    for k in keys {
        assert!(w.del(k).unwrap());
    }
}

/// Two keys with the same home slot, away from the table's end; the first lands there
/// and the second in the next slot.
fn same_home(db: &Db) -> (Vec<u8>, Vec<u8>, u32) {
    let mut by_home = BTreeMap::new();
    for i in 0.. {
        let k = key(i);
        let home = db.geo.home(layout::key_hash(&k));
        if home + 2 >= db.geo.slots {
            continue;
        }
        if let Some(first) = by_home.insert(home, k.clone()) {
            return (first, k, home);
        }
    }
    unreachable!()
}

/// The case: a full table of 2048 slots, every key deleted, refilled, deleted
/// again. No tombstone is left: the table is empty (longest probe 1), and the same keys
/// put again lie exactly as in a fresh table (the same longest probe).
/// Once the database is marked removed, writers that still have it mapped refuse.
#[test]
fn a_removed_database_refuses_writers() {
    let (db, _g) = fresh(8);
    put_all(&db, &[key(1)]);
    db.mark_removed();
    let mut w = db.lock().unwrap();
    for err in [
        w.put(&key(2), b"v").unwrap_err(),
        w.del(&key(1)).unwrap_err(),
    ] {
        assert!(
            err.to_string().contains("the database was removed"),
            "{err}"
        );
    }
    drop(w);
    assert_eq!(db.list().unwrap(), vec![(key(1), value(&key(1)))]);
}

/// A pthread function's error is its return value: ENOMEM is ENOMEM (the negated
/// `Errno::result` this replaces took it for success), EPERM is EPERM (not whatever
/// `errno` held).
#[test]
fn pthread_errors_are_the_returned_number() {
    assert_eq!(pthread_result(0), Ok(()));
    assert_eq!(pthread_result(libc::ENOMEM), Err(Errno::ENOMEM));
    assert_eq!(pthread_result(libc::EPERM), Err(Errno::EPERM));
}

#[test]
fn deleting_every_key_leaves_probes_as_short_as_in_a_fresh_table() {
    let keys: Vec<Vec<u8>> = (0..2048).map(key).collect();
    let some = &keys[..1500];
    let (new, _g) = fresh(2048);
    put_all(&new, some);
    let want = new.longest_probe();
    assert!(
        want < 200,
        "a fresh table at 73% load: longest probe {want}"
    );

    let (churned, _g) = fresh(2048);
    for _ in 0..2 {
        put_all(&churned, &keys);
        assert_eq!(
            churned.longest_probe(),
            2048,
            "full: a miss reads every slot"
        );
        del_all(&churned, &keys);
        let s = churned.stats();
        assert_eq!((s.used, s.longest_probe), (0, 1), "all deleted");
    }
    put_all(&churned, some);
    assert_eq!(churned.longest_probe(), want);
    let mut out = Vec::new();
    for k in some {
        assert!(churned.get(k, &mut out).unwrap());
        assert_eq!(out, value(k));
    }
    assert!(!churned.get(&keys[1600], &mut out).unwrap());
}

/// Random puts and deletes in a small table (full at times, runs wrapping past its end)
/// against a BTreeMap: after every delete, every key is found with its value, a deleted
/// key is not, and the counts agree.
#[test]
fn deletes_keep_every_other_key_reachable() {
    let (db, _g) = fresh(32);
    let mut model = BTreeMap::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::new();
    for round in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = key((x % 48) as usize);
        let mut w = db.lock().unwrap();
        if x & (1 << 40) != 0 && model.len() < 32 {
            let v = format!("{round}").into_bytes();
            w.put(&k, &v).unwrap();
            model.insert(k, v);
        } else {
            assert_eq!(w.del(&k).unwrap(), model.remove(&k).is_some());
            assert!(!db.get(&k, &mut out).unwrap(), "deleted {k:?} still found");
        }
        drop(w);
        for (k, v) in &model {
            assert!(db.get(k, &mut out).unwrap(), "round {round}: {k:?} lost");
            assert_eq!(&out, v);
        }
        assert_eq!(db.stats().used as usize, model.len());
    }
    let listed: BTreeMap<_, _> = db.list().unwrap().into_iter().collect();
    assert_eq!(listed, model);
}

/// The race a reader must survive, made certain: its probe has read slot `home` (another
/// key, about to be deleted) when the delete moves the key it looks for from `home + 1`
/// into `home`; then it reads `home + 1`, now empty. The moves count changed, so it
/// probes again and finds the key, instead of reporting it missing.
#[test]
fn a_probe_overtaken_by_a_move_still_finds_its_key() {
    let (db, _g) = fresh(64);
    let (gone, moved, home) = same_home(&db);
    put_all(&db, &[gone.clone(), moved.clone()]);
    let mut out = Vec::new();
    let mut deleted = false;
    let found = db
        .probe(&moved, &mut out, |slot| {
            if slot == home && !deleted {
                deleted = db.lock().unwrap().del(&gone).unwrap();
            }
        })
        .unwrap();
    assert!(deleted);
    assert!(found, "a key present all along was reported missing");
    assert_eq!(out, value(&moved));
}

/// The same race for a whole-table scan (`list`, and `server --save`).
#[test]
fn a_scan_overtaken_by_a_move_still_lists_every_key() {
    let (db, _g) = fresh(64);
    let (gone, moved, home) = same_home(&db);
    put_all(&db, &[gone.clone(), moved.clone()]);
    let mut deleted = false;
    let listed = db
        .scan(false, |slot| {
            if slot == home && !deleted {
                deleted = db.lock().unwrap().del(&gone).unwrap();
            }
        })
        .unwrap();
    assert!(deleted);
    assert_eq!(listed, vec![(moved.clone(), value(&moved))]);
}

/// A writer that dies in the middle of a delete, after a move: the next writer's repair
/// finishes it from the recorded hole. Without that, the moved key's second copy would
/// stay in the table, counted, and come back when the key is deleted.
#[test]
fn a_repair_finishes_a_delete_cut_short() {
    let (db, _g) = fresh(64);
    let (gone, moved, home) = same_home(&db);
    put_all(&db, &[gone.clone(), moved.clone()]);
    {
        // What `del(gone)` does up to its first move, and no further.
        let mut w = db.lock().unwrap();
        w.set_hole(Some(home));
        let (r, geo) = (&db.region, &db.geo);
        w.moving(|w| w.rewrite(home, |to| copy_record(r, geo, geo.record(home + 1), to)));
        w.set_hole(Some(home + 1));
        let report = w.repair();
        assert!(
            report.contains(&format!(
                "the delete that was filling slot {} finished",
                home + 1
            )),
            "{report}"
        );
    }
    let mut out = Vec::new();
    assert!(!db.get(&gone, &mut out).unwrap());
    assert_eq!(db.stats().used, 1);
    assert!(db.lock().unwrap().del(&moved).unwrap());
    assert!(
        !db.get(&moved, &mut out).unwrap(),
        "a second copy came back"
    );
    assert_eq!(db.stats().longest_probe, 1);
}

/// Keys and values of every length around the word size, whole words and a short last one:
/// each found with its own value, byte for byte, and a key that differs from a stored one in
/// its last byte only (or is one byte longer or shorter) not taken for it.
#[test]
fn keys_and_values_of_every_length_round_trip() {
    let (db, _g) = fresh(256);
    let key = |len: usize| -> Vec<u8> { (0..len).map(|i| b'a' + (i % 26) as u8).collect() };
    let value = |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 7 + len) as u8).collect() };
    let lengths: Vec<usize> = (1..=24).chain([63, 64]).collect();
    {
        let mut w = db.lock().unwrap();
        for &len in &lengths {
            w.put(&key(len), &value(len % 21)).unwrap();
        }
    }
    let mut out = vec![0xee; 3]; // get replaces what the buffer held
    for &len in &lengths {
        assert!(db.get(&key(len), &mut out).unwrap(), "{len}-byte key");
        assert_eq!(out, value(len % 21), "{len}-byte key");
        let mut near = key(len);
        *near.last_mut().unwrap() ^= 0x20;
        assert!(!db.get(&near, &mut out).unwrap(), "{len}-byte near miss");
    }
    assert!(!db.get(&key(25), &mut out).unwrap());
}
