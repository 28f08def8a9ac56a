//! post / wait / trywait / value / unlink, POSIX and SysV, and interop with Python's
//! posix_ipc and sysv_ipc and with ipcs(1).

mod support;

use common::testkit::{self, Sandbox};
use support::{Cleanup, code, key_of, run, unique, value};

fn semantics(flavor: &'static str) {
    let sb = Sandbox::new();
    let name = unique("prim");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor,
    };
    // trywait on a new name creates it with 0 permits and would block: exit 1, no output.
    let out = run(&sb, &["trywait", &name, flavor]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(value(&sb, &name, flavor), 0);
    assert_eq!(code(&sb, &["post", &name, flavor]), 0);
    assert_eq!(code(&sb, &["post", &name, flavor]), 0);
    assert_eq!(value(&sb, &name, flavor), 2);
    assert_eq!(code(&sb, &["trywait", &name, flavor]), 0);
    assert_eq!(value(&sb, &name, flavor), 1);
    assert_eq!(code(&sb, &["wait", &name, flavor, "--timeout", "5"]), 0);
    assert_eq!(value(&sb, &name, flavor), 0);
    // wait honours a fractional timeout, with the message scripts look for.
    let out = run(&sb, &["wait", &name, flavor, "--timeout", "0.2"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        testkit::stderr(&out),
        format!("sem-demo: timed out after 0.2 s waiting for {name}\n")
    );
    assert_eq!(code(&sb, &["unlink", &name, flavor]), 0);
    let out = run(&sb, &["value", &name, flavor]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        testkit::stderr(&out).contains("no such semaphore"),
        "{out:?}"
    );
}

#[test]
fn posix_semantics() {
    semantics("--posix");
}

#[test]
fn sysv_semantics() {
    semantics("--sysv");
}

#[test]
fn a_blocked_wait_proceeds_when_another_process_posts() {
    let sb = Sandbox::new();
    let name = unique("wake");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    assert_eq!(code(&sb, &["post", &name]), 0);
    assert_eq!(code(&sb, &["wait", &name]), 0);
    let waiter = testkit::spawn(&mut support::cmd(&sb, &["-v", "wait", &name]));
    // It has opened the semaphore, whose value is 0: it is in (or about to enter) sem_wait.
    let mut err = waiter.stderr_lines().unwrap();
    err.wait_for(|l| l.contains("existing, ours"), support::WAIT)
        .unwrap();
    assert!(waiter.try_wait().unwrap().is_none(), "no permit: it waits");
    assert_eq!(code(&sb, &["post", &name]), 0);
    assert!(waiter.wait_timeout(support::WAIT).unwrap().success());
    assert_eq!(value(&sb, &name, "--posix"), 0);
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::new();
    for args in [
        &["post"][..],
        &["post", "a/b"],
        &["post", "x", "--posix", "--sysv"],
        &["wait", "x", "--timeout", "soon"],
        &["wait", "x", "--timeout", "-1"],
        &["nosuch"],
        &["run", "--limit", "0", "--", "true"],
    ] {
        let out = run(&sb, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn created_posix_semaphores_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let name = unique("mode");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    assert_eq!(code(&sb, &["post", &name]), 0);
    let meta = std::fs::metadata(format!("/dev/shm/sem.ipc-demo-{name}")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_planted_symlink_is_refused() {
    let sb = Sandbox::new();
    let name = unique("planted");
    let target = sb.join("elsewhere");
    std::fs::write(&target, [0u8; 32]).unwrap();
    let link = format!("/dev/shm/sem.ipc-demo-{name}");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = run(&sb, &["post", &name]);
    std::fs::remove_file(&link).unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = testkit::stderr(&out);
    // glibc itself opens with O_NOFOLLOW (ELOOP); our own check would say "symlink".
    assert!(
        err.contains("symbolic links") || err.contains("symlink"),
        "{err}"
    );
}

fn python(code: &str, args: &[&str]) -> String {
    let out = testkit::run(
        std::process::Command::new("python3")
            .arg("-c")
            .arg(code)
            .args(args),
        b"",
    );
    assert!(out.status.success(), "python: {}", testkit::stderr(&out));
    testkit::stdout(&out)
}

#[test]
fn python_posix_ipc_shares_the_semaphore() {
    let sb = Sandbox::new();
    let name = unique("py");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    assert_eq!(code(&sb, &["post", &name]), 0);
    let posix = format!("/ipc-demo-{name}");
    // Python sees our value and posts twice; we see 3 and take one; Python sees 2.
    let seen = python(
        "import posix_ipc, sys\ns = posix_ipc.Semaphore(sys.argv[1])\nprint(s.value)\ns.release(); s.release()",
        &[&posix],
    );
    assert_eq!(seen.trim(), "1");
    assert_eq!(value(&sb, &name, "--posix"), 3);
    assert_eq!(code(&sb, &["trywait", &posix]), 0);
    let seen = python(
        "import posix_ipc, sys\nprint(posix_ipc.Semaphore(sys.argv[1]).value)",
        &[&posix],
    );
    assert_eq!(seen.trim(), "2");
}

#[test]
fn python_sysv_ipc_and_ipcs_see_the_set() {
    let sb = Sandbox::new();
    let name = unique("pysysv");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    assert_eq!(code(&sb, &["post", &name, "--sysv"]), 0);
    let key = key_of(&sb, &name);
    let listed = support::ipcs();
    let row = listed
        .lines()
        .find(|l| l.starts_with(&key))
        .unwrap_or_else(|| panic!("ipcs -s does not list {key}:\n{listed}"));
    assert!(row.contains(" 600 "), "created 0600: {row}");
    let seen = python(
        "import sysv_ipc, sys\ns = sysv_ipc.Semaphore(int(sys.argv[1], 16))\nprint(s.value)\ns.release()",
        &[&key],
    );
    assert_eq!(seen.trim(), "1");
    assert_eq!(value(&sb, &name, "--sysv"), 2);
    assert_eq!(code(&sb, &["unlink", &name, "--sysv"]), 0);
    assert!(
        !support::ipcs().lines().any(|l| l.starts_with(&key)),
        "removed from ipcs -s"
    );
}

#[test]
fn a_semaphore_others_can_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let name = unique("open");
    let _c = Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    assert_eq!(code(&sb, &["post", &name]), 0);
    let file = format!("/dev/shm/sem.ipc-demo-{name}");
    // `sem-demo unlink` refuses a semaphore that is not ours, so the test removes the file.
    struct RmFile<'a>(&'a str);
    impl Drop for RmFile<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    let _rm = RmFile(&file);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(&sb, &["post", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    assert!(
        err.contains("is writable by group or others (mode 0666)"),
        "{err}"
    );
    // Someone else's (only root can make one here; CI runs as root).
    if nix::unistd::Uid::effective().is_root() {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let err = testkit::stderr(&run(&sb, &["trywait", &name]));
        assert!(err.contains("is owned by uid 65534, not by us"), "{err}");
    } else {
        eprintln!("not root: the foreign-owner case is not exercised");
    }
}

#[test]
fn a_sysv_set_others_can_change_is_refused() {
    let sb = Sandbox::new();
    let name = unique("opensysv");
    assert_eq!(code(&sb, &["post", &name, "--sysv"]), 0);
    let key = key_of(&sb, &name);
    python(
        "import sysv_ipc, sys\ns = sysv_ipc.Semaphore(int(sys.argv[1], 16))\ns.mode = 0o666",
        &[&key],
    );
    let out = run(&sb, &["post", &name, "--sysv"]);
    assert_eq!(out.status.code(), Some(1));
    let err = testkit::stderr(&out);
    assert!(
        err.contains("is writable by group or others (mode 0666)"),
        "{err}"
    );
    // Not ours to remove either: python removes it.
    assert_eq!(code(&sb, &["unlink", &name, "--sysv"]), 1);
    python(
        "import sysv_ipc, sys\nsysv_ipc.Semaphore(int(sys.argv[1], 16)).remove()",
        &[&key],
    );
}

/// A semaphore file too short for a sem_t (truncated, or an empty file someone made with
/// our uid) is refused with a message; sem_open maps it anyway, and the first sem_getvalue
/// or sem_post used to die of SIGBUS.
#[test]
fn a_truncated_semaphore_file_is_refused_not_a_crash() {
    use std::os::unix::fs::OpenOptionsExt;
    let sb = Sandbox::new();
    let name = unique("short");
    let file = format!("/dev/shm/sem.ipc-demo-{name}");
    struct RmFile<'a>(&'a str);
    impl Drop for RmFile<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(self.0);
        }
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .expect("create the empty file");
    let _rm = RmFile(&file);
    for role in ["value", "post", "trywait"] {
        let out = run(&sb, &[role, &name]);
        assert_eq!(out.status.code(), Some(1), "{role}: {out:?}");
        let err = testkit::stderr(&out);
        assert!(
            err.contains("has 0 bytes, too few for a semaphore"),
            "{role}: {err}"
        );
    }
}
