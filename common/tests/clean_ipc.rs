//! `make clean-ipc` (common/clean-ipc.sh) against live and dead objects with hostile names.
//!
//! Every object it could remove is made by this test: the runtime dir is a sandbox (through
//! XDG_RUNTIME_DIR), and the POSIX and SysV sweeps are narrowed to this test's own names and
//! keys (CLEAN_IPC_POSIX_PREFIX, CLEAN_IPC_SYSV_KEYS), so tests running beside it keep theirs.
//! The SysV objects left by a dead process are made by `python3` with `sysv_ipc`.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cleanup::{Object, Unlink};
use common::pidfile::PidFile;
use common::testkit::{self, Sandbox};
use nix::fcntl::OFlag;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, shm_open};
use nix::sys::stat::Mode;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/clean-ipc.sh");

/// Names that broke the old script, or could break a careless one: spaces, glob characters,
/// a newline, a leading dash, a backslash.
const NAMES: [&str; 8] = [
    "plain",
    "my kv",
    "app[1]",
    "star*",
    "what?",
    "new\nline",
    "-dash",
    "back\\slash",
];

/// What the script says when it cannot list message queues.
const SKIPPED_QUEUES: &str = "clean-ipc: SKIPPED POSIX message queues: /dev/mqueue is not \
     mounted, so they cannot be listed (as root: mount -t mqueue none /dev/mqueue)\n";

/// Run the script with the sweeps narrowed to what this test made.
fn clean(sb: &Sandbox, posix_prefix: &str, sysv_keys: &str) -> (bool, String) {
    let mut cmd = sb.command("bash");
    cmd.arg(SCRIPT);
    run_narrowed(&mut cmd, posix_prefix, sysv_keys)
}

/// Run `cmd` (the script, or a wrapper that runs it) with the sweeps narrowed; its status,
/// and its stderr then its stdout as one text.
fn run_narrowed(cmd: &mut Command, posix_prefix: &str, sysv_keys: &str) -> (bool, String) {
    cmd.env("CLEAN_IPC_POSIX_PREFIX", posix_prefix)
        .env("CLEAN_IPC_SYSV_KEYS", sysv_keys);
    let out = testkit::run(cmd, b"");
    (
        out.status.success(),
        format!("{}{}", testkit::stderr(&out), testkit::stdout(&out)),
    )
}

/// Say on stderr, past the test harness's capture, what this run could not check and why.
fn skipped(what: &str) {
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("SKIPPED {what}\n").as_bytes(),
    );
}

/// A SysV object of ours, removed when dropped (IPC_RMID).
struct SysV {
    kind: char,
    id: i32,
}

impl Drop for SysV {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID on an id we created takes no buffer (null is allowed for it).
        unsafe {
            match self.kind {
                'm' => libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()),
                'q' => libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()),
                _ => libc::semctl(self.id, 0, libc::IPC_RMID),
            };
        }
    }
}

/// The id of the SysV object of `kind` with `key`, if one exists.
fn sysv_id(kind: char, key: i32) -> Option<i32> {
    // SAFETY: the *get calls without IPC_CREAT only look the key up.
    let id = unsafe {
        match kind {
            'm' => libc::shmget(key, 0, 0),
            'q' => libc::msgget(key, 0),
            _ => libc::semget(key, 0, 0),
        }
    };
    (id >= 0).then_some(id)
}

/// `count` unused keys in our range 0x1dc0xxxx, from the pid so parallel runs differ.
fn free_keys(count: usize) -> Vec<i32> {
    let base = 0x1dc0_0000 + ((std::process::id() as i32 * 7) & 0xff00);
    (base..base + 0x100)
        .filter(|&k| {
            ['m', 'q', 's']
                .iter()
                .all(|&kind| sysv_id(kind, k).is_none())
        })
        .take(count)
        .collect()
}

fn live_path(dir: &Path, kind: &str, name: &str, ext: &str) -> PathBuf {
    dir.join(format!("{kind} {name}.{ext}"))
}

#[test]
fn keeps_what_live_processes_use_and_removes_the_rest_whatever_the_name() {
    let sb = Sandbox::new();
    let rt = sb.runtime_dir();
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();

    // The runtime dir: for each name a live and a dead FIFO, socket and pid file.
    let mut held_fifos = Vec::new();
    let mut listeners = Vec::new();
    let mut pid_files = Vec::new();
    let (mut live, mut dead) = (Vec::new(), Vec::new());
    for name in NAMES {
        for state in ["live", "dead"] {
            let fifo = live_path(&rt, state, name, "fifo");
            nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
            let sock = live_path(&rt, state, name, "sock");
            let listener = UnixListener::bind(&sock).unwrap();
            let pid = live_path(&rt, state, name, "pid");
            if state == "live" {
                // Open read-write, so that opening does not wait for a peer.
                held_fifos.push(
                    std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(&fifo)
                        .unwrap(),
                );
                listeners.push(listener);
                pid_files.push(PidFile::create(&pid).unwrap());
                live.extend([fifo, sock, pid]);
            } else {
                // Closed: the socket file stays with nobody bound to it, as after kill -9.
                drop(listener);
                std::fs::write(&pid, "999999999\n").unwrap();
                std::fs::set_permissions(&pid, std::fs::Permissions::from_mode(0o600)).unwrap();
                dead.extend([fifo, sock, pid]);
            }
        }
    }

    // POSIX: a mapped segment and an open queue live; a closed segment and queue dead.
    let prefix = format!("ipc-demo-cleantest-{}-", std::process::id());
    let shm = |state: &str| format!("/{prefix}{state} shm[*]");
    let mq = |state: &str| format!("/{prefix}{state} mq?");
    let mut posix_guards = Vec::new();
    let mut mappings = Vec::new();
    let mut queues = Vec::new();
    // nix 0.32's mq_open with O_CREAT needs explicit attributes (EINVAL with None).
    let attr = nix::mqueue::MqAttr::new(0, 4, 64, 0);
    for state in ["live", "dead"] {
        let fd: OwnedFd = shm_open(
            shm(state).as_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .unwrap();
        posix_guards.push(Unlink::new(Object::Shm(shm(state))));
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        if state == "live" {
            // SAFETY: a fresh shared mapping of our own segment; nothing else aliases it, and
            // it is unmapped only when the test process ends.
            let map = unsafe {
                mmap(
                    None,
                    std::num::NonZeroUsize::new(4096).unwrap(),
                    ProtFlags::PROT_READ,
                    MapFlags::MAP_SHARED,
                    &fd,
                    0,
                )
            }
            .unwrap();
            mappings.push(map);
        }
        // Closed either way: only the mapping keeps the live one in use.
        drop(fd);
        let q = nix::mqueue::mq_open(
            mq(state).as_str(),
            nix::mqueue::MQ_OFlag::O_CREAT
                | nix::mqueue::MQ_OFlag::O_EXCL
                | nix::mqueue::MQ_OFlag::O_RDWR,
            Mode::S_IRUSR | Mode::S_IWUSR,
            Some(&attr),
        )
        .unwrap();
        posix_guards.push(Unlink::new(Object::Mqueue(mq(state))));
        if state == "live" {
            queues.push(q);
        } else {
            nix::mqueue::mq_close(q).unwrap();
        }
    }

    // SysV: live ones used by this process; dead ones made by a process that has exited; and
    // a semaphore set nobody has operated on yet, which cannot be told from a leftover.
    let keys = free_keys(7);
    assert_eq!(keys.len(), 7, "free SysV keys in our range");
    let [live_m, live_q, live_s, dead_m, dead_q, dead_s, fresh_s] = keys[..] else {
        unreachable!()
    };
    let mut sysv = Vec::new();
    // SAFETY: plain SysV calls on keys we checked are free; the buffers passed are ours and
    // live across each call; the attached segment stays attached until the process ends.
    unsafe {
        let m = libc::shmget(live_m, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
        assert!(m >= 0);
        sysv.push(SysV { kind: 'm', id: m });
        assert_ne!(
            libc::shmat(m, std::ptr::null(), libc::SHM_RDONLY) as isize,
            -1
        );
        let q = libc::msgget(live_q, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
        assert!(q >= 0);
        sysv.push(SysV { kind: 'q', id: q });
        let msg: [libc::c_long; 2] = [1, 0];
        assert_eq!(libc::msgsnd(q, msg.as_ptr().cast(), 1, libc::IPC_NOWAIT), 0);
        for (key, operate) in [(live_s, true), (fresh_s, false)] {
            let s = libc::semget(key, 1, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            assert!(s >= 0);
            sysv.push(SysV { kind: 's', id: s });
            if operate {
                let mut op = libc::sembuf {
                    sem_num: 0,
                    sem_op: 1,
                    sem_flg: 0,
                };
                assert_eq!(libc::semop(s, &mut op, 1), 0);
            }
        }
    }
    let hex = |k: i32| format!("{k:#010x}");
    let made = testkit::run(
        Command::new("python3").args([
            "-c",
            "import sys, sysv_ipc as s\n\
             m, q, e = (int(k, 16) for k in sys.argv[1:])\n\
             s.SharedMemory(m, s.IPC_CREX, 0o600, 4096)\n\
             s.MessageQueue(q, s.IPC_CREX, 0o600).send(b'x')\n\
             s.Semaphore(e, s.IPC_CREX, 0o600, 0).release()\n",
            &hex(dead_m),
            &hex(dead_q),
            &hex(dead_s),
        ]),
        b"",
    );
    assert!(made.status.success(), "{}", testkit::stderr(&made));
    for (kind, key) in [('m', dead_m), ('q', dead_q), ('s', dead_s)] {
        let id = sysv_id(kind, key).expect("python made it");
        sysv.push(SysV { kind, id });
    }

    let all_keys: Vec<String> = keys.iter().map(|&k| hex(k)).collect();
    let (ok, out) = clean(&sb, &prefix, &all_keys.join(" "));
    assert!(ok, "{out}");
    // Without /dev/mqueue the queues cannot be listed: the script says so, and so does the
    // test, which checks everything else (the unmounted case has a test of its own below).
    let queues_listed = common::names::mqueue_listing().is_some();
    if !queues_listed {
        assert!(out.contains(SKIPPED_QUEUES), "{out}");
        skipped(&format!(
            "the message queue half of keeps_what_live_processes_use_and_removes_the_rest: {}",
            common::names::MQUEUE_NOT_MOUNTED
        ));
    }

    for path in &live {
        assert!(
            path.symlink_metadata().is_ok(),
            "removed {path:?}, which a live process uses\n{out}"
        );
    }
    for path in &dead {
        assert!(path.symlink_metadata().is_err(), "kept {path:?}\n{out}");
    }
    let exists = |dir: &str, name: &str| Path::new(dir).join(&name[1..]).exists();
    assert!(exists("/dev/shm", &shm("live")), "{out}");
    assert!(!exists("/dev/shm", &shm("dead")), "{out}");
    if queues_listed {
        assert!(exists("/dev/mqueue", &mq("live")), "{out}");
        assert!(!exists("/dev/mqueue", &mq("dead")), "{out}");
    }
    for (kind, key) in [('m', live_m), ('q', live_q), ('s', live_s), ('s', fresh_s)] {
        assert!(
            sysv_id(kind, key).is_some(),
            "removed live sysv-{kind} {key:#x}\n{out}"
        );
    }
    for (kind, key) in [('m', dead_m), ('q', dead_q), ('s', dead_s)] {
        assert!(
            sysv_id(kind, key).is_none(),
            "kept dead sysv-{kind} {key:#x}\n{out}"
        );
    }
    let queues = usize::from(queues_listed);
    assert!(
        out.ends_with(&format!(
            "clean-ipc: removed {}, kept {} in use\n",
            dead.len() + 1 + queues + 3,
            live.len() + 1 + queues + 4
        )),
        "{out}"
    );
    // A name with a newline is printed on one line, quoted.
    assert!(out.contains("$'"), "{out}");
    drop((
        held_fifos,
        listeners,
        pid_files,
        mappings,
        queues,
        sysv,
        posix_guards,
    ));
}

#[test]
fn a_prefix_or_key_outside_ours_is_refused() {
    let sb = Sandbox::new();
    let (ok, out) = clean(&sb, "other-app-", "none");
    assert!(!ok);
    assert_eq!(
        out,
        "clean-ipc: CLEAN_IPC_POSIX_PREFIX must start with ipc-demo- and hold no /\n"
    );
    let (ok, out) = clean(&sb, "ipc-demo-x-", "0x12345678");
    assert!(!ok);
    assert_eq!(
        out,
        "clean-ipc: CLEAN_IPC_SYSV_KEYS: 0x12345678 is not a key of ours (0x1dxxxxxx)\n"
    );
}

/// `ftok(path, 0x1d)`, the key shm-demo derives from its key file.
fn ftok(path: &Path) -> i32 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    let key = unsafe { libc::ftok(c.as_ptr(), 0x1d) };
    assert_ne!(key, -1, "ftok {path:?}");
    key
}

#[test]
fn key_files_go_with_their_segments_and_stay_while_their_daemon_runs() {
    let sb = Sandbox::new();
    let dir = sb.runtime_dir();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = common::names::unique("ipc-demo-clean-key");
    let live_file = dir.join(format!("{name}-live.sysv"));
    let dead_file = dir.join(format!("{name}-dead.sysv"));
    for f in [&live_file, &dead_file] {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(f)
            .unwrap();
    }
    let (live_key, dead_key) = (ftok(&live_file), ftok(&dead_file));
    for key in [live_key, dead_key] {
        assert!(sysv_id('m', key).is_none(), "{key:#x} is free");
    }
    // The live one: its daemon holds the pid file's lock and has the segment attached.
    let pid_file = PidFile::create(&dir.join(format!("{name}-live.sysv.pid"))).unwrap();
    let mut sysv = Vec::new();
    // SAFETY: plain SysV calls on a key we checked is free; the segment stays attached until
    // the process ends.
    unsafe {
        let m = libc::shmget(live_key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
        assert!(m >= 0);
        sysv.push(SysV { kind: 'm', id: m });
        assert_ne!(
            libc::shmat(m, std::ptr::null(), libc::SHM_RDONLY) as isize,
            -1
        );
    }
    // The dead one: made by a process that has exited, as a server killed with -9 leaves it.
    let made = testkit::run(
        Command::new("python3").args([
            "-c",
            "import sys, sysv_ipc as s\n\
             s.SharedMemory(int(sys.argv[1], 16), s.IPC_CREX, 0o600, 4096)\n",
            &format!("{dead_key:#010x}"),
        ]),
        b"",
    );
    assert!(made.status.success(), "{}", testkit::stderr(&made));
    sysv.push(SysV {
        kind: 'm',
        id: sysv_id('m', dead_key).expect("python made it"),
    });

    let keys = format!("{live_key:#010x} {dead_key:#010x}");
    let (ok, out) = clean(&sb, &format!("{name}-"), &keys);
    assert!(ok, "{out}");
    assert!(
        sysv_id('m', live_key).is_some(),
        "removed a live segment\n{out}"
    );
    assert!(
        live_file.exists(),
        "removed a live daemon's key file\n{out}"
    );
    assert!(
        sysv_id('m', dead_key).is_none(),
        "kept a dead segment\n{out}"
    );
    assert!(!dead_file.exists(), "kept a leftover key file\n{out}");
    drop((pid_file, sysv));
}

/// A fresh machine where nothing is mounted at /dev/mqueue, made here in a private mount
/// namespace (`unshare --mount`, then every mqueue mount on /dev/mqueue undone inside it; the
/// machine's own mounts are untouched): the script says that it skipped the queues, and why,
/// still sweeps everything else, and leaves the queue it could not see alone.
#[test]
fn without_dev_mqueue_the_sweep_says_it_skipped_the_queues_and_does_the_rest() {
    let name = "without_dev_mqueue_the_sweep_says_it_skipped_the_queues_and_does_the_rest";
    if !nix::unistd::geteuid().is_root() {
        skipped(&format!(
            "{name}: a private mount namespace needs root (CI runs as root)"
        ));
        return;
    }
    let probe = testkit::run(Command::new("unshare").args(["--mount", "true"]), b"");
    if !probe.status.success() {
        skipped(&format!(
            "{name}: unshare --mount is refused here: {}",
            testkit::stderr(&probe).trim()
        ));
        return;
    }
    let sb = Sandbox::new();
    let rt = sb.runtime_dir();
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let fifo = rt.join("dead.fifo");
    nix::unistd::mkfifo(&fifo, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    let prefix = format!("{}-", common::names::unique("ipc-demo-cleantest-nomq"));
    let queue = format!("/{prefix}dead");
    let attr = nix::mqueue::MqAttr::new(0, 4, 64, 0);
    let q = nix::mqueue::mq_open(
        queue.as_str(),
        nix::mqueue::MQ_OFlag::O_CREAT | nix::mqueue::MQ_OFlag::O_EXCL,
        Mode::S_IRUSR | Mode::S_IWUSR,
        Some(&attr),
    )
    .unwrap();
    let _guard = Unlink::new(Object::Mqueue(queue.clone()));
    nix::mqueue::mq_close(q).unwrap();

    let mut cmd = sb.command("unshare");
    cmd.args([
        "--mount",
        "sh",
        "-c",
        "while mountpoint -q /dev/mqueue; do umount /dev/mqueue || exit 97; done; \
         exec bash \"$0\"",
        SCRIPT,
    ]);
    let (ok, out) = run_narrowed(&mut cmd, &prefix, "none");
    assert!(ok, "{out}");
    assert!(out.starts_with(SKIPPED_QUEUES), "{out}");
    assert!(!fifo.exists(), "the dead FIFO was not swept\n{out}");
    assert!(
        out.ends_with("clean-ipc: removed 1, kept 0 in use\n"),
        "{out}"
    );
    // Still there: unseen, it was neither removed nor counted.
    let still = nix::mqueue::mq_open(
        queue.as_str(),
        nix::mqueue::MQ_OFlag::O_RDONLY,
        Mode::empty(),
        None,
    );
    assert!(still.is_ok(), "{queue}: {still:?}\n{out}");
    nix::mqueue::mq_close(still.unwrap()).unwrap();
}

/// `fifo-demo demo` runs that died before cleaning up (a second Ctrl-C, SIGKILL) leave their
/// logs and their unlocked `<tag>.pid`: the logs go with the lock. A live run's logs (its
/// lock held), logs kept on purpose (no lock) and a lock still being created (empty) stay.
#[test]
fn the_logs_of_dead_fifo_demo_runs_go_and_the_others_stay() {
    let sb = Sandbox::new();
    let rt = sb.runtime_dir();
    std::fs::create_dir(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = |name: &str, text: &str| {
        let path = rt.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let dead = "fifo-demo-4242-0-0beef";
    let dead_files = [
        file(&format!("{dead}.pid"), "4242\n"),
        file(&format!("{dead}.log"), "a record\n"),
        file(&format!("{dead}.log.1"), "a record\n"),
    ];
    let live = "fifo-demo-4243-1-cafe0";
    let live_lock = PidFile::create(&rt.join(format!("{live}.pid"))).unwrap();
    let creating = "fifo-demo-4244-2-f00d5";
    let kept = [
        file(&format!("{live}.log"), "a record\n"),
        file(&format!("{live}.log.1"), "a record\n"),
        file("fifo-demo-4245-3-12345.log", "kept with --keep\n"),
        file("fifo-demo-4245-3-12345.log.1", "kept with --keep\n"),
        file(&format!("{creating}.log"), ""),
    ];
    // Unlocked and empty: as a run's lock is for an instant, before it is locked.
    let being_created = file(&format!("{creating}.pid"), "");

    let prefix = format!("{}-", common::names::unique("ipc-demo-cleantest-runs"));
    let (ok, out) = clean(&sb, &prefix, "none");
    assert!(ok, "{out}");
    for path in &dead_files {
        assert!(!path.exists(), "kept {path:?}\n{out}");
    }
    for path in &kept {
        assert!(path.exists(), "removed {path:?}\n{out}");
    }
    for log in [&dead_files[1], &dead_files[2]] {
        assert!(
            out.contains(&format!(
                "removed log of a dead fifo-demo run {}\n",
                log.display()
            )),
            "{out}"
        );
    }
    // The empty lock is an unlocked pid file like any other, and goes as one; its run's log
    // does not.
    assert!(!being_created.exists(), "{out}");
    assert!(
        out.ends_with("clean-ipc: removed 4, kept 1 in use\n"),
        "{out}"
    );
    drop(live_lock);
}
