//! The SysV initialisation race, made certain: the test itself plays a creator stopped or
//! killed between `semget(IPC_CREAT|IPC_EXCL)` and its initialisation, and one that made its
//! set the old way (`SETALL`, then `semop`) and stopped or died between the two.

mod support;

use common::testkit::{self, Sandbox};
use nix::errno::Errno;
use support::{WAIT, cmd, code, key_of, unique, value};

/// The key and the two name-check values of NAME, read from a set that `sem-demo post`
/// creates (then removed), so the test does not repeat the hash.
fn key_and_check(sb: &Sandbox, name: &str) -> (libc::key_t, [libc::c_ushort; 2]) {
    assert_eq!(code(sb, &["post", name, "--sysv"]), 0);
    let key = i32::from_str_radix(key_of(sb, name).trim_start_matches("0x"), 16).unwrap();
    // SAFETY: semget/semctl(GETVAL) take plain integers and touch no memory of ours.
    let check = unsafe {
        let id = libc::semget(key, 0, 0);
        assert!(id >= 0);
        [
            libc::semctl(id, 2, libc::GETVAL) as u16,
            libc::semctl(id, 3, libc::GETVAL) as u16,
        ]
    };
    assert_eq!(code(sb, &["unlink", name, "--sysv"]), 0);
    (key, check)
}

/// What a creator does first: the set exists, all zero, sem_otime 0.
fn create_bare(key: libc::key_t) -> i32 {
    // SAFETY: plain integers in, an id out.
    let id = unsafe { libc::semget(key, 4, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "semget: {}", Errno::last());
    id
}

/// Run `op` in a child process that exits at once (0 if `op` returned true): a set it
/// touched records a pid that is gone, as a creator killed there would leave it. `op` must
/// make only async-signal-safe calls: this test process has other threads.
fn in_a_child_that_exits(op: impl FnOnce() -> bool) {
    // SAFETY: the child runs `op` (async-signal-safe calls only, on data prepared before the
    // fork) and _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = op();
            // SAFETY: _exit ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}

/// A creator's first step, by a process that exits at once: one killed between its two calls.
fn create_bare_and_die(key: libc::key_t) -> i32 {
    // SAFETY: semget takes plain integers and is async-signal-safe.
    in_a_child_that_exits(|| unsafe {
        libc::semget(key, 4, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) >= 0
    });
    // SAFETY: as above.
    let id = unsafe { libc::semget(key, 0, 0) };
    assert!(id >= 0, "semget: {}", Errno::last());
    id
}

/// `sem-demo -v run --name NAME [ARGS...] -- echo ran`, which must succeed, print `ran`, and
/// narrate `said`.
fn run_narrating(sb: &Sandbox, name: &str, args: &[&str], said: &str) {
    let mut c = cmd(sb, &["-v", "run", "--name", name]);
    c.args(args).args(["--", "echo", "ran"]);
    let out = testkit::run(&mut c, b"");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(testkit::stdout(&out), "ran\n");
    assert!(
        testkit::stderr(&out).contains(said),
        "{said:?} not in {}",
        testkit::stderr(&out)
    );
}

/// The old way's first step after semget: SETALL (which records our pid as the setter).
fn setall(id: i32, values: [libc::c_ushort; 4]) {
    let mut values = values;
    // SAFETY: SETALL reads four unsigned shorts from `values`.
    let rc = unsafe { libc::semctl(id, 0, libc::SETALL, values.as_mut_ptr()) };
    assert_eq!(rc, 0, "SETALL: {}", Errno::last());
}

/// Its second: one semop that changes nothing, which sets sem_otime.
fn first_semop(id: i32) {
    let mut ops = [
        libc::sembuf {
            sem_num: 1,
            sem_op: 1,
            sem_flg: 0,
        },
        libc::sembuf {
            sem_num: 1,
            sem_op: -1,
            sem_flg: 0,
        },
    ];
    // SAFETY: semop reads two sembufs from `ops`.
    assert_eq!(unsafe { libc::semop(id, ops.as_mut_ptr(), 2) }, 0);
}

/// The old way, both steps.
fn initialise(id: i32, values: [libc::c_ushort; 4]) {
    setall(id, values);
    first_semop(id);
}

/// Whether a set exists at `key`.
fn exists(key: libc::key_t) -> bool {
    // SAFETY: plain integers in, an id out.
    unsafe { libc::semget(key, 0, 0) >= 0 }
}

struct Rmid(i32);
impl Drop for Rmid {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no fourth argument; an already removed id just fails.
        unsafe { libc::semctl(self.0, 0, libc::IPC_RMID) };
    }
}

/// A creator killed between `semget` and its initialisation leaves a set whose values are all
/// 0 and which records no pid (`sempid` 0): nobody can tell it from a slow creator, and openers
/// used to wait 10 s for it, then fail. Now the next `run` initialises it itself, in the one
/// semop that succeeds only on a set nobody initialised; the creator, had it lived, would find
/// its own initialisation refused (EAGAIN) rather than add its permits a second time.
#[test]
fn a_set_left_uninitialised_after_semget_is_initialised_by_the_next_run() {
    let sb = Sandbox::new();
    let name = unique("bare");
    let (key, _) = key_and_check(&sb, &name);
    let id = create_bare_and_die(key);
    let _rm = Rmid(id);
    run_narrating(&sb, &name, &["--limit", "2"], "initialising it ourselves");
    assert_eq!(value(&sb, &name, "--sysv"), 2);
    // The creator's own initialisation, late: "semaphore 2 is 0" no longer holds.
    let mut ops = [
        libc::sembuf {
            sem_num: 2,
            sem_op: 0,
            sem_flg: libc::IPC_NOWAIT as i16,
        },
        libc::sembuf {
            sem_num: 0,
            sem_op: 2,
            sem_flg: 0,
        },
    ];
    // SAFETY: semop reads two sembufs from `ops`.
    let rc = unsafe { libc::semop(id, ops.as_mut_ptr(), 2) };
    assert_eq!((rc, Errno::last()), (-1, Errno::EAGAIN));
    assert_eq!(value(&sb, &name, "--sysv"), 2);
    // The same run again: K is 2, recorded by whoever initialised it.
    assert_eq!(
        code(&sb, &["run", "--name", &name, "--limit", "2", "--", "true"]),
        0
    );
}

/// A set made the old way (`SETALL`, then `semop`) by a process that is still alive and
/// stopped between the two: a `run` waits for it, since only that process can finish it.
#[test]
fn a_run_waits_for_a_live_creator_between_setall_and_semop() {
    let sb = Sandbox::new();
    let name = unique("init");
    let (key, check) = key_and_check(&sb, &name);
    let id = create_bare(key);
    let _rm = Rmid(id);
    setall(id, [2, 2, check[0], check[1]]);
    let runner = testkit::spawn(&mut cmd(
        &sb,
        &["-v", "run", "--name", &name, "--", "echo", "ran"],
    ));
    let mut err = runner.stderr_lines().unwrap();
    err.wait_for(|l| l.contains("not initialised yet"), WAIT)
        .unwrap();
    // It found the set, saw sem_otime 0, and waits: it has not taken a permit of a set not
    // yet initialised, nor run the command.
    assert!(runner.try_wait().unwrap().is_none());
    first_semop(id);
    let status = runner.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}: {:?}", err.rest(WAIT));
    assert_eq!(value(&sb, &name, "--sysv"), 2);
}

/// `sem-demo unlink --sysv NAME` removes a set that was never initialised, at once, instead of
/// waiting for it (for 10 s, and then failing with the message that advised it): one left by
/// a creator killed after semget, and one made the old way whose maker lives and never
/// finishes. A set of another name is still refused, initialised or not.
#[test]
fn unlink_removes_a_set_never_initialised_without_waiting() {
    let sb = Sandbox::new();
    let name = unique("unl");
    let (key, check) = key_and_check(&sb, &name);
    let id = create_bare_and_die(key);
    let _rm = Rmid(id);
    assert_eq!(code(&sb, &["unlink", "--sysv", &name]), 0);
    assert!(!exists(key), "the bare set is gone");

    let id = create_bare(key);
    let _rm = Rmid(id);
    setall(id, [1, 1, check[0], check[1]]);
    let out = testkit::run(&mut cmd(&sb, &["-v", "unlink", "--sysv", &name]), b"");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !testkit::stderr(&out).contains("waiting"),
        "{}",
        testkit::stderr(&out)
    );
    assert!(!exists(key), "the half-made set is gone");

    let id = create_bare(key);
    let _rm = Rmid(id);
    setall(id, [1, 1, check[0] ^ 1, check[1]]);
    let out = testkit::run(&mut cmd(&sb, &["unlink", "--sysv", &name]), b"");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        testkit::stderr(&out).contains("belongs to another name"),
        "{out:?}"
    );
    assert!(exists(key), "another name's set is kept");
}

#[test]
fn a_set_of_another_name_at_our_key_is_refused() {
    let sb = Sandbox::new();
    let name = unique("collide");
    let (key, check) = key_and_check(&sb, &name);
    let id = create_bare(key);
    let _rm = Rmid(id);
    // Another name with the same key has other check values.
    initialise(id, [1, 1, check[0] ^ 1, check[1]]);
    let out = testkit::run(
        &mut cmd(&sb, &["run", "--name", &name, "--", "echo", "ran"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        testkit::stderr(&out).contains("belongs to another name"),
        "{out:?}"
    );
    // Nor is it removed by unlink, or its value touched.
    assert_eq!(code(&sb, &["unlink", "--sysv", &name]), 1);
    // SAFETY: GETVAL takes no fourth argument.
    assert_eq!(unsafe { libc::semctl(id, 0, libc::GETVAL) }, 1);
}

/// The same, when that creator has died: only it could have finished the set, so the next
/// `run` removes it (no permit was ever taken from it) and makes its own.
#[test]
fn a_set_left_uninitialised_by_a_dead_creator_is_replaced() {
    let sb = Sandbox::new();
    let name = unique("dead");
    let (key, check) = key_and_check(&sb, &name);
    // A creator that did semget and SETALL (the old way), then died before its semop.
    let id = create_bare(key);
    let _rm = Rmid(id);
    // SETALL from a child that exits at once, so the pid the set records is a dead one.
    let mut values: [libc::c_ushort; 4] = [0, 1, check[0], check[1]];
    // SAFETY: SETALL reads four unsigned shorts from `values`; semctl is async-signal-safe.
    in_a_child_that_exits(|| unsafe {
        libc::semctl(id, 0, libc::SETALL, values.as_mut_ptr()) == 0
    });
    run_narrating(&sb, &name, &[], "abandoned");
    assert_eq!(value(&sb, &name, "--sysv"), 1);
    assert_eq!(code(&sb, &["unlink", "--sysv", &name]), 0);
}
