//! Copy-paste must work everywhere: `fifo-demo path` in recipes whatever XDG_RUNTIME_DIR
//! says, and a regular file left where the FIFO belongs (`echo hi > FIFO` while no daemon
//! ran) met with an error that says what to do, and removed by `cleanup` when it is empty.

mod support;

use common::testkit::{self, Sandbox};
use support::{Daemon, fifo_demo, lines_of, pid_file};

/// `fifo-demo ARGS` to completion: (exit code, stdout, stderr).
fn run(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String, String) {
    let out = testkit::run(fifo_demo(sb).args(args), b"");
    (
        out.status.code(),
        testkit::stdout(&out),
        testkit::stderr(&out),
    )
}

#[test]
fn path_prints_each_object_and_all_of_them() {
    let sb = Sandbox::new();
    let dir = sb.runtime_dir();
    let fifo = dir.join("log.fifo");
    let (code, out, _) = run(&sb, &["path", "fifo"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, format!("{}\n", fifo.display()));
    let (_, out, _) = run(&sb, &["path", "pid-file"]);
    assert_eq!(out, format!("{}\n", pid_file(&fifo).display()));
    let (_, out, _) = run(&sb, &["path"]);
    assert_eq!(
        out,
        format!(
            "fifo {}\npid-file {}\ndir {}\n",
            fifo.display(),
            pid_file(&fifo).display(),
            dir.display()
        )
    );
    let (_, out, _) = run(&sb, &["path", "pid-file", "--fifo", "/tmp/my.fifo"]);
    assert_eq!(out, "/tmp/my.fifo.pid\n");
    // The daemon, told nothing, uses exactly these paths.
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    assert_eq!(daemon.fifo, fifo);
    assert!(pid_file(&fifo).exists());
    daemon.stop();
}

#[test]
fn without_xdg_runtime_dir_path_names_the_tmp_fallback() {
    // ssh as root, cron, containers: `"$XDG_RUNTIME_DIR/ipc-demo/log.fifo"` would become
    // `/ipc-demo/log.fifo`; `fifo-demo path` names the directory the daemon really uses.
    let sb = Sandbox::new();
    let mut cmd = fifo_demo(&sb);
    cmd.args(["path", "fifo"]).env_remove("XDG_RUNTIME_DIR");
    let out = testkit::run(&mut cmd, b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    let uid = nix::unistd::geteuid();
    assert_eq!(
        testkit::stdout(&out),
        format!("/tmp/ipc-demo-{uid}/log.fifo\n")
    );
}

#[test]
fn a_regular_file_in_place_of_the_fifo_is_explained_by_every_role() {
    let sb = Sandbox::new();
    let fifo = sb.runtime_dir().join("log.fifo");
    // `path` creates the runtime dir (0700) as the daemon would.
    assert_eq!(run(&sb, &["path", "dir"]).0, Some(0));
    // What `echo disk full > "$(fifo-demo path fifo)"` does while no daemon runs.
    std::fs::write(&fifo, "disk full\n").unwrap();
    let what = format!("{}: is a regular file, not a FIFO", fifo.display());
    let holds = "it holds 10 bytes, perhaps records meant for the log: look at them (cat ";
    for args in [
        &["daemon", "--log", "app.log"][..],
        &["log", "hello"],
        &["cleanup"],
    ] {
        let (code, _, err) = run(&sb, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&what) && err.contains("`echo ... > FIFO`") && err.contains(holds),
            "{args:?}: {err}"
        );
        assert!(
            err.trim_end()
                .ends_with(&format!("then rm {}", fifo.display())),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        std::fs::read(&fifo).unwrap(),
        b"disk full\n",
        "a file with bytes in it is never removed"
    );
    assert!(lines_of(&sb.join("app.log")).is_empty());

    // Empty (`: > log.fifo`, or after a look): the roles say cleanup removes it, and it does.
    std::fs::write(&fifo, "").unwrap();
    for args in [&["daemon", "--log", "app.log"][..], &["log", "hello"]] {
        let (code, _, err) = run(&sb, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&what)
                && err.contains("it is empty: remove it with `fifo-demo cleanup` (or rm /"),
            "{args:?}: {err}"
        );
    }
    let (code, out, err) = run(&sb, &["cleanup"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!(
            "removed {} (an empty regular file)",
            fifo.display()
        )),
        "{out}"
    );
    assert!(!fifo.exists());
    let daemon = Daemon::start(&sb, &["--log", "app.log"]);
    daemon.stop();
}

#[test]
fn the_advice_names_the_fifo_option_when_one_was_given_quoted_for_the_shell() {
    let sb = Sandbox::new();
    let fifo = sb.join("my log.fifo");
    std::fs::write(&fifo, "").unwrap();
    let (code, _, err) = run(&sb, &["log", "--fifo", "my log.fifo", "hi"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("remove it with `fifo-demo cleanup --fifo 'my log.fifo'`"),
        "{err}"
    );
    // The advice, pasted into a shell, works.
    let mut sh = sb.command("sh");
    sh.args(["-c", "fifo-demo cleanup --fifo 'my log.fifo'"]);
    let out = testkit::run(support::with_bin_on_path(&mut sh), b"");
    assert!(out.status.success(), "{}", testkit::stderr(&out));
    assert!(!fifo.exists());
}
