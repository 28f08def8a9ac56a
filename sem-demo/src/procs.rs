//! The role processes that `counter`, `bridge` and `demo` start: each a real child running
//! this same binary, with a deadline, in a process group of its own, stopped (SIGTERM, then
//! SIGKILL) when its handle is dropped, and sent SIGTERM by the kernel if we die without
//! dropping it (`kill -9`: `PR_SET_PDEATHSIG`, see `common::child::die_with_supervisor`).

use std::process::{Command, Stdio};
use std::time::Duration;

use common::child::{Ended, Options, Supervised, die_with_supervisor};
use common::cleanup::Shutdown;
use common::sink::Sink;
use common::{Context, Error, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

/// How long a role may run: far more than it needs; reached only if something hangs.
pub const DEADLINE: Duration = Duration::from_secs(600);

/// How often [`wait_all`] looks at its children while no signal arrives, in ms.
const CHECK_EVERY_MS: u8 = 50;

/// `sem-demo ARGS...` as a child, stdin and stdout to /dev/null, stderr shared with ours.
pub fn start(label: &str, args: &[&str]) -> Result<Supervised> {
    let exe = std::env::current_exe().ctx("current_exe", "")?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    // Killed with -9, we run no destructor and our watchdog thread dies with us: without
    // this, sixteen updaters of `counter --iters 10000000` would go on for minutes, orphans.
    die_with_supervisor(&mut cmd, Signal::SIGTERM);
    // A group of its own: a Ctrl-C at the terminal reaches only us, and we stop the roles in
    // order as their handles drop (after which our guards remove the objects).
    let opts = Options {
        deadline: Some(DEADLINE),
        own_group: true,
    };
    Supervised::spawn(label, &mut cmd, opts)
}

/// An error if SIGINT/SIGTERM asked us to stop.
pub fn interrupted(shutdown: &Shutdown) -> Result<()> {
    match shutdown.signal() {
        Some(sig) => Err(Error::msg(format!("interrupted by {sig}"))),
        None => Ok(()),
    }
}

/// Wait until every child has exited; returns the ones that failed, as `label status`. A
/// SIGINT/SIGTERM ends the wait at once with an error (the caller's handles then stop the
/// children): the wait sleeps in `poll` on the shutdown pipe, looking at the children
/// between naps (a child's exit has no descriptor here to wake us).
pub fn wait_all(children: &[Supervised], shutdown: &Shutdown) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for c in children {
        loop {
            interrupted(shutdown)?;
            if let Some(status) = c.try_wait()? {
                if !status.success() {
                    failed.push(format!("{} {}", c.label(), Ended::from(status)));
                }
                break;
            }
            let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(CHECK_EVERY_MS)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", "shutdown pipe", e)),
            }
        }
    }
    Ok(failed)
}

/// How long a write to a full stdout waits before looking for a shutdown again, in ms.
const STALLED_CHECK_MS: u64 = 50;

/// One line on stdout, like `common::say!`, but one that SIGINT/SIGTERM can interrupt: use
/// [`tell!`](crate::tell). Returns an error if a shutdown was asked for before it was written.
///
/// Pitfall: `say!` sleeps in `write(2)` while stdout is full, and the shutdown handlers are
/// installed with SA_RESTART, so a SIGTERM only sets the flag and the write goes back to
/// sleep: `sem-demo bridge --cars 1000 | less`, with `less` stopped, ignored every SIGTERM
/// and left its semaphore and board behind at the second one (which exits at once). Here
/// stdout is written without blocking (a non-blocking reopening of the same pipe or terminal,
/// see `common::sink::Sink`), and while it is full we sleep in `poll` for room with a short
/// timeout, looking at the shutdown flag in between.
pub fn line(shutdown: &Shutdown, args: std::fmt::Arguments<'_>) -> Result<()> {
    static STDOUT: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();
    let sink = STDOUT.get_or_init(|| Sink::new(std::io::stdout()));
    // The narration of the calls that led to this line comes before it, as with `say!`.
    common::narrate::flush();
    let text = format!("{args}\n");
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        interrupted(shutdown)?;
        match sink.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EAGAIN) => {
                sink.wait_writable(Duration::from_millis(STALLED_CHECK_MS));
            }
            Err(e) => return Err(Error::sys("write", "stdout", e)),
        }
    }
    Ok(())
}

/// `tell!(shutdown, "car {n} enters")?`: a line on stdout that a SIGTERM can interrupt (see
/// [`line`]).
#[macro_export]
macro_rules! tell {
    ($shutdown:expr, $($arg:tt)*) => {
        $crate::procs::line($shutdown, format_args!($($arg)*))
    };
}
