//! The counter, the bridge and the default demo, on the real binary.

mod support;

use std::time::Duration;

use common::testkit::{self, Sandbox};
use nix::sys::signal::Signal;
use support::cmd;

/// These start hundreds of processes: a generous deadline for a loaded 2-core machine.
const LONG: Duration = Duration::from_secs(240);

fn run_long(sb: &Sandbox, args: &[&str]) -> std::process::Output {
    testkit::run_with_deadline(&mut cmd(sb, args), b"", LONG)
}

use common::testkit::files_in as leftovers_of;

/// Every start of `counter`, `bridge` or `demo` removes what dead runs left in /dev/shm, on
/// the whole machine: the test that checks what *its* counter removed runs alone, the others
/// share (another test's counter would otherwise sweep its planted leftovers first).
static SWEEPS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// For a test that starts `counter`, `bridge` or `demo`.
fn sweeping() -> std::sync::RwLockReadGuard<'static, ()> {
    SWEEPS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn counter_is_exact_with_a_posix_or_a_sysv_lock() {
    let _sweeps = sweeping();
    for flavor in ["--posix", "--sysv"] {
        let sb = Sandbox::new();
        let out = run_long(
            &sb,
            &["counter", "--procs", "16", "--iters", "10000", flavor],
        );
        let stdout = testkit::stdout(&out);
        assert!(
            out.status.success(),
            "{flavor}: {stdout} {}",
            testkit::stderr(&out)
        );
        let kind = if flavor == "--posix" { "POSIX" } else { "SysV" };
        assert_eq!(
            stdout.trim(),
            format!("ok: expected 160000, got 160000: 0 updates lost ({kind} semaphore)")
        );
        // The database file went with the run.
        assert_eq!(leftovers_of(&sb.runtime_dir()), Vec::<String>::new());
    }
}

#[test]
fn counter_without_a_lock_counts_what_it_lost() {
    let _sweeps = sweeping();
    let sb = Sandbox::new();
    let out = run_long(
        &sb,
        &["counter", "--procs", "4", "--iters", "20000", "--no-lock"],
    );
    assert!(out.status.success(), "{out:?}");
    // "without a lock: expected 80000, got A: L updates lost to the race", with A + L = 80000.
    let line = testkit::stdout(&out);
    let (counted, rest) = line
        .trim()
        .strip_prefix("without a lock: expected 80000, got ")
        .and_then(|r| r.split_once(": "))
        .unwrap_or_else(|| panic!("{line}"));
    let lost: u64 = rest
        .strip_suffix(" updates lost to the race")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(counted.parse::<u64>().unwrap() + lost, 80_000, "{line}");
}

#[test]
fn an_update_can_be_run_by_hand_on_a_file() {
    let sb = Sandbox::new();
    let name = support::unique("upd");
    let _c = support::Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    std::fs::write(sb.join("n"), "41\n").unwrap();
    let out = testkit::run(
        &mut cmd(
            &sb,
            &["update", "--file", "n", "--iters", "1", "--name", &name],
        ),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(sb.join("n")).unwrap(), "42\n");
    std::fs::write(sb.join("bad"), "forty\n").unwrap();
    let out = testkit::run(
        &mut cmd(
            &sb,
            &["update", "--file", "bad", "--iters", "1", "--no-lock"],
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("bad: does not start with a number"),
        "{out:?}"
    );
    std::fs::write(sb.join("max"), format!("{}\n", u64::MAX)).unwrap();
    let out = testkit::run(
        &mut cmd(
            &sb,
            &["update", "--file", "max", "--iters", "1", "--no-lock"],
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("cannot grow any more"),
        "{out:?}"
    );
}

/// An error inside the critical section (the file no longer holds a number) gives the permit
/// back: with POSIX nothing else ever would, and every later update waited forever.
#[test]
fn an_update_that_fails_holding_the_lock_gives_the_permit_back() {
    for flavor in ["--posix", "--sysv"] {
        let sb = Sandbox::new();
        let name = support::unique("updfail");
        let _c = support::Cleanup {
            sb: &sb,
            name: name.clone(),
            flavor,
        };
        std::fs::write(sb.join("n"), "abc\n").unwrap();
        let update = [
            "update", "--file", "n", "--iters", "2", "--name", &name, flavor,
        ];
        let out = testkit::run(&mut cmd(&sb, &update), b"");
        assert_eq!(out.status.code(), Some(1), "{flavor}: {out:?}");
        assert!(
            testkit::stderr(&out).contains("n: does not start with a number"),
            "{flavor}: {out:?}"
        );
        assert_eq!(
            support::value(&sb, &name, flavor),
            1,
            "{flavor}: permit kept"
        );
        // The next updater gets the lock (it used to wait out its deadline).
        std::fs::write(sb.join("n"), "0\n").unwrap();
        let out = testkit::run(&mut cmd(&sb, &update), b"");
        assert!(out.status.success(), "{flavor}: {out:?}");
        assert_eq!(std::fs::read_to_string(sb.join("n")).unwrap(), "2\n");
    }
}

/// The same for a car: a board whose event log is already full makes its entry fail while it
/// holds a lane, and the lane comes back. The board is made here as `bridge` makes it, with
/// one car whose two events are both spent.
#[test]
fn a_car_that_fails_on_the_bridge_gives_its_lane_back() {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    for flavor in ["--posix", "--sysv"] {
        let sb = Sandbox::new();
        let name = support::unique("carfail");
        let _c = support::Cleanup {
            sb: &sb,
            name: name.clone(),
            flavor,
        };
        let board = format!("/dev/shm/{}-{name}", common::names::PREFIX);
        struct Remove(String);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let _board = Remove(board.clone());
        // magic, K = 1, N = 1, state = 2 events and nobody on the bridge, max, over, 2 slots.
        let mut header = u64::from_be_bytes(*b"semboard").to_ne_bytes().to_vec();
        header.extend(1u32.to_ne_bytes());
        header.extend(1u32.to_ne_bytes());
        header.extend((2u64 << 32).to_ne_bytes());
        header.extend([0u8; 8 + 2 * 8]);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&board)
            .and_then(|mut f| f.write_all(&header))
            .unwrap();
        assert_eq!(support::code(&sb, &["post", &name, flavor]), 0);
        let car = [
            "car",
            "--name",
            &name,
            "--board",
            &name,
            "--id",
            "0",
            "--cross-ms",
            "0",
            flavor,
        ];
        let out = testkit::run(&mut cmd(&sb, &car), b"");
        assert_eq!(out.status.code(), Some(1), "{flavor}: {out:?}");
        assert!(
            testkit::stderr(&out).contains("event 2 beyond its log"),
            "{flavor}: {out:?}"
        );
        assert_eq!(support::value(&sb, &name, flavor), 1, "{flavor}: lane kept");
    }
}

#[test]
fn bridge_never_holds_more_than_k_cars_over_200_cars() {
    let _sweeps = sweeping();
    for flavor in ["--posix", "--sysv"] {
        let sb = Sandbox::new();
        let args = [
            "bridge",
            "--cars",
            "200",
            "--lanes",
            "3",
            "--cross-ms",
            "1",
            flavor,
        ];
        let out = run_long(&sb, &args);
        let stdout = testkit::stdout(&out);
        assert!(
            out.status.success(),
            "{flavor}: {stdout} {}",
            testkit::stderr(&out)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        // The timeline: 400 events, each with its occupancy, never above 3.
        assert_eq!(lines.len(), 401, "{stdout}");
        for l in &lines[..400] {
            let occ: u32 = l
                .rsplit_once(' ')
                .and_then(|(_, o)| o.strip_suffix("/3"))
                .and_then(|o| o.parse().ok())
                .unwrap_or_else(|| panic!("{l}"));
            assert!(occ <= 3, "{l}");
        }
        assert!(
            lines[400].starts_with("ok: 200 cars crossed, at most "),
            "{}",
            lines[400]
        );
    }
}

#[test]
fn the_default_demo_plays_everything_and_leaves_nothing() {
    let _sweeps = sweeping();
    let sb = Sandbox::new();
    let out = run_long(&sb, &[]);
    let stdout = testkit::stdout(&out);
    assert!(out.status.success(), "{stdout}\n{}", testkit::stderr(&out));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("ok: counter 20000/20000"), "{last}");
    assert!(stdout.contains("SysV: the next run -> exit 0"), "{stdout}");
    assert!(
        stdout.contains("POSIX: the next run -> exit 1: sem-demo: timed out after 0.5 s"),
        "{stdout}"
    );
    assert!(stdout.contains("4. nothing left"), "{stdout}");
    // The demo's own tag is in its object names; none remain in /dev/shm.
    let tag = stdout
        .split("sem-demo post ")
        .nth(1)
        .and_then(|r| r.split("-held-posix").next())
        .expect("the repair step names the semaphore");
    let left: Vec<_> = leftovers_of(std::path::Path::new("/dev/shm"))
        .into_iter()
        .filter(|f| f.contains(tag))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// SIGINT, SIGTERM or SIGHUP to `counter` mid-run: it stops its updaters, removes its file and
/// semaphore, says so on stderr and exits 128 + the signal's number.
#[test]
fn a_stop_signal_stops_the_counter_removes_its_objects_and_exits_128_plus_n() {
    let _sweeps = sweeping();
    let runs = [
        ("--posix", Signal::SIGTERM),
        ("--sysv", Signal::SIGINT),
        ("--posix", Signal::SIGHUP),
        ("--sysv", Signal::SIGTERM),
    ];
    for (flavor, sig) in runs {
        let sb = Sandbox::new();
        let mut c = cmd(
            &sb,
            &[
                "-v", "counter", "--procs", "2", "--iters", "10000000", flavor,
            ],
        );
        let counter = testkit::spawn(&mut c);
        let mut err = counter.stderr_lines().unwrap();
        // The objects exist, and the updaters are at work once one narrates its first update.
        let created = err
            .wait_for(
                |l| l.contains("O_EXCL") || l.contains("IPC_EXCL"),
                support::WAIT,
            )
            .unwrap();
        let at_work = err
            .wait_for(|l| l.contains("pwrite <-"), support::WAIT)
            .unwrap();
        counter.signal(sig).unwrap();
        let status = counter.wait_timeout(support::WAIT).unwrap();
        assert_eq!(
            status.code(),
            Some(128 + sig as i32),
            "{flavor} {sig}: {status:?}"
        );
        let rest = err.rest(support::WAIT).unwrap();
        assert_eq!(
            rest.last().map(String::as_str),
            Some(format!("sem-demo: interrupted by {sig}").as_str()),
            "{flavor} {sig}: {rest:?}"
        );
        let out = counter.stdout_lines().unwrap().rest(support::WAIT).unwrap();
        assert_eq!(
            out,
            Vec::<String>::new(),
            "{flavor} {sig}: a verdict after a stop"
        );
        support::wait_not_running(&[support::traced_pid(&at_work)], "an updater");
        assert_eq!(leftovers_of(&sb.runtime_dir()), Vec::<String>::new());
        if flavor == "--posix" {
            // "sem_open(/ipc-demo-counter-..., O_CREAT|O_EXCL, 0600, 1) -> created"
            let name = created
                .split("sem_open(/")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            assert!(
                !std::path::Path::new(&format!("/dev/shm/sem.{name}")).exists(),
                "{name}"
            );
        } else {
            let key = created
                .split("semget(")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            let ipcs = support::ipcs();
            assert!(!ipcs.contains(key), "{key} left in ipcs -s:\n{ipcs}");
        }
    }
}

#[test]
fn leftovers_of_a_killed_counter_are_removed_on_the_next_start() {
    let _alone = SWEEPS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let sb = Sandbox::new();
    // A pid that certainly existed and is gone: a shell we ran and reaped.
    let mut probe = std::process::Command::new("sh");
    let out = testkit::run(probe.args(["-c", "echo $$"]), b"");
    let dead: u32 = testkit::stdout(&out).trim().parse().unwrap();
    let tag = format!("sem-counter-{dead}-0-00000");
    // What a counter killed with -9 leaves: its database and its POSIX semaphore.
    std::fs::create_dir_all(sb.runtime_dir()).unwrap();
    std::fs::set_permissions(
        sb.runtime_dir(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let db = sb.runtime_dir().join(format!("{tag}.db"));
    std::fs::write(&db, "17\n").unwrap();
    assert_eq!(support::code(&sb, &["post", &tag]), 0);
    let sem = format!("/dev/shm/sem.ipc-demo-{tag}");
    assert!(std::path::Path::new(&sem).exists());
    let out = run_long(&sb, &["counter", "--procs", "1", "--iters", "1"]);
    assert!(out.status.success(), "{out:?}");
    let err = testkit::stderr(&out);
    assert!(
        err.contains(&format!(
            "removed {}, left by pid {dead} (gone)",
            db.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("removed {sem}, left by pid {dead} (gone)")),
        "{err}"
    );
    assert!(!db.exists() && !std::path::Path::new(&sem).exists());
}

/// `counter` killed with -9 (no destructor runs, its watchdog thread dies with it): its
/// updaters die too instead of going on for minutes as orphans.
#[test]
fn updaters_do_not_outlive_a_killed_counter() {
    let _sweeps = sweeping();
    let sb = Sandbox::new();
    let counter = testkit::spawn(&mut cmd(
        &sb,
        &["-v", "counter", "--procs", "3", "--iters", "10000000"],
    ));
    let mut err = counter.stderr_lines().expect("stderr is piped");
    let mut pids = std::collections::BTreeSet::new();
    while pids.len() < 3 {
        let line = err
            .wait_for(|l| l.contains(" update] sem_open("), support::WAIT)
            .expect("each updater narrates its sem_open");
        pids.insert(support::traced_pid(&line));
    }
    counter
        .signal(nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 counter");
    let pids: Vec<_> = pids.into_iter().collect();
    support::wait_not_running(&pids, "an updater of the killed counter");
    // What kill -9 left (the semaphore, the database) goes with the next start.
    drop(counter);
    let out = run_long(&sb, &["counter", "--procs", "1", "--iters", "1"]);
    assert!(out.status.success(), "{out:?}");
}

/// A stdout nobody reads (a pager stopped, a stalled pipe) does not make a bridge deaf to
/// SIGTERM: it stops at once and removes its semaphore and board (a write(2) that slept on
/// the full pipe would be restarted after the handler, SA_RESTART, and only a second SIGTERM,
/// which exits at once, would end it, leaving both behind).
#[test]
fn sigterm_stops_a_bridge_whose_stdout_is_full() {
    let _sweeps = sweeping();
    use std::os::fd::{AsFd, AsRawFd};
    let sb = Sandbox::new();
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    // One page: the timeline of 200 cars (400 lines) cannot fit.
    let capacity = nix::fcntl::fcntl(read_end.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
        .expect("F_SETPIPE_SZ");
    let mut c = cmd(
        &sb,
        &[
            "-v",
            "bridge",
            "--cars",
            "200",
            "--lanes",
            "50",
            "--cross-ms",
            "0",
        ],
    );
    c.stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped());
    // Not testkit::spawn, which pipes stdout to a reader of its own: ours must stall.
    let opts = common::child::Options {
        deadline: Some(LONG),
        own_group: true,
    };
    let bridge = common::child::Supervised::spawn("bridge", &mut c, opts).expect("spawn");
    let mut err = bridge.stderr_lines().expect("stderr is piped");
    let created = err
        .wait_for(|l| l.contains("O_CREAT|O_EXCL"), support::WAIT)
        .expect("the bridge creates its semaphore");
    // "sem_open(/ipc-demo-sem-bridge-4242-0-1a2b3, O_CREAT|O_EXCL, ...": the tag.
    let tag = created
        .split("sem_open(/ipc-demo-")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("the tag")
        .to_owned();
    // The pipe is full: the bridge has written all it can and waits for room. (Full to
    // within a line: a write of one line, under PIPE_BUF, goes in whole or waits.)
    let give_up = std::time::Instant::now() + LONG;
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer; `queued` is one.
        let rc = unsafe { libc::ioctl(read_end.as_raw_fd(), libc::FIONREAD, &mut queued) };
        assert_eq!(rc, 0, "FIONREAD");
        if queued + 256 >= capacity {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the pipe never filled: {queued}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    bridge.signal(Signal::SIGTERM).expect("SIGTERM");
    let status = bridge.wait_timeout(support::WAIT).expect("wait");
    // Interrupted before it finished: 128 + 15, once its last line has waited its second.
    assert_eq!(status.code(), Some(143), "{status:?}");
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.contains(&tag))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    drop(read_end);
}

/// The demo killed with -9 while a `sem-demo run` it started holds the permit (step 3): the
/// holder and its command stop too, instead of sleeping out their ten minutes with the permit.
/// The instant is made certain by freezing the demo as soon as the holder has its permit: the
/// holder can then no longer be killed by the demo itself.
#[test]
fn the_permit_holder_does_not_outlive_a_killed_demo() {
    let _sweeps = sweeping();
    let sb = Sandbox::new();
    for attempt in 1..=5 {
        let demo = testkit::spawn(&mut cmd(
            &sb,
            &[
                "-v", "demo", "--procs", "2", "--iters", "1", "--cars", "1", "--lanes", "1",
            ],
        ));
        let mut err = demo.stderr_lines().expect("stderr is piped");
        // "[pid 4242 run] semop(sem-demo-...-held-sysv (key 0x1dc0abcd), -1, SEM_UNDO) -> acquired"
        let line = err
            .wait_for(
                |l| l.contains(" run] semop(") && l.contains("acquired"),
                support::WAIT,
            )
            .expect("the holder narrates its permit");
        let frozen = testkit::freeze(demo.pid());
        let holder = support::traced_pid(&line);
        let name = line
            .split("semop(")
            .nth(1)
            .and_then(|r| r.split(" (key").next())
            .expect("the name")
            .to_owned();
        let caught = !testkit::not_running(holder);
        demo.signal(nix::sys::signal::Signal::SIGKILL)
            .expect("kill -9 demo");
        drop(frozen);
        // A failure kills the holder, not its command: that one dies of its death signal.
        support::wait_not_running(&[holder], "the holder of the killed demo");
        drop(demo);
        // The SysV set kill -9 left (the next start cannot tell it is ours), and the rest.
        let out = support::run(&sb, &["unlink", "--sysv", &name]);
        assert!(out.status.success(), "{out:?}");
        let out = run_long(&sb, &["counter", "--procs", "1", "--iters", "1"]);
        assert!(out.status.success(), "{out:?}");
        if caught {
            return;
        }
        eprintln!("attempt {attempt}: the demo had already killed its holder; again");
    }
    panic!("the demo was never caught while its holder held the permit");
}

/// The objects in /dev/shm whose names contain `needle`.
fn shm_objects_with(needle: &str) -> Vec<String> {
    leftovers_of(std::path::Path::new("/dev/shm"))
        .into_iter()
        .filter(|f| f.contains(needle))
        .collect()
}

/// SIGINT, SIGTERM or SIGHUP to `bridge` while its cars are on the bridge: it stops them,
/// removes its semaphore and board, says so on stderr and exits 128 + the signal's number.
/// The instant is certain: the lanes are full of cars crossing for ten seconds.
#[test]
fn a_stop_signal_mid_bridge_stops_the_cars_removes_its_objects_and_exits_128_plus_n() {
    let _sweeps = sweeping();
    for (sig, flavor) in [
        (Signal::SIGINT, "--posix"),
        (Signal::SIGTERM, "--sysv"),
        (Signal::SIGHUP, "--posix"),
    ] {
        let sb = Sandbox::new();
        let args = [
            "-v",
            "bridge",
            "--cars",
            "6",
            "--lanes",
            "3",
            "--cross-ms",
            "10000",
            flavor,
        ];
        let bridge = testkit::spawn(&mut cmd(&sb, &args));
        let mut err = bridge.stderr_lines().unwrap();
        let mut cars = Vec::new();
        while cars.len() < 3 {
            let line = err
                .wait_for(
                    |l| l.contains(" car] car ") && l.contains(" on the bridge"),
                    support::WAIT,
                )
                .unwrap();
            cars.push(support::traced_pid(&line));
        }
        let tag = format!("sem-bridge-{}-", bridge.pid());
        assert_ne!(
            shm_objects_with(&tag),
            Vec::<String>::new(),
            "the board exists"
        );
        bridge.signal(sig).unwrap();
        let status = bridge.wait_timeout(support::WAIT).unwrap();
        assert_eq!(status.code(), Some(128 + sig as i32), "{sig}: {status:?}");
        let rest = err.rest(support::WAIT).unwrap();
        assert_eq!(
            rest.last().map(String::as_str),
            Some(format!("sem-demo: interrupted by {sig}").as_str()),
            "{sig}: {rest:?}"
        );
        let out = bridge.stdout_lines().unwrap().rest(support::WAIT).unwrap();
        assert!(out.iter().all(|l| !l.starts_with("ok:")), "{sig}: {out:?}");
        support::wait_not_running(&cars, "a car of the stopped bridge");
        assert_eq!(shm_objects_with(&tag), Vec::<String>::new(), "{sig}");
        assert_eq!(sb.leftovers(), Vec::<String>::new(), "{sig}");
    }
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal) to the demo while its updaters
/// are at work: every role stops, nothing is left, the last line says the run was interrupted
/// (never a verdict), and the status is 128 + the signal's number: 130, 143, 129.
#[test]
fn a_stop_signal_mid_demo_stops_every_role_leaves_nothing_and_exits_128_plus_n() {
    let _sweeps = sweeping();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let sb = Sandbox::new();
        let args = ["-v", "demo", "--procs", "2", "--iters", "1000000"];
        let demo = testkit::spawn(&mut cmd(&sb, &args));
        let mut stdout = demo.stdout_lines().unwrap();
        let mut err = demo.stderr_lines().unwrap();
        stdout
            .wait_for(|l| l.starts_with("1. counter: "), support::WAIT)
            .unwrap();
        let mut updaters = std::collections::BTreeSet::new();
        while updaters.len() < 2 {
            let line = err
                .wait_for(|l| l.contains(" update] pread("), support::WAIT)
                .unwrap();
            updaters.insert(support::traced_pid(&line));
        }
        // What a terminal does on Ctrl-C: the signal to the demo's process group (its roles
        // have groups of their own).
        demo.signal(sig).unwrap();
        let status = demo.wait_timeout(LONG).unwrap();
        let rest = stdout.rest(support::WAIT).unwrap();
        assert_eq!(
            status.code(),
            Some(128 + sig as i32),
            "{sig}: {status:?} {rest:?}"
        );
        assert_eq!(
            rest.last().map(String::as_str),
            Some(format!("interrupted by {sig} before the check was done").as_str()),
            "{sig}: {rest:?}"
        );
        assert!(
            rest.iter().all(|l| !l.starts_with("ok:")),
            "{sig}: {rest:?}"
        );
        let updaters: Vec<_> = updaters.into_iter().collect();
        support::wait_not_running(&updaters, "an updater of the stopped demo");
        assert_eq!(
            shm_objects_with(&format!("sem-demo-{}-", demo.pid())),
            Vec::<String>::new(),
            "{sig}"
        );
        assert_eq!(sb.leftovers(), Vec::<String>::new(), "{sig}");
    }
}
