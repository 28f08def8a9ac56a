//! The shell recipes of the README's shm-demo section, run by bash exactly as written there,
//! with the binary on PATH and `$db` set to this test's own database name.

mod support;

use std::path::Path;

use common::testkit::{self, Sandbox};
use support::{Name, Server, ok};

/// Run `script` with bash in the sandbox, `shm-demo` on PATH and `db` in the environment.
fn recipe(sb: &Sandbox, name: &Name, script: &str) -> String {
    let dir = Path::new(support::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = testkit::run(
        sb.command("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("PATH", path)
            .env("db", &name.name),
        b"",
    );
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        testkit::stdout(&out),
        testkit::stderr(&out)
    );
    testkit::stdout(&out)
}

#[test]
fn value_into_a_shell_variable() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let script = r#"v=$(shm-demo get --name "$db" greeting) || v="(none)"; echo "greeting: $v""#;
    assert_eq!(recipe(&sb, &name, script), "greeting: (none)\n");
    ok(&sb, &name, &["put", "greeting", "hello world"]);
    assert_eq!(recipe(&sb, &name, script), "greeting: hello world\n");
    server.stop();
}

#[test]
fn binary_value_through_stdin_and_back() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let script = r#"head -c 256 /dev/urandom > blob.bin
shm-demo put --name "$db" blob - < blob.bin &&
    shm-demo get --name "$db" blob | cmp - blob.bin && echo same"#;
    assert_eq!(recipe(&sb, &name, script), "same\n");
    server.stop();
}

#[test]
fn python_reads_the_magic() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let server = Server::start(&sb, &name, &[]);
    let script = r#"python3 -c 'import sys
from multiprocessing import shared_memory as sm, resource_tracker as rt
m = sm.SharedMemory(sys.argv[1].lstrip("/")); rt.unregister(m._name, "shared_memory")
print(bytes(m.buf[:8])); m.close()' "$db""#;
    assert_eq!(recipe(&sb, &name, script), "b'SHMKVDB\\x00'\n");
    assert!(name.shm_path().exists(), "Python left the segment in place");
    server.stop();
}

/// `shm-demo path` names the server's pid file wherever the runtime dir is: the stats recipe.
#[test]
fn sigusr1_through_the_pid_file_that_path_names() {
    let sb = Sandbox::new();
    let name = Name::new(false);
    let mut server = Server::start(&sb, &name, &[]);
    let script = r#"kill -USR1 "$(cat "$(shm-demo path --name "$db" pid-file)")""#;
    recipe(&sb, &name, script);
    let line = server
        .stderr
        .wait_for(|l| l.starts_with("stats: "), support::WAIT)
        .unwrap();
    assert!(line.contains("records 0, slots 4096"), "{line}");
    let all = recipe(&sb, &name, r#"shm-demo path --name "$db""#);
    let runtime = sb.runtime_dir();
    assert_eq!(
        all,
        format!(
            "object /dev/shm{0}\npid-file {1}/{2}.pid\ndir {1}\n",
            name.name,
            runtime.display(),
            &name.name[1..]
        )
    );
    server.stop();
}
