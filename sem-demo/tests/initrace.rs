//! The SysV initialisation race, made certain: the test itself plays a creator stopped
//! between `semget(IPC_CREAT|IPC_EXCL)` and its initialisation, and a creator that died there.

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

/// What it does second: SETALL, then one semop (which sets sem_otime).
fn initialise(id: i32, values: [libc::c_ushort; 4]) {
    let mut values = values;
    let mut op = libc::sembuf {
        sem_num: 1,
        sem_op: 0,
        sem_flg: libc::IPC_NOWAIT as i16,
    };
    // SAFETY: SETALL reads four unsigned shorts from `values`; semop reads one sembuf.
    unsafe {
        assert_eq!(libc::semctl(id, 0, libc::SETALL, values.as_mut_ptr()), 0);
        // An op on semaphore 1 (K) that changes nothing: +1 then -1 would do too.
        op.sem_op = 1;
        assert_eq!(libc::semop(id, &mut op, 1), 0);
        op.sem_op = -1;
        assert_eq!(libc::semop(id, &mut op, 1), 0);
    }
}

struct Rmid(i32);
impl Drop for Rmid {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no fourth argument; an already removed id just fails.
        unsafe { libc::semctl(self.0, 0, libc::IPC_RMID) };
    }
}

#[test]
fn a_run_waits_for_a_creator_caught_between_its_two_calls() {
    let sb = Sandbox::new();
    let name = unique("init");
    let (key, check) = key_and_check(&sb, &name);
    let id = create_bare(key);
    let _rm = Rmid(id);
    let runner = testkit::spawn(&mut cmd(
        &sb,
        &["-v", "run", "--name", &name, "--", "echo", "ran"],
    ));
    let mut err = runner.stderr_lines().unwrap();
    err.wait_for(|l| l.contains("not initialised yet"), WAIT)
        .unwrap();
    // It found the set, saw sem_otime 0, and waits: it has not taken a permit of a set with
    // none, nor run the command.
    assert!(runner.try_wait().unwrap().is_none());
    initialise(id, [2, 2, check[0], check[1]]);
    let status = runner.wait_timeout(WAIT).unwrap();
    assert!(status.success(), "{status:?}: {:?}", err.rest(WAIT));
    assert_eq!(value(&sb, &name, "--sysv"), 2);
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

#[test]
fn a_set_left_uninitialised_by_a_dead_creator_is_replaced() {
    let sb = Sandbox::new();
    let name = unique("dead");
    let (key, _) = key_and_check(&sb, &name);
    // A creator that did semget and SETALL, then died before its semop.
    let id = create_bare(key);
    let _rm = Rmid(id);
    // SETALL from a child that exits at once, so the pid the set records is a dead one.
    let mut values: [libc::c_ushort; 4] = [0, 1, 0, 0];
    // SAFETY: the child makes only async-signal-safe calls (semctl, _exit) on data prepared
    // before the fork, as it must in a multi-threaded test process.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            // SAFETY: SETALL reads four unsigned shorts from `values`; _exit ends the child.
            unsafe {
                let rc = libc::semctl(id, 0, libc::SETALL, values.as_mut_ptr());
                libc::_exit(if rc == 0 { 0 } else { 1 });
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
    let out = testkit::run(
        &mut cmd(&sb, &["-v", "run", "--name", &name, "--", "echo", "ran"]),
        b"",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(testkit::stdout(&out), "ran\n");
    assert!(
        testkit::stderr(&out).contains("abandoned"),
        "{}",
        testkit::stderr(&out)
    );
    assert_eq!(value(&sb, &name, "--sysv"), 1);
    assert_eq!(code(&sb, &["unlink", "--sysv", &name]), 0);
}
