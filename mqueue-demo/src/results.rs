//! `results`: print the results waiting in `NAME-results`; `--follow` waits for more with
//! `mq_notify`.
//!
//! `mq_notify(3)` asks the kernel to tell us (here with a signal, SIGUSR1, read from a
//! `signalfd`) when a message arrives. Its pitfalls, each handled below:
//!
//! - **One shot.** A notification removes the registration; to hear about the next message
//!   we must register again.
//! - **Only on empty -> non-empty.** A message arriving in a queue that already holds one
//!   notifies nobody. So we register *before* draining: drain first and register after, and a
//!   message arriving in between leaves the queue non-empty with nobody registered — we would
//!   wait for ever while a result sits in the queue.
//! - **One registered process per queue**, and a registration lasts until a notification
//!   uses it up: `mq_notify` while it is still in place fails with EBUSY, exactly as if
//!   another process held it. So we register again only after a *real* notification, one
//!   whose `si_code` is `SI_MESGQ`, never after any other wake-up: a SIGTERM or Ctrl-C (we
//!   check for a stop first, and leave), or a SIGUSR1 that someone sent with `kill`
//!   (`SI_USER`), which leaves our registration where it was. A second `results --follow` on
//!   the same queue does get EBUSY, and the error says so.
//! - **Not while someone is blocked in `mq_receive`** on the queue: that reader gets the
//!   message, and the registered process hears nothing.
//! - **The signal must be blocked** before registering, so it stays pending for the signalfd
//!   and never runs its default action (SIGUSR1's kills). This process has a single thread,
//!   so `sigprocmask` blocks it for the whole process; a program with threads must block it in
//!   every one of them (`pthread_sigmask` before starting them), or a thread that has it
//!   unblocked takes the signal and the process dies.
//!
//! On Linux the queue descriptor could simply be `poll`ed, as the supervisor does; this role
//! shows the portable POSIX way.
//!
//! Stopped by SIGINT, SIGTERM or SIGHUP, it leaves between two results (never between the
//! `mq_receive` that takes one and its line: a result taken is printed), and exits 128 + the
//! signal's number, as `tail -f` does; with `--count N` it exits 0 once it has printed N.

use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;

use common::cleanup::Shutdown;
use common::{Error, Result, say, trace};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::cli::ResultsArgs;
use crate::mq::{Access, Mq};
use crate::names::Names;
use crate::protocol::{self, Message, TaskResult};
use crate::queue::{Finder, Queue, Which};
use crate::sysv::Tick;

/// A result as one line: `ID STATUS attempt=N pid=P OUTPUT` (the output escaped: it comes from
/// another process).
pub fn show_result(r: &TaskResult) -> String {
    format!(
        "{} {} attempt={} pid={} {}",
        protocol::show_id(r.id),
        r.status,
        r.attempt,
        r.pid,
        common::out::escape(&r.output)
    )
}

/// Run `results`.
pub fn run(args: &ResultsArgs) -> Result<ExitCode> {
    let names = Names::new(&args.queue.name)?;
    // SIGHUP too: a closed terminal stops us cleanly instead of killing us mid-way.
    let shutdown = Shutdown::install_with(&[nix::sys::signal::Signal::SIGHUP])?;
    let finder = Finder::new(&names, args.queue.flavor())?;
    let queue = finder
        .open(Which::Results, Access::Read, true)
        .map_err(|e| match e.errno() {
            Some(Errno::ENOENT) => Error::msg(format!(
                "{} does not exist: no supervisor serves {} (start one with: mqueue-demo run)",
                names.results, names.tasks
            )),
            _ => e,
        })?;
    let mut printed = 0u64;
    let done = |n: u64| args.count.is_some_and(|c| n >= c);
    if !args.follow {
        drain(&queue, &mut printed, args.count, &shutdown)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Queue::Posix(mq) = &queue else {
        return follow_sysv(&queue, &shutdown, args.count);
    };

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGUSR1);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| Error::sys("sigprocmask", "SIGUSR1", e))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::sys("signalfd", "SIGUSR1", e))?;
    // True while our registration is in place: from mq_notify until a notification uses it up.
    let mut registered = false;
    loop {
        // Register first, then drain (see the module docs for why this order); register only
        // if the last registration was used up, or mq_notify fails with EBUSY.
        if !registered {
            notify(mq)?;
            registered = true;
        }
        drain(&queue, &mut printed, args.count, &shutdown)?;
        if done(printed) {
            return Ok(ExitCode::SUCCESS);
        }
        shutdown.err_if_requested()?;
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", &names.results, e)),
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            if info.ssi_code == libc::SI_MESGQ {
                trace!("read(signalfd) -> SIGUSR1 from mq_notify (si_code SI_MESGQ): used up");
                registered = false;
            } else {
                trace!(
                    "read(signalfd) -> SIGUSR1 from pid {} (si_code {}), not from mq_notify: \
                     still registered",
                    info.ssi_pid, info.ssi_code
                );
            }
        }
        // A stop is checked before registering again: we are leaving.
        shutdown.err_if_requested()?;
    }
}

/// `--follow --sysv`: System V has no mq_notify and no descriptor to poll, so the queue is
/// checked on a timer that backs off while it is empty (see `sysv::Tick`).
fn follow_sysv(queue: &Queue, shutdown: &Shutdown, count: Option<u64>) -> Result<ExitCode> {
    let mut printed = 0;
    let mut tick = Tick::new();
    loop {
        let before = printed;
        drain(queue, &mut printed, count, shutdown)?;
        if count.is_some_and(|c| printed >= c) {
            return Ok(ExitCode::SUCCESS);
        }
        shutdown.err_if_requested()?;
        if printed > before {
            tick.reset();
        }
        let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, common::deadline::poll_timeout(tick.next())) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", queue.name(), e)),
        }
    }
}

/// Print every result in the queue now (or up to `count` in all). A stop signal ends it
/// between two results, never between the `mq_receive` that takes one and its line.
fn drain(queue: &Queue, printed: &mut u64, count: Option<u64>, shutdown: &Shutdown) -> Result<()> {
    let mut buf = Vec::new();
    while count.is_none_or(|c| *printed < c) {
        shutdown.err_if_requested()?;
        match queue.receive(&mut buf) {
            Ok(_) => {}
            Err(Errno::EAGAIN) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(queue.receive_call(), queue.name(), e)),
        }
        match protocol::decode(&buf) {
            Ok(Message::Result(r)) => {
                *printed += 1;
                say!("{}", show_result(&r))?;
            }
            Ok(other) => eprintln!(
                "mqueue-demo: unexpected {other:?} in {}; dropped",
                queue.name()
            ),
            Err(e) => eprintln!("mqueue-demo: {}: {e}; dropped", queue.name()),
        }
    }
    Ok(())
}

/// `mq_notify(SIGEV_SIGNAL, SIGUSR1)`. nix 0.32 does not wrap mq_notify, hence libc.
fn notify(queue: &Mq) -> Result<()> {
    // SAFETY: sigevent is a plain C struct for which all-zero bytes are a valid value
    // (SIGEV_SIGNAL with no value); we set the two fields that matter next.
    let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
    sev.sigev_notify = libc::SIGEV_SIGNAL;
    sev.sigev_signo = libc::SIGUSR1;
    // SAFETY: the descriptor is an open queue we own, and `sev` is a valid sigevent that the
    // call only reads.
    let rc = unsafe { libc::mq_notify(queue.as_fd().as_raw_fd(), &sev) };
    match Errno::result(rc) {
        Ok(_) => {
            trace!(
                "mq_notify({}, SIGEV_SIGNAL SIGUSR1) -> registered",
                queue.name()
            );
            Ok(())
        }
        Err(Errno::EBUSY) => Err(Error::msg(format!(
            "mq_notify {}: another process is registered for it already (a queue takes one; \
             is another `results --follow` running?)",
            queue.name()
        ))),
        Err(e) => Err(Error::sys("mq_notify", queue.name(), e)),
    }
}
