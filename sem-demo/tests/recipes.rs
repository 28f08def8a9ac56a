//! The shell recipes of the README's sem-demo section, run by bash as written (with a unique
//! name in place of the README's `job`/`jobs`, so tests can run in parallel).

mod support;

use common::testkit::{self, Sandbox};
use support::{max_overlap, unique};

/// Run `script` with bash in the sandbox, with sem-demo on PATH and NAME in place of `word`.
fn bash(sb: &Sandbox, script: &str, word: &str, name: &str) -> std::process::Output {
    let dir = std::path::Path::new(support::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = script.replace(word, name);
    let mut cmd = sb.command("bash");
    cmd.args(["-c", &script]).env("PATH", path);
    testkit::run(&mut cmd, b"")
}

#[test]
fn recipe_at_most_k_from_a_shell_loop() {
    let sb = Sandbox::new();
    let name = unique("job");
    let _c = support::Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let recipe = "for i in 1 2 3 4 5 6; do sem-demo run --name job --limit 2 -- sh -c 'echo s >> log; sleep 0.2; echo e >> log' & done; wait";
    let out = bash(&sb, recipe, "job", &name);
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::read_to_string(sb.join("log")).unwrap();
    assert_eq!(log.lines().count(), 12);
    // At most two at once: the recipe's promise (how many overlapped depends on timing).
    assert!(max_overlap(&log) <= 2, "{log}");
}

#[test]
fn recipe_primitives() {
    let sb = Sandbox::new();
    let name = unique("jobs");
    let _c = support::Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    let recipe = "sem-demo post jobs; sem-demo value jobs
sem-demo trywait jobs && echo got it
sem-demo wait jobs --timeout 0.5; echo \"exit $?\"
sem-demo unlink jobs";
    let out = bash(&sb, recipe, "jobs", &name);
    assert_eq!(testkit::stdout(&out), "1\ngot it\nexit 1\n");
    assert_eq!(
        testkit::stderr(&out),
        format!("sem-demo: timed out after 0.5 s waiting for {name}\n")
    );
    assert!(!std::path::Path::new(&format!("/dev/shm/sem.ipc-demo-{name}")).exists());
}

#[test]
fn recipe_python_sees_the_same_semaphore() {
    let sb = Sandbox::new();
    let name = unique("jobs");
    let _c = support::Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--posix",
    };
    let recipe = "sem-demo post jobs; sem-demo post jobs
python3 -c 'import posix_ipc; print(posix_ipc.Semaphore(\"/ipc-demo-jobs\").value)'";
    let out = bash(&sb, recipe, "jobs", &name);
    assert_eq!(testkit::stdout(&out), "2\n", "{out:?}");
}

#[test]
fn recipe_ipcs_lists_the_set() {
    let sb = Sandbox::new();
    let name = unique("build");
    let _c = support::Cleanup {
        sb: &sb,
        name: name.clone(),
        flavor: "--sysv",
    };
    let recipe = "sem-demo run --name build --limit 2 -- true; ipcs -s | grep 0x1dc0";
    let out = bash(&sb, recipe, "build", &name);
    let key = support::key_of(&sb, &name);
    assert!(
        testkit::stdout(&out)
            .lines()
            .any(|l| l.starts_with(&key) && l.trim_end().ends_with(" 4")),
        "{out:?}"
    );
}
