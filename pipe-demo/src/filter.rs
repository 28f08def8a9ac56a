//! `pipe-demo demo` (the default scenario, also `pipe-demo filter`): `ls -l DIR | grep 'txt$'`,
//! with the parent as the grep, done by hand and checked against the shell.
//!
//! What it shows: the smallest complete use of a pipe between two processes, the one every
//! shell pipeline is made of. The calls, in order:
//!
//! ```text
//! parent: pipe2(O_CLOEXEC) -> read end R, write end W
//! parent: fork()
//! child:  dup2(W, 1); close(R); close(W); execv(/usr/bin/ls, [ls, -l, DIR])
//! parent: close(W)          <- without it, read(R) never returns EOF
//! parent: read(R) ... EOF;  print the lines that match
//! parent: waitpid(child)    <- reap it, or it stays a zombie; report its status
//! parent: sh -c 'ls -l DIR | LC_ALL=C grep -E PATTERN' and compare
//! ```
//!
//! # Pitfalls
//!
//! - **The parent's copy of the write end.** `read` returns EOF only once *every* write end is
//!   closed; the parent holds one from `pipe2` until it closes it, so it closes it right after
//!   `fork`, or it would wait for itself forever.
//! - **The child's copies too**: after `dup2(W, 1)` the child holds W twice; the original is
//!   closed before `execv` (and is CLOEXEC anyway), so only ls's stdout keeps the pipe open.
//! - **A child nobody waits for** stays a zombie, and its exit status is lost: the parent
//!   `waitpid`s ls after reading to EOF, and reports a failure of ls (exit 2 for a missing
//!   directory) instead of printing "no lines matched".
//! - **A closed downstream** (`pipe-demo demo --plain | head -1`): Rust ignores SIGPIPE, so the
//!   write fails with EPIPE, which ends the run quietly with 0, as `grep` would.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use common::cleanup::Shutdown;
use common::{Context, Error, Result, say, trace};
use nix::fcntl::OFlag;

use crate::cli::FilterArgs;
use crate::grep;
use crate::program::Program;
use crate::spawn::{self, Wiring};

/// How long the shell's reference pipeline may take before the check gives up on it.
const CHECK_DEADLINE: Duration = Duration::from_secs(30);

/// The sample directory's files: three end in `txt`; `backup.txt.gz` is there to show that
/// `$` anchors the match at the end of the line.
const SAMPLE: &[&str] = &[
    "notes.txt",
    "todo.txt",
    "readme.txt",
    "backup.txt.gz",
    "report.md",
    "photo.jpg",
    "data.csv",
    "build.sh",
];

/// Run the `demo` role (the filter scenario).
pub fn run(args: &FilterArgs) -> Result<ExitCode> {
    let re = grep::compile(&args.pattern, false)?;
    let mut out = io::stdout().lock();
    // A temporary directory is ours to remove, on Ctrl-C too: with Shutdown installed, SIGINT
    // ends ls (it has the default disposition), our read sees EOF, and we return through the
    // TempDir's destructor.
    let (dir, _tmp, shutdown) = match &args.dir {
        Some(d) => (checked_dir(d)?, None, None),
        None => {
            let shutdown = Shutdown::install()?;
            let tmp = sample_dir()?;
            (tmp.path().to_owned(), Some(tmp), Some(shutdown))
        }
    };
    let step = !args.plain;
    if step {
        if args.dir.is_none() {
            say!(
                "1. made {} with {} files, 3 of them named *.txt",
                dir.display(),
                SAMPLE.len()
            )?;
        } else {
            say!("1. listing {}", dir.display())?;
        }
    }
    let dir_arg = dir_argument(&dir)?;
    let ls = Program::new(vec!["ls".into(), "-l".into(), dir_arg.clone()])?;
    spawn::ensure_std_fds()?;

    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe2", "ls | filter")?;
    let (r, w) = (read_end.as_raw_fd(), write_end.as_raw_fd());
    trace!("pipe2(O_CLOEXEC) -> read={r} write={w}");
    if step {
        say!("2. pipe2(O_CLOEXEC) -> read end fd {r}, write end fd {w}")?;
    }
    // Flush before fork, so that our steps and the child's messages appear in order.
    out.flush().ctx("write", "stdout")?;
    let wiring = Wiring {
        stdin: None,
        stdout: Some(write_end.as_fd()),
        close: vec![read_end.as_fd(), write_end.as_fd()],
        restore: &[],
    };
    let child = spawn::spawn("child", &ls, &wiring)?;
    if step {
        say!(
            "3. fork() -> pid {}; the child does dup2({w}, 1), close({r}), close({w}), \
             execv(ls -l {dir_arg})",
            child.pid
        )?;
    }
    if let Some(e) = child.exec_error {
        let _ = writeln!(
            io::stderr().lock(),
            "pipe-demo: {}",
            spawn::describe_exec_error(&ls, e)
        );
    }

    // The parent's copy of the write end must be closed now. A pipe reports EOF only when
    // *every* write end is closed: the child's closes when ls exits, but if ours stayed open,
    // read() would block forever once ls is done, waiting for a writer that is... us.
    trace!("close({w}) (the parent's write end)");
    drop(write_end);
    if step {
        say!("4. close({w}) in the parent: else read() would never see EOF")?;
        say!(
            "5. read lines from fd {r}, print those matching '{}':",
            args.pattern
        )?;
    }

    let mut reader = BufReader::with_capacity(64 * 1024, File::from(read_end));
    let mut line = Vec::new();
    let mut matched = Vec::new();
    let (mut total, mut hits) = (0usize, 0usize);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .ctx("read", format!("fd {r}"))?;
        if n == 0 {
            trace!("read({r}) -> 0: EOF, every write end is closed");
            break;
        }
        total += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if re.is_match(text) {
            hits += 1;
            matched.extend_from_slice(text);
            matched.push(b'\n');
            if step {
                out.write_all(b"    ").ctx("write", "stdout")?;
            }
            out.write_all(text).ctx("write", "stdout")?;
            out.write_all(b"\n").ctx("write", "stdout")?;
        }
    }
    drop(reader);
    let status = spawn::wait(child.pid, "ls")?;
    if shutdown.as_ref().is_some_and(Shutdown::requested) {
        return Err(Error::msg(
            "interrupted; the temporary directory is removed",
        ));
    }
    if args.plain {
        out.flush().ctx("write", "stdout")?;
        let code = match (status.success(), hits) {
            (false, _) => 2,
            (true, 0) => 1,
            (true, _) => 0,
        };
        return Ok(ExitCode::from(code));
    }
    say!(
        "6. EOF after {total} lines, {hits} matched; waitpid({}) -> ls {status}",
        child.pid
    )?;

    // Two independent checks. The shell's pipeline is the reference; our own `pipeline` and
    // `grep` roles, started as child processes of this binary, must agree with it too.
    let shell = shell_reference(&dir_arg, &args.pattern)?;
    let shell_diff = difference(&matched, &shell.output);
    say!(
        "7. sh -c \"{}\": {}",
        shell.shown,
        agreement(&shell_diff, hits)
    )?;
    let roles = roles_reference(&dir_arg, &args.pattern)?;
    let roles_diff = difference(&matched, &roles.output);
    say!("8. {}: {}", roles.shown, agreement(&roles_diff, hits))?;

    let verdict = if !status.success() {
        format!("FAILED: ls ended with {status}")
    } else if let Some(d) = shell_diff {
        format!("FAILED: the shell's pipeline disagrees: {d}")
    } else if let Some(d) = roles_diff {
        format!("FAILED: pipe-demo pipeline | grep disagrees: {d}")
    } else {
        format!(
            "ok: {hits} of {total} lines of ls -l matched '{}', the same as sh's pipeline and \
             ours; ls {status}",
            args.pattern
        )
    };
    say!("{verdict}")?;
    out.flush().ctx("write", "stdout")?;
    Ok(if verdict.starts_with("ok:") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a check ran (for the reader) and what it printed.
struct Reference {
    shown: String,
    output: Vec<u8>,
}

/// `None` if `theirs` equals `ours`, else a description of the first difference.
fn difference(ours: &[u8], theirs: &[u8]) -> Option<String> {
    if ours == theirs {
        return None;
    }
    let count = |b: &[u8]| b.iter().filter(|&&c| c == b'\n').count();
    let first = ours
        .split(|&b| b == b'\n')
        .zip(theirs.split(|&b| b == b'\n'))
        .find(|(a, b)| a != b)
        .map(|(a, b)| {
            format!(
                "; first difference: ours '{}', theirs '{}'",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            )
        })
        .unwrap_or_default();
    Some(format!(
        "we printed {} lines, they printed {}{first}",
        count(ours),
        count(theirs)
    ))
}

fn agreement(diff: &Option<String>, hits: usize) -> String {
    match diff {
        None => format!("the same {hits} lines"),
        Some(d) => format!("DIFFERENT: {d}"),
    }
}

/// Run the same pipeline through `sh` (supervised, with a deadline).
fn shell_reference(dir: &str, pattern: &str) -> Result<Reference> {
    // The directory and pattern go in as positional parameters, never pasted into the
    // script: no quoting bugs, no injection.
    let script = r#"ls -l "$1" | LC_ALL=C grep -E -e "$2""#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh", dir, pattern]);
    let output = common::child::run("sh", &mut cmd, b"", CHECK_DEADLINE)?;
    pass_through(&output.stderr);
    let shown = format!(
        "ls -l {} | LC_ALL=C grep -E -e {}",
        shell_words::quote(dir),
        shell_words::quote(pattern)
    );
    Ok(Reference {
        shown,
        output: output.stdout,
    })
}

/// Run it with our own roles, as child processes of this binary: `pipe-demo pipeline
/// 'ls -l DIR' 'pipe-demo grep -E -- PATTERN'` (supervised, with a deadline). `-E`: the
/// demo's PATTERN is in the regex crate's syntax, which is what `grep -E` reads here.
fn roles_reference(dir: &str, pattern: &str) -> Result<Reference> {
    let exe = std::env::current_exe().ctx("readlink", "/proc/self/exe")?;
    let exe = exe
        .to_str()
        .ok_or_else(|| Error::msg(format!("{}: path is not UTF-8", exe.display())))?;
    let ls_stage = format!("ls -l {}", shell_words::quote(dir));
    // `--` only where needed, so the narration reads like what a user would type.
    let dashes = if pattern.starts_with('-') { "-- " } else { "" };
    let grep_stage = |prog: &str| {
        format!(
            "{} grep -E {dashes}{}",
            shell_words::quote(prog),
            shell_words::quote(pattern)
        )
    };
    let mut cmd = Command::new(exe);
    cmd.args(["pipeline", "--", &ls_stage, &grep_stage(exe)]);
    let output = common::child::run("pipe-demo pipeline", &mut cmd, b"", CHECK_DEADLINE)?;
    pass_through(&output.stderr);
    let shown = format!(
        "pipe-demo pipeline {} {}",
        quote_stage(&ls_stage),
        quote_stage(&grep_stage("pipe-demo"))
    );
    Ok(Reference {
        shown,
        output: output.stdout,
    })
}

/// A reference run's stderr, collected whole by `common::child::run`, passed on to ours: its
/// error messages, and with `-v` the trace of every process it started (the pipeline and its
/// stages inherit tracing), so one `-v` narrates the whole demo.
fn pass_through(stderr: &[u8]) {
    // Narration, like the trace itself: not worth failing the demo for.
    let _ = io::stderr().lock().write_all(stderr);
}

/// Quote a stage for display: in double quotes when that keeps it readable and means the same
/// to a shell (`"pipe-demo grep 'txt$'"`), else as shell-words does.
fn quote_stage(stage: &str) -> String {
    let b = stage.as_bytes();
    let plain_dollars = b
        .iter()
        .enumerate()
        .all(|(i, &c)| c != b'$' || matches!(b.get(i + 1), None | Some(b'\'')));
    if stage.contains(['"', '\\', '`']) || !plain_dollars {
        shell_words::quote(stage).into_owned()
    } else {
        format!("\"{stage}\"")
    }
}

/// `--dir` must name a directory; say so in one line if it does not.
fn checked_dir(dir: &Path) -> Result<PathBuf> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(dir.to_owned()),
        Ok(_) => Err(Error::Usage(format!(
            "--dir {}: not a directory",
            dir.display()
        ))),
        Err(e) => Err(Error::Usage(format!(
            "--dir {}: {}",
            dir.display(),
            common::error::io_cause(&e)
        ))),
    }
}

/// The directory as ls's argument: UTF-8 (it goes through our word lists), and never
/// mistaken for an option.
fn dir_argument(dir: &Path) -> Result<String> {
    let s = dir
        .to_str()
        .ok_or_else(|| Error::Usage(format!("--dir {}: not valid UTF-8", dir.display())))?;
    Ok(if s.starts_with('-') {
        format!("./{s}")
    } else {
        s.to_owned()
    })
}

/// A fresh private directory with the sample files, removed when the handle is dropped.
fn sample_dir() -> Result<tempfile::TempDir> {
    let tmp = tempfile::Builder::new()
        .prefix("pipe-demo-")
        .tempdir()
        .ctx("mkdtemp", std::env::temp_dir().display())?;
    for (i, name) in SAMPLE.iter().enumerate() {
        let path = tmp.path().join(name);
        std::fs::write(&path, "x".repeat(10 * (i + 1))).ctx("write", path.display())?;
    }
    Ok(tmp)
}
