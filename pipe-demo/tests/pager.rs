//! The `pager` role: through $PAGER on a terminal, unchanged otherwise.

mod support;

use std::io::Read;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use common::child::{Options, Supervised};
use common::testkit::{self, Sandbox};
use support::{code, demo, recipe, sample_dir, sh};

#[test]
fn not_a_terminal_passes_the_output_through_unchanged() {
    let sb = Sandbox::new();
    let dir = sample_dir(&sb, "files", &["a.txt", "b.md"]);
    let d = dir.to_str().unwrap();
    // A pager that would mark every line, to prove it is not used.
    let mut cmd = demo(&sb, &["pager", &format!("ls -l {d}")]);
    cmd.env("PAGER", "sed s/^/PAGED:/");
    let ours = testkit::run(&mut cmd, b"");
    let theirs = sh(&sb, r#"ls -l "$1""#, &[d], b"");
    assert_eq!(code(&ours), 0);
    assert_eq!(testkit::stdout(&ours), testkit::stdout(&theirs));
    // The default command is `ls -l` (of the sandbox, here).
    let mut cmd = demo(&sb, &["pager"]);
    cmd.env("PAGER", "sed s/^/PAGED:/");
    let ours = testkit::run(&mut cmd, b"");
    let theirs = sh(&sb, "ls -l", &[], b"");
    assert_eq!(testkit::stdout(&ours), testkit::stdout(&theirs));
}

/// Run `pipe-demo pager CMD` with `$PAGER` set and stdout on a fresh pseudo-terminal, to its
/// end; its exit status, what reached the terminal, and its stderr.
fn on_a_terminal(sb: &Sandbox, cmd_line: &str, pager: &str) -> (ExitStatus, String, String) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = demo(sb, &["pager", cmd_line]);
    cmd.env("PAGER", pager)
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::piped());
    let child = Supervised::spawn(
        "pipe-demo pager",
        &mut cmd,
        Options {
            deadline: Some(Duration::from_secs(60)),
            own_group: true,
        },
    )
    .unwrap();
    // The Command held our only copy of the slave; it is gone with `cmd`, so the master
    // reads EIO (the terminal's EOF) once the child and the pager have exited.
    drop(cmd);
    let status = child.wait_timeout(Duration::from_secs(60)).unwrap();
    let stderr = child
        .stderr_lines()
        .unwrap()
        .rest(Duration::from_secs(60))
        .unwrap()
        .join("\n");
    let mut master = std::fs::File::from(pty.master);
    let mut got = Vec::new();
    let _ = master.read_to_end(&mut got); // ends with EIO when the slave side is closed
    (status, String::from_utf8_lossy(&got).into_owned(), stderr)
}

#[test]
fn a_terminal_gets_the_pager() {
    let sb = Sandbox::new();
    std::fs::write(sb.join("one.txt"), "1").unwrap();
    let (status, text, _) = on_a_terminal(&sb, "echo through the pager", "sed s/^/PAGED:/");
    assert!(status.success(), "{status:?}");
    assert!(text.contains("PAGED:through the pager"), "{text:?}");
}

/// Ctrl-C while the pager runs: the terminal sends SIGINT (and Ctrl-\\ SIGQUIT) to the whole
/// foreground group. pipe-demo ignores both while it waits for the pager, as system(3) and
/// git do, and reports the pager's status; the pager itself gets them with their default
/// dispositions back (it has to trap them itself, as less does).
#[test]
fn ctrl_c_while_the_pager_runs_leaves_pipe_demo_alive() {
    let sb = Sandbox::new();
    // A fake pager, playing the terminal: it checks that it did not inherit SIGINT or SIGQUIT
    // ignored (bits 2 and 3 of SigIgn in /proc), ignores both itself (less catches them),
    // signals its whole process group (pipe-demo's), then exits 3.
    let pager = concat!(
        r#"sh -c 'ign=$(grep SigIgn /proc/$$/status | cut -f2); "#,
        r#"[ $((0x$ign & 6)) -eq 0 ] || echo INHERITED-IGNORE; "#,
        r#"trap "" INT QUIT; kill -INT 0; kill -QUIT 0; echo pager-done; exit 3'"#
    );
    let (status, text, _) = on_a_terminal(&sb, "echo hello", pager);
    // Not killed by SIGINT/SIGQUIT: exited with the pager's status.
    assert_eq!(status.code(), Some(3), "{status:?}");
    assert!(text.contains("pager-done"), "{text:?}");
    assert!(!text.contains("INHERITED-IGNORE"), "{text:?}");
}

/// `pipe-demo pager CMD | head -3`: CMD dies of SIGPIPE when head has its lines, which for
/// pipe-demo means its reader went away: exit 0, as every role here (not 141).
#[test]
fn a_reader_that_goes_away_is_exit_0() {
    let sb = Sandbox::new();
    let out = recipe(
        &sb,
        "{ pipe-demo pager yes; echo \"status $?\" >&2; } | head -3",
        b"",
    );
    assert_eq!(testkit::stdout(&out), "y\ny\ny\n");
    assert_eq!(testkit::stderr(&out), "status 0\n");
}

/// A $PAGER that cannot run: the output is shown without a pager, with a warning, as git and
/// man do, instead of being lost with a "cannot run" error.
#[test]
fn an_unusable_pager_falls_back_to_none_with_a_warning() {
    let sb = Sandbox::new();
    let (status, text, stderr) = on_a_terminal(&sb, "echo shown anyway", "nosuch-pager -R");
    assert!(status.success(), "{status:?}");
    assert!(text.contains("shown anyway"), "{text:?}");
    assert_eq!(
        stderr,
        "pipe-demo: warning: $PAGER 'nosuch-pager -R': nosuch-pager: not found; \
         showing the output without a pager"
    );
}
