//! The shell recipes of the README's sem-demo section, run by bash as written (with a unique
//! name in place of the README's `job`/`jobs`, so tests can run in parallel).

mod support;

use common::testkit::{self, Sandbox};
use support::{max_overlap, unique};

/// One recipe's world: a sandbox and a unique name standing in for the README's word, removed
/// at the end.
struct Recipe {
    sb: Sandbox,
    word: &'static str,
    name: String,
    flavor: &'static str,
}

impl Recipe {
    fn new(word: &'static str, flavor: &'static str) -> Self {
        Recipe {
            sb: Sandbox::new(),
            word,
            name: unique(word),
            flavor,
        }
    }

    /// Run `script` with bash in the sandbox, sem-demo on PATH, our name in place of the word.
    fn run(&self, script: &str) -> std::process::Output {
        let script = script.replace(self.word, &self.name);
        let mut cmd = self.sb.command("bash");
        cmd.args(["-c", &script])
            .env("PATH", support::path_with_bin());
        testkit::run(&mut cmd, b"")
    }
}

impl Drop for Recipe {
    fn drop(&mut self) {
        let args = ["unlink", self.name.as_str(), self.flavor];
        let _ = testkit::run(&mut support::cmd(&self.sb, &args), b"");
    }
}

#[test]
fn recipe_at_most_k_from_a_shell_loop() {
    let r = Recipe::new("job", "--sysv");
    let recipe = "for i in 1 2 3 4 5 6; do sem-demo run --name job --limit 2 -- sh -c 'echo s >> log; sleep 0.2; echo e >> log' & done; wait";
    let out = r.run(recipe);
    assert!(out.status.success(), "{out:?}");
    let log = std::fs::read_to_string(r.sb.join("log")).unwrap();
    assert_eq!(log.lines().count(), 12);
    // At most two at once: the recipe's promise (how many overlapped depends on timing).
    assert!(max_overlap(&log) <= 2, "{log}");
}

#[test]
fn recipe_primitives() {
    let r = Recipe::new("jobs", "--posix");
    let recipe = "sem-demo post jobs; sem-demo value jobs
sem-demo trywait jobs && echo got it
sem-demo wait jobs --timeout 0.5; echo \"exit $?\"
sem-demo unlink jobs";
    let out = r.run(recipe);
    assert_eq!(testkit::stdout(&out), "1\ngot it\nexit 1\n");
    assert_eq!(
        testkit::stderr(&out),
        format!("sem-demo: timed out after 0.5 s waiting for {}\n", r.name)
    );
    assert!(!std::path::Path::new(&format!("/dev/shm/sem.ipc-demo-{}", r.name)).exists());
}

#[test]
fn recipe_python_sees_the_same_semaphore() {
    let r = Recipe::new("jobs", "--posix");
    let recipe = "sem-demo post jobs; sem-demo post jobs
python3 -c 'import posix_ipc; print(posix_ipc.Semaphore(\"/ipc-demo-jobs\").value)'";
    let out = r.run(recipe);
    assert_eq!(testkit::stdout(&out), "2\n", "{out:?}");
}

#[test]
fn recipe_ipcs_lists_the_set() {
    let r = Recipe::new("build", "--sysv");
    let recipe = "sem-demo run --name build --limit 2 -- true; ipcs -s | grep 0x1dc0";
    let out = r.run(recipe);
    let key = support::key_of(&r.sb, &r.name);
    assert!(
        testkit::stdout(&out)
            .lines()
            .any(|l| l.starts_with(&key) && l.trim_end().ends_with(" 4")),
        "{out:?}"
    );
}
