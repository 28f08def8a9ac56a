//! The shm-demo benchmark: `get` of a ~100-byte value from an attached mapping, side by side
//! in one run with its peers, then readers under a flat-out writer, puts, and watch's wake-up.
//!
//! Run it with `bash shm-demo/bench/get.sh` (which builds it with `cargo bench --no-run`).
//! Rows, each for `BENCH_SECS` seconds (default 2) of the measuring thread's CPU time (the
//! in-process rows) or of wall-clock time (the rows with several processes or a socket). The
//! in-process rows that are compared run in turn, in 10 rounds of a tenth of that each, and
//! each one's figure is the median of its rounds:
//!
//! - shm-demo `Db::get` (seqlock read, no lock, no syscall) on 1000 keys in random order;
//! - an in-process `HashMap<Vec<u8>, Vec<u8>>` lookup plus a copy of the value (the floor);
//! - LMDB through heed: a read transaction per get, and one per 1000 gets;
//! - hits and misses in a table of 2048 slots that was filled, emptied, refilled and emptied
//!   before it got the 1000 keys, beside one that only ever held them (deletes must leave
//!   lookups as short as in a fresh table);
//! - socket-demo's GET over its Unix socket, one request per round trip (`SOCKET_DEMO_BIN`);
//! - gets/s of 1 and 2 reader *processes* while a writer process puts flat out, and puts/s;
//! - watch's wake-up: a put -> FUTEX_WAKE -> the watcher process reads the value, against a
//!   line written to a pipe -> the reader process wakes; median and p99 of 10000.
//!
//! The child processes are this same binary, started with `child ROLE ...`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::time::ClockId;

use common::cleanup::{Object, Unlink};
use common::names;
use shm_demo::db::{self, Db};
use shm_demo::layout::{self, Geometry};
use shm_demo::segment::{self, Flavor, Target};

const KEYS: usize = 1000;
const VALUE_LEN: usize = 100;
const LATENCY_SAMPLES: usize = 10_000;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:06}").into_bytes()
}

fn value(i: usize, round: u64) -> Vec<u8> {
    let mut v = format!("value {i} round {round} ").into_bytes();
    v.resize(VALUE_LEN, b'.');
    v
}

/// A random order of key indices (xorshift), so lookups do not walk the table in order.
fn order() -> Vec<usize> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1 << 16)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % KEYS as u64) as usize
        })
        .collect()
}

/// Set by SIGINT/SIGTERM: the rows end early and `main` returns, so the guard removes the
/// segment (a benchmark killed mid-run must not leave it in /dev/shm).
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn stopped() -> bool {
    STOP.get().is_some_and(|s| s.load(Ordering::Relaxed))
}

fn secs() -> f64 {
    std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0)
}

/// Rounds of each in-process row. The rows compared with each other run in turn, one round
/// each, `ROUNDS` times, and each row's figure is the median of its rounds: a change in the
/// machine's speed (the other tenants' builds) falls on all of them alike.
const ROUNDS: usize = 10;

/// Run `op` on keys in random order for `limit`; gets per second.
///
/// Timed by this thread's CPU clock: on a shared machine the wall clock would also count the
/// time other processes had the CPU.
fn rate(keys: &[Vec<u8>], order: &[usize], limit: Duration, op: impl FnMut(&[u8])) -> f64 {
    rate_by(ClockId::CLOCK_THREAD_CPUTIME_ID, limit, keys, order, op)
}

/// [`rate`] by the wall clock, for `secs()`: for processes that run side by side and share
/// the CPUs.
fn rate_wall(keys: &[Vec<u8>], order: &[usize], op: impl FnMut(&[u8])) -> f64 {
    let limit = Duration::from_secs_f64(secs());
    rate_by(ClockId::CLOCK_MONOTONIC, limit, keys, order, op)
}

fn rate_by(
    clock: ClockId,
    limit: Duration,
    keys: &[Vec<u8>],
    order: &[usize],
    mut op: impl FnMut(&[u8]),
) -> f64 {
    let now = || Duration::from(nix::time::clock_gettime(clock).expect("clock_gettime"));
    let start = now();
    let mut n = 0u64;
    while now() - start < limit && !stopped() {
        for &i in order {
            op(&keys[i]);
        }
        n += order.len() as u64;
    }
    n as f64 / (now() - start).as_secs_f64()
}

/// A row of `Db::get`s of `keys` in `order`, each of which must find its key (`want`) or
/// find it missing.
fn gets<'a>(
    db: &'a Db,
    keys: &'a [Vec<u8>],
    order: &'a [usize],
    want: bool,
) -> impl FnMut(Duration) -> f64 + 'a {
    let mut buf = Vec::with_capacity(1024);
    move |limit| {
        rate(keys, order, limit, |k| {
            assert_eq!(db.get(k, &mut buf).expect("get"), want);
        })
    }
}

/// One row of an interleaved comparison: it runs for the time it is given, and returns its
/// rate.
type Row<'a> = &'a mut dyn FnMut(Duration) -> f64;

/// Run `rows` in turn, `ROUNDS` times, each for `secs() / ROUNDS` per round; each row's median.
fn interleaved(rows: &mut [Row<'_>]) -> Vec<f64> {
    let slice = Duration::from_secs_f64(secs() / ROUNDS as f64);
    let mut rates = vec![Vec::with_capacity(ROUNDS); rows.len()];
    for _ in 0..ROUNDS {
        for (row, rates) in rows.iter_mut().zip(&mut rates) {
            rates.push(row(slice));
        }
    }
    rates
        .into_iter()
        .map(|mut r| {
            r.sort_by(f64::total_cmp);
            (r[(r.len() - 1) / 2] + r[r.len() / 2]) / 2.0
        })
        .collect()
}

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("clock_gettime");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// A new segment named `name` of `slots` slots with `keys` (key `i` holding `value(i, 0)`),
/// and the guard that removes it.
fn filled(name: &str, slots: u32, value_max: u32, keys: &[Vec<u8>]) -> (Db, Unlink) {
    let target = Target::new(name, Flavor::Posix).expect("name");
    let geo = Geometry::new(slots, layout::KEY_MAX, value_max).expect("geometry");
    let region = segment::create(&target, geo.total_size)
        .expect("create")
        .expect("a fresh name");
    let guard = Unlink::new(Object::Shm(name.to_owned()));
    let db = Db::init(region, geo).expect("init");
    {
        let mut w = db.lock().expect("lock");
        for (i, k) in keys.iter().enumerate() {
            w.put(k, &value(i, 0)).expect("put");
        }
    }
    (db, guard)
}

fn attach(name: &str) -> Db {
    let target = Target::new(name, Flavor::Posix).expect("name");
    Db::attach(segment::open(&target).expect("open")).expect("attach")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2..]);
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).expect("sigaction");
    }
    let _ = STOP.set(stop);
    let name = names::posix_name(&names::unique("bench"));
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    // The default geometry (value max 1024: records of 1120 bytes), and one sized to these
    // values (value max 128: records of 224 bytes, five times denser in the caches and TLB).
    let (db, _guard) = filled(&name, 4096, layout::VALUE_MAX, &keys);
    let name_small = names::posix_name(&names::unique("bench"));
    let (small, _guard_small) = filled(&name_small, 4096, 128, &keys);
    let geo = *db.geometry();
    let order = order();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "shm-demo get benchmark: {KEYS} keys, {VALUE_LEN}-byte values, {} s per row \
         (in-process rows: medians of {ROUNDS} rounds, alternating), {cpus} CPUs; \
         {} slots of {} bytes (value max {})",
        secs(),
        geo.slots,
        geo.record_size,
        geo.value_max
    );
    let row = |what: &str, per_s: f64| {
        if stopped() {
            println!("  {what:<58} (interrupted)");
            return per_s;
        }
        println!("  {what:<58} {per_s:>14.0} /s {:>9.1} ns", 1e9 / per_s);
        per_s
    };

    let map: HashMap<Vec<u8>, Vec<u8>> = (0..KEYS).map(|i| (key(i), value(i, 0))).collect();
    let dir = tempfile_dir();
    // SAFETY: heed's contract for `open`: the environment is opened once in this process and
    // nobody else touches its files (a fresh directory of our own, removed at the end).
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(64 << 20)
            .max_dbs(1)
            .open(&dir.0)
            .expect("LMDB env")
    };
    let mut wtxn = env.write_txn().expect("write txn");
    let lmdb: heed::Database<heed::types::Bytes, heed::types::Bytes> =
        env.create_database(&mut wtxn, None).expect("LMDB db");
    for (i, k) in keys.iter().enumerate() {
        lmdb.put(&mut wtxn, k, &value(i, 0)).expect("LMDB put");
    }
    wtxn.commit().expect("commit");

    // The get and its peers, one round each in turn.
    let figures = {
        let mut shm = gets(&db, &keys, &order, true);
        let mut shm_small = gets(&small, &keys, &order, true);
        let mut buf = Vec::with_capacity(1024);
        let mut hash_map = |limit| {
            rate(&keys, &order, limit, |k| {
                buf.clear();
                buf.extend_from_slice(map.get(k).expect("present"));
                std::hint::black_box(&buf);
            })
        };
        let mut buf = Vec::with_capacity(1024);
        let mut lmdb_txn = |limit| {
            rate(&keys, &order, limit, |k| {
                let rtxn = env.read_txn().expect("read txn");
                buf.clear();
                buf.extend_from_slice(lmdb.get(&rtxn, k).expect("get").expect("present"));
            })
        };
        let mut buf = Vec::with_capacity(1024);
        let mut lmdb_shared = |limit| {
            // Its transaction ends with its round: LMDB allows a thread one read transaction
            // at a time, and the row before opens its own.
            let mut gets_in_txn = 0;
            let mut rtxn = Some(env.read_txn().expect("read txn"));
            rate(&keys, &order, limit, |k| {
                if gets_in_txn == 1000 {
                    drop(rtxn.take());
                    rtxn = Some(env.read_txn().expect("read txn"));
                    gets_in_txn = 0;
                }
                gets_in_txn += 1;
                let txn = rtxn.as_ref().expect("txn");
                buf.clear();
                buf.extend_from_slice(lmdb.get(txn, k).expect("get").expect("present"));
            })
        };
        interleaved(&mut [
            &mut shm,
            &mut shm_small,
            &mut hash_map,
            &mut lmdb_txn,
            &mut lmdb_shared,
        ])
    };
    let shm = row("shm-demo get (seqlock, attached mapping)", figures[0]);
    let shm_small = row(
        "shm-demo get, --value-max 128 (records of 224 bytes)",
        figures[1],
    );
    let hash = row("HashMap lookup + copy (in-process)", figures[2]);
    let lmdb_txn = row("LMDB (heed) get, one read txn per get", figures[3]);
    let lmdb_shared = row("LMDB (heed) get, one read txn per 1000 gets", figures[4]);
    if stopped() {
        return;
    }

    let socket = socket_demo_row(&keys, &order, &dir.0).map(|r| {
        row(
            "socket-demo GET over its Unix socket (1 round trip each)",
            r,
        )
    });

    println!("ratios:");
    println!(
        "  shm-demo / LMDB txn-per-get gets/s: {:.2} (goal >= 1); / LMDB shared txn: {:.2}",
        shm / lmdb_txn,
        shm / lmdb_shared
    );
    println!(
        "  shm-demo time / HashMap time: {:.2} (goal <= 2); with --value-max 128: {:.2}",
        hash / shm,
        hash / shm_small
    );
    if let Some(s) = socket {
        println!("  shm-demo / socket-demo gets/s: {:.0}", shm / s);
    }

    if stopped() {
        return;
    }
    reclaim_rows(&keys, &order, &row);

    if stopped() {
        return;
    }
    println!("under a flat-out writer process (reader processes, own mappings):");
    for readers in [1, 2] {
        let (gets, puts) = concurrent(&name, readers);
        println!(
            "  {readers} reader(s) + 1 writer: {gets:>12.0} gets/s in all, \
             writer {puts:>10.0} puts/s"
        );
    }
    let solo = {
        let mut w_round = 0u64;
        let mut i = 0;
        rate(&keys, &order, Duration::from_secs_f64(secs()), |k| {
            i = (i + 1) % KEYS;
            if i == 0 {
                w_round += 1;
            }
            db.lock()
                .expect("lock")
                .put(k, &value(i, w_round))
                .expect("put");
        })
    };
    println!("  puts/s, one writer alone (lock, undo image, seqlock write, unlock): {solo:.0}");

    if stopped() {
        return;
    }
    let (w50, w99) = watch_latency(&name);
    let (p50, p99) = pipe_latency();
    println!(
        "wake-up latency, {LATENCY_SAMPLES} samples (put/write -> the other process has the value):"
    );
    println!("  watch (futex in the segment): median {w50:.1} us, p99 {w99:.1} us");
    println!("  pipe (write -> read):         median {p50:.1} us, p99 {p99:.1} us");
    println!("  ratio watch/pipe median: {:.2}", w50 / p50);
}

/// Deletes reclaim their slots: gets in a table of 2048 slots that was filled, emptied,
/// refilled and emptied again before it was given the benchmark's keys, beside a table of the
/// same size that only ever held them; hits (the stored keys) and misses (keys never stored),
/// alternating. With tombstones, every miss (and put) in the first table read all 2048 slots.
fn reclaim_rows(keys: &[Vec<u8>], order: &[usize], row: &dyn Fn(&str, f64) -> f64) {
    const SLOTS: u32 = 2048;
    let (fresh, _guard) = filled(
        &names::posix_name(&names::unique("bench")),
        SLOTS,
        layout::VALUE_MAX,
        keys,
    );
    let fill: Vec<Vec<u8>> = (0..SLOTS as usize)
        .map(|i| format!("fill:{i:06}").into_bytes())
        .collect();
    let (churned, _guard_churned) = filled(
        &names::posix_name(&names::unique("bench")),
        SLOTS,
        layout::VALUE_MAX,
        &[],
    );
    {
        let mut w = churned.lock().expect("lock");
        for _ in 0..2 {
            for k in &fill {
                w.put(k, b"x").expect("put");
            }
            for k in &fill {
                assert!(w.del(k).expect("del"));
            }
        }
        for (i, k) in keys.iter().enumerate() {
            w.put(k, &value(i, 0)).expect("put");
        }
    }
    let absent: Vec<Vec<u8>> = (0..keys.len())
        .map(|i| format!("absent:{i:06}").into_bytes())
        .collect();
    let figures = interleaved(&mut [
        &mut gets(&fresh, keys, order, true),
        &mut gets(&churned, keys, order, true),
        &mut gets(&fresh, &absent, order, false),
        &mut gets(&churned, &absent, order, false),
    ]);
    println!(
        "deletes reclaim their slots ({SLOTS} slots; longest probe {} fresh, {} after the \
         deletes):",
        fresh.longest_probe(),
        churned.longest_probe()
    );
    let hit = row("hit, fresh table", figures[0]);
    let hit_after = row("hit, after fill/delete all/refill/delete all", figures[1]);
    let miss = row("miss, fresh table", figures[2]);
    let miss_after = row("miss, after fill/delete all/refill/delete all", figures[3]);
    println!(
        "  after the deletes / fresh, gets/s: hits {:.2}, misses {:.2} (goal >= 0.5: within 2x)",
        hit_after / hit,
        miss_after / miss
    );
}

/// A temporary directory for LMDB and socket-demo's socket, removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> TempDir {
    let dir = std::env::temp_dir().join(names::unique("shm-bench-lmdb"));
    std::fs::create_dir(&dir).expect("mkdir");
    TempDir(dir)
}

/// socket-demo's server on a Unix socket, loaded with the same keys; GET one at a time.
fn socket_demo_row(keys: &[Vec<u8>], order: &[usize], dir: &Path) -> Option<f64> {
    let bin = std::env::var_os("SOCKET_DEMO_BIN")?;
    if !Path::new(&bin).exists() {
        eprintln!(
            "(no socket-demo row: {} not found)",
            Path::new(&bin).display()
        );
        return None;
    }
    let sock = dir.join("kv.sock");
    let mut server = Command::new(&bin)
        .arg("server")
        .arg("--unix")
        .arg(&sock)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn socket-demo");
    let start = Instant::now();
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("connect {}: {e}", sock.display()),
        }
    };
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let v = value(i, 0);
        let mut req = format!("*3\r\n$3\r\nSET\r\n${}\r\n", k.len()).into_bytes();
        req.extend_from_slice(k);
        req.extend_from_slice(format!("\r\n${}\r\n", v.len()).as_bytes());
        req.extend_from_slice(&v);
        req.extend_from_slice(b"\r\n");
        writer.write_all(&req).expect("SET");
        line.clear();
        reader.read_until(b'\n', &mut line).expect("SET reply");
    }
    let requests: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| {
            let mut r = format!("*2\r\n$3\r\nGET\r\n${}\r\n", k.len()).into_bytes();
            r.extend_from_slice(k);
            r.extend_from_slice(b"\r\n");
            r
        })
        .collect();
    let mut body = vec![0u8; VALUE_LEN + 2];
    let idx: Vec<usize> = order.to_vec();
    let limit = Duration::from_secs_f64(secs());
    let t = Instant::now();
    let mut n = 0u64;
    'outer: while t.elapsed() < limit {
        for &i in &idx {
            writer.write_all(&requests[i]).expect("GET");
            line.clear();
            reader.read_until(b'\n', &mut line).expect("GET reply");
            assert_eq!(line, format!("${VALUE_LEN}\r\n").as_bytes());
            reader.read_exact(&mut body).expect("GET body");
            n += 1;
            if n % 1024 == 0 && t.elapsed() >= limit {
                break 'outer;
            }
        }
    }
    let r = n as f64 / t.elapsed().as_secs_f64();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = server.wait();
    Some(r)
}

/// Start this binary as `child ARGS...` with its stdout piped.
fn spawn_child(args: &[&str]) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .arg("child")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

fn last_number(child: std::process::Child) -> f64 {
    let out = child.wait_with_output().expect("child output");
    assert!(out.status.success(), "child failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()
        .and_then(|w| w.parse().ok())
        .expect("a number")
}

/// `readers` reader processes and one writer process, all for `secs()`.
fn concurrent(name: &str, readers: usize) -> (f64, f64) {
    let s = secs().to_string();
    let writer = spawn_child(&["writer", name, &s]);
    let rs: Vec<_> = (0..readers)
        .map(|_| spawn_child(&["reader", name, &s]))
        .collect();
    let gets: f64 = rs.into_iter().map(last_number).sum();
    (gets, last_number(writer))
}

/// Child roles: `reader NAME SECS`, `writer NAME SECS` (print a rate), `watcher NAME N`,
/// `pipe-reader N` (print latencies).
fn child(args: &[String]) {
    let role = args[0].as_str();
    match role {
        "reader" | "writer" => {
            let db = attach(&args[1]);
            let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
            let order = order();
            let mut buf = Vec::new();
            let mut round = 0u64;
            let mut i = 0;
            let r = rate_wall(&keys, &order, |k| {
                if role == "reader" {
                    assert!(db.get(k, &mut buf).expect("get"));
                } else {
                    i = (i + 1) % KEYS;
                    if i == 0 {
                        round += 1;
                    }
                    db.lock()
                        .expect("lock")
                        .put(k, &value(i, round))
                        .expect("put");
                }
            });
            println!("{r}");
        }
        "watcher" => {
            // Sleep on ping's word; on each new ping, note the latency from the stamp in the
            // value and answer through ack.
            let db = attach(&args[1]);
            let n: usize = args[2].parse().expect("N");
            let word = db.notify_word(b"ping").expect("word");
            let mut lat = Vec::with_capacity(n);
            let mut buf = Vec::new();
            let mut next = 1u64;
            while lat.len() < n {
                let v = db::notify::arm(word);
                if db.get(b"ping", &mut buf).expect("get") {
                    let (seq, stamp) = parse_ping(&buf);
                    if seq == next {
                        lat.push(monotonic_ns() - stamp);
                        db.lock()
                            .expect("lock")
                            .put(b"ack", &seq.to_le_bytes())
                            .expect("put");
                        next += 1;
                        continue;
                    }
                }
                let _ = db::notify::futex_wait(word, v);
            }
            print_latencies(&mut lat);
        }
        "pipe-reader" => {
            let n: usize = args[1].parse().expect("N");
            let mut stdin = std::io::stdin().lock();
            let mut lat = Vec::with_capacity(n);
            let mut b = [0u8; 8];
            for _ in 0..n {
                stdin.read_exact(&mut b).expect("read");
                lat.push(monotonic_ns() - u64::from_le_bytes(b));
                // The ack: one byte on stderr, which the parent reads.
                std::io::stderr().write_all(b"k").expect("ack");
            }
            print_latencies(&mut lat);
        }
        other => panic!("unknown child role {other}"),
    }
}

fn parse_ping(v: &[u8]) -> (u64, u64) {
    let seq = u64::from_le_bytes(v[..8].try_into().expect("8 bytes"));
    let stamp = u64::from_le_bytes(v[8..16].try_into().expect("8 bytes"));
    (seq, stamp)
}

fn print_latencies(lat: &mut [u64]) {
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!("{} {}", p(0.5), p(0.99));
}

fn two_numbers(out: &[u8]) -> (f64, f64) {
    let text = String::from_utf8_lossy(out);
    let mut it = text
        .split_whitespace()
        .map(|w| w.parse::<f64>().expect("number"));
    (it.next().expect("p50"), it.next().expect("p99"))
}

/// Put pings with a timestamp; the watcher process wakes on its futex and acks through
/// another key, on whose word we sleep in turn.
fn watch_latency(name: &str) -> (f64, f64) {
    let db = attach(name);
    let watcher = spawn_child(&["watcher", name, &LATENCY_SAMPLES.to_string()]);
    let ack = db.notify_word(b"ack").expect("word");
    let mut buf = Vec::new();
    for seq in 1..=LATENCY_SAMPLES as u64 {
        let mut v = seq.to_le_bytes().to_vec();
        v.extend_from_slice(&monotonic_ns().to_le_bytes());
        db.lock().expect("lock").put(b"ping", &v).expect("put");
        loop {
            let w = db::notify::arm(ack);
            if db.get(b"ack", &mut buf).expect("get") && buf == seq.to_le_bytes() {
                break;
            }
            let _ = db::notify::futex_wait(ack, w);
        }
    }
    let out = watcher.wait_with_output().expect("watcher");
    let _ = ack.load(Ordering::Relaxed);
    two_numbers(&out.stdout)
}

/// The same round trip through pipes: a stamp written to the child's stdin, a byte back on
/// its stderr.
fn pipe_latency() -> (f64, f64) {
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["child", "pipe-reader", &LATENCY_SAMPLES.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut acks = child.stderr.take().expect("stderr");
    let mut b = [0u8; 1];
    for _ in 0..LATENCY_SAMPLES {
        stdin
            .write_all(&monotonic_ns().to_le_bytes())
            .expect("write");
        acks.read_exact(&mut b).expect("ack");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("pipe child");
    two_numbers(&out.stdout)
}
