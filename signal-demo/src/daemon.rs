//! The `daemon` role: ticks on a timer, reloads its config on SIGHUP, stops gracefully on
//! SIGTERM/SIGINT, prints a status line on SIGUSR1, counts SIGUSR2 and queued realtime signals.
//!
//! What it shows: signals received as data, with no signal handler at all. The system calls,
//! in the order [`run`] makes them:
//!
//! ```text
//! sigprocmask(SIG_BLOCK, {HUP, INT, TERM, USR1, USR2, RTMIN..RTMAX})   first of all
//! signalfd(that set, SFD_NONBLOCK|SFD_CLOEXEC)          the signals, as a descriptor
//! open(/proc/self/fd/1, O_WRONLY|O_NONBLOCK)            a stdout that never blocks (Output)
//! open(config, O_NONBLOCK|O_NOCTTY); fstat; read        a regular file, or refused
//! open(pid file); flock(LOCK_EX|LOCK_NB); write(pid)    common::pidfile
//! timerfd_create(CLOCK_MONOTONIC); timerfd_settime(interval)
//! write(1, "ready: pid N pid-file PATH"); sendto($NOTIFY_SOCKET, "READY=1...") if set
//! loop:
//!     poll([signalfd, timerfd, stdout while lines wait for room])
//!     read(signalfd) until EAGAIN, then act on the batch   HUP: reload, TERM/INT: stop, ...
//!     read(timerfd) -> expirations: one tick (its work polls the signalfd too)
//! sendto($NOTIFY_SOCKET, "STOPPING=1") if set, at the first SIGTERM/SIGINT
//! unlink(pid file); exit 0
//! ```
//!
//! # Why a signalfd and not signal handlers
//!
//! A signal handler interrupts the program at an arbitrary instruction, possibly inside
//! `malloc` or while holding the stdout lock. It may therefore only call async-signal-safe
//! functions (signal-safety(7)): no allocation, no `println!`, no reading a config file. The
//! classic answers are "the handler sets a flag" or "the handler writes a byte to a
//! self-pipe", and the main loop does the work. Linux offers a third that removes handlers
//! altogether: **block** the signals with `sigprocmask`, so they stay pending instead of being
//! delivered, and **read** them from a `signalfd`, which is an ordinary descriptor that
//! `poll` can wait on beside the timer. Each read returns a `signalfd_siginfo` with the
//! signal number, the sender's pid and, for `sigqueue`, the value it carried. All work then
//! happens in plain code in the main loop.
//!
//! # Pitfalls
//!
//! - **Block first, before any thread exists.** The mask is per thread; a thread started
//!   earlier would keep the signals unblocked, and the kernel would deliver them to it (with
//!   the default action: SIGHUP and SIGUSR1 terminate!) instead of queueing them for the
//!   signalfd. `run` blocks before it does anything else; std starts no threads of its own.
//! - **Standard signals coalesce; realtime signals queue.** The kernel keeps one pending bit
//!   per standard signal: 100 SIGUSR2 sent while one is pending become one. Realtime signals
//!   (SIGRTMIN..SIGRTMAX) are queued one by one, in order, each with its value, up to
//!   RLIMIT_SIGPENDING. The demo shows both by counting.
//! - **The blocked mask is inherited across fork and execve.** A daemon that started children
//!   would have to unblock these signals in them; this one starts none.
//! - **A tick's work must not delay signals.** The simulated work (`work_ms`) polls the
//!   signalfd while it waits, so a signal is acted on at once, mid-tick too; SIGTERM lets the
//!   tick finish, a second SIGTERM/SIGINT does not wait.
//! - **Nor may a reader that stopped reading.** A `write` to a full pipe sleeps, and a daemon
//!   asleep in `write` never reads its signalfd: the blocked SIGTERM would wait for the reader.
//!   So stdout is written without blocking ([`common::out::Output`]) and polled for room beside the
//!   signalfd and the timer; lines that find no room are dropped and counted.
//!
//! # Batches
//!
//! Whenever the signalfd is readable, the loop drains it completely, then acts. The kernel
//! hands out pending standard signals lowest number first (SIGUSR1 = 10 before SIGUSR2 = 12)
//! and realtime ones after them, so a status request could overtake signals sent before it;
//! printing the status line only after the whole batch is counted makes it include every
//! signal sent before the SIGUSR1.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd, siginfo};
use nix::sys::time::{TimeSpec, TimeValLike};
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::cli::DaemonArgs;
use crate::config::Config;
use crate::signals::{self, Sig};
use common::out::Output;
use common::pidfile::PidFile;
use common::{Context, Result};

/// `si_code` of a signal sent with sigqueue(3).
const SI_QUEUE: i32 = libc::SI_QUEUE;

/// Run the daemon until SIGTERM/SIGINT. Returns the exit code: 0 after a graceful stop,
/// 128 + signal after a second stop signal.
pub fn run(args: &DaemonArgs) -> Result<ExitCode> {
    let (config_path, pid_file) = (args.config.as_path(), args.pid_file.as_deref());
    // First of all, before anything can start a thread: block the signals we read from the
    // signalfd (see the module docs).
    let set = signals::daemon_set();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx("sigprocmask", "SIG_BLOCK")?;
    common::trace!(
        "sigprocmask(SIG_BLOCK, {{HUP, INT, TERM, USR1, USR2, RTMIN={}..RTMAX={}}})",
        signals::rtmin(),
        signals::rtmax()
    );
    // Non-blocking, so draining reads until EAGAIN; close-on-exec, like every descriptor here.
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .ctx("signalfd", "daemon signals")?;
    common::trace!("signalfd(same set, SFD_NONBLOCK|SFD_CLOEXEC) -> ok");

    // Before the first line: from here on no write to stdout can block (see `output`).
    let mut out = Output::stdout();
    let config = Config::load(config_path)?;
    // Taken after the config is known to be good: a daemon that cannot start must not
    // disturb the pid file of one that runs. Removed when `_pid` drops, on every way out of
    // this function (a graceful stop, a second signal, an error, EPIPE on stdout).
    let _pid = pid_file.map(PidFile::create).transpose()?;

    // CLOCK_MONOTONIC: ticks must not jump when someone sets the wall clock.
    let tfd = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .ctx("timerfd_create", "CLOCK_MONOTONIC")?;
    arm(&tfd, config.interval_ms)?;

    // Every object is usable now: the signals are read from the signalfd, the timer runs and
    // the pid file names us. Say so, first thing on stdout (see `ready`).
    let what = match pid_file {
        Some(p) => format!("pid-file {}", p.display()),
        None => format!("config {}", config_path.display()),
    };
    ready(&mut out, &what)?;
    out.line(format_args!("generation 1: {config}"))?;
    let mut daemon = Daemon {
        out,
        path: config_path,
        config,
        generation: 1,
        ticks: 0,
        missed: 0,
        reloads_ok: 0,
        reloads_failed: 0,
        counts: Counts::default(),
        started: Instant::now(),
        stopping: false,
        sfd,
        tfd,
    };
    daemon.main_loop()
}

/// The lifecycle every daemon of the workspace shares ([`common::lifecycle`]): `ready: pid N
/// pid-file PATH` as the first line on stdout, and `READY=1`, `MAINPID`, `STATUS` to a service
/// manager that set `NOTIFY_SOCKET` (systemd `Type=notify`).
///
/// The line goes through [`Output`], not through `common::lifecycle::ready`, whose blocking
/// write to stdout a reader that is not reading yet would hold up before the loop ever runs
/// (with SIGTERM blocked, nothing would end that wait).
fn ready(out: &mut Output, what: &str) -> Result<()> {
    out.line(format_args!("{}", common::lifecycle::ready_line(what)))?;
    common::lifecycle::notify_ready(what)
}

/// (Re)arm the periodic timer. Setting a timerfd replaces its previous setting, and the first
/// expiry is one full interval from now.
fn arm(tfd: &TimerFd, interval_ms: u64) -> Result<()> {
    let ms = i64::try_from(interval_ms).unwrap_or(i64::MAX);
    tfd.set(
        Expiration::Interval(TimeSpec::milliseconds(ms)),
        TimerSetTimeFlags::empty(),
    )
    .ctx("timerfd_settime", format!("{interval_ms} ms"))?;
    common::trace!("timerfd_settime(interval {interval_ms} ms)");
    Ok(())
}

/// How many of each signal arrived (after coalescing, which happens in the kernel).
#[derive(Default)]
struct Counts {
    hup: u64,
    int: u64,
    term: u64,
    usr1: u64,
    usr2: u64,
    rtmin: u64,
    /// SIGRTMIN+1..=SIGRTMAX.
    rt_other: u64,
}

/// What the loop must do after a batch of signals.
enum After {
    Continue,
    /// Exit at once with this status (a second stop signal).
    ExitNow(u8),
}

struct Daemon<'a> {
    /// stdout, written without blocking: a stalled reader must not stop the loop.
    out: Output,
    path: &'a Path,
    config: Config,
    generation: u64,
    ticks: u64,
    /// Expirations that passed while a tick was still working (no tick is run for them).
    missed: u64,
    reloads_ok: u64,
    reloads_failed: u64,
    counts: Counts,
    started: Instant,
    /// SIGTERM/SIGINT seen: finish the tick in progress, then stop.
    stopping: bool,
    sfd: SignalFd,
    tfd: TimerFd,
}

impl Daemon<'_> {
    fn main_loop(&mut self) -> Result<ExitCode> {
        loop {
            let (sig_ready, timer_ready) = self.wait(true, PollTimeout::NONE)?;
            if sig_ready {
                if let After::ExitNow(code) = self.handle_signals()? {
                    return self.exit_now(code);
                }
            }
            if self.stopping {
                break;
            }
            if timer_ready {
                if let After::ExitNow(code) = self.tick()? {
                    return self.exit_now(code);
                }
            }
            if self.stopping {
                break;
            }
        }
        self.out.line(format_args!(
            "stopped after {} ticks at generation {}",
            self.ticks, self.generation
        ))?;
        self.out.drain(Some(self.sfd.as_fd()))?;
        Ok(ExitCode::SUCCESS)
    }

    /// A second stop signal: one last try to write what waits, without waiting.
    fn exit_now(&mut self, code: u8) -> Result<ExitCode> {
        self.out.flush()?;
        Ok(ExitCode::from(code))
    }

    /// Sleep in poll(2) until the signalfd is readable, the timer expired (if `timer`),
    /// stdout has room for lines that wait for it, or `timeout` passed. Writes what it can,
    /// then says whether signals and the timer are ready.
    fn wait(&mut self, timer: bool, timeout: PollTimeout) -> Result<(bool, bool)> {
        let (sig_ready, timer_ready, room) = {
            let mut fds = Vec::with_capacity(3);
            fds.push(PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN));
            let t = timer.then(|| {
                fds.push(PollFd::new(self.tfd.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            // Only while lines wait for room: a writable stdout would wake the loop at once.
            let o = self.out.waiting_fd().map(|fd| {
                fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                fds.len() - 1
            });
            poll_retry(&mut fds, timeout)?;
            let ready = |i: Option<usize>| i.is_some_and(|i| readable(&fds[i]));
            let room = o.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()));
            (ready(Some(0)), ready(t), room)
        };
        if room {
            // POLLERR (the reader has gone) shows up here too, as EPIPE from the write.
            self.out.flush()?;
        }
        Ok((sig_ready, timer_ready))
    }

    /// One tick: print the message, then do the tick's (simulated) work while still watching
    /// the signalfd, so that no signal waits for the work to end.
    fn tick(&mut self) -> Result<After> {
        let mut buf = [0u8; 8];
        // A timerfd read returns the number of expirations since the last read, as a u64.
        let expirations = match nix::unistd::read(self.tfd.as_fd(), &mut buf) {
            Ok(8) => u64::from_ne_bytes(buf),
            Ok(n) => {
                return Err(common::Error::msg(format!(
                    "read timerfd: short read of {n} bytes"
                )));
            }
            // Someone else's read or a re-arm got there first: no tick this time.
            Err(Errno::EAGAIN) => return Ok(After::Continue),
            Err(e) => return Err(common::Error::sys("read", "timerfd", e)),
        };
        common::trace!("read(timerfd) -> {expirations} expiration(s)");
        self.ticks += 1;
        self.missed += expirations.saturating_sub(1);
        let n = self.ticks;
        self.out
            .line(format_args!("tick {n}: {}", self.config.shown_message()))?;
        if self.config.work_ms == 0 {
            return Ok(After::Continue);
        }
        let end = Instant::now() + Duration::from_millis(self.config.work_ms);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let (sig_ready, _) = self.wait(false, common::deadline::poll_timeout(left))?;
            if sig_ready {
                if let After::ExitNow(code) = self.handle_signals()? {
                    return Ok(After::ExitNow(code));
                }
            }
        }
        self.out.line(format_args!("tick {n} finished"))?;
        Ok(After::Continue)
    }

    /// Drain the signalfd, then act on the whole batch (see "Batches" in the module docs).
    fn handle_signals(&mut self) -> Result<After> {
        let mut batch: Vec<siginfo> = Vec::new();
        while let Some(info) = self.sfd.read_signal().ctx("read", "signalfd")? {
            batch.push(info);
        }
        let mut status = false;
        for info in &batch {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            let sig = Sig::from_raw(signo);
            common::trace!(
                "read(signalfd) -> {} from pid {}",
                sig.map_or_else(|| signo.to_string(), |s| s.to_string()),
                info.ssi_pid
            );
            match Signal::try_from(signo) {
                Ok(Signal::SIGHUP) => {
                    self.counts.hup += 1;
                    self.reload()?;
                }
                Ok(s @ (Signal::SIGTERM | Signal::SIGINT)) => {
                    if s == Signal::SIGTERM {
                        self.counts.term += 1;
                    } else {
                        self.counts.int += 1;
                    }
                    if self.stopping {
                        // The user means it: no more waiting for the tick (status 128 + n,
                        // as if the signal had killed us, but with the pid file removed).
                        let code = common::error::exit_status_for(s);
                        self.out.line(format_args!(
                            "second {s} while shutting down: exiting now (status {code})"
                        ))?;
                        return Ok(After::ExitNow(code));
                    }
                    self.stopping = true;
                    // STOPPING=1 to a service manager, if any: the stop has begun.
                    common::lifecycle::stopping();
                    self.out.line(format_args!("shutting down"))?;
                }
                Ok(Signal::SIGUSR1) => {
                    self.counts.usr1 += 1;
                    status = true;
                }
                Ok(Signal::SIGUSR2) => self.counts.usr2 += 1,
                _ if sig.is_some_and(Sig::is_realtime) => {
                    // SIGRTMIN is the demo's; the rest of the range is named in the line.
                    let name = if signo == signals::rtmin() {
                        self.counts.rtmin += 1;
                        String::new()
                    } else {
                        self.counts.rt_other += 1;
                        format!(" {}", sig.map_or_else(String::new, |s| s.to_string()))
                    };
                    if info.ssi_code == SI_QUEUE {
                        self.out
                            .line(format_args!("rt signal{name} value={}", info.ssi_int))?;
                    } else {
                        // kill(2) carries no value; say so rather than print a made-up 0.
                        self.out.line(format_args!(
                            "rt signal{name} without a value (sent by kill, not sigqueue)"
                        ))?;
                    }
                }
                // Only the signals in our set can be read from the signalfd.
                _ => {}
            }
        }
        if status {
            self.status()?;
        }
        Ok(After::Continue)
    }

    /// SIGHUP: read the config file again; keep the old one if the new one is bad.
    fn reload(&mut self) -> Result<()> {
        match Config::load(self.path) {
            Ok(new) => {
                let diff = new.diff(&self.config);
                // Re-arm only if the interval changed: re-arming restarts the period, so a
                // stream of SIGHUPs faster than the interval would otherwise stop ticks.
                if new.interval_ms != self.config.interval_ms {
                    arm(&self.tfd, new.interval_ms)?;
                }
                self.config = new;
                self.generation += 1;
                self.reloads_ok += 1;
                self.out.line(format_args!(
                    "reloaded config (generation {}): {diff}",
                    self.generation
                ))
            }
            Err(e) => {
                self.reloads_failed += 1;
                self.out.line(format_args!(
                    "reload failed: {e}; keeping generation {}",
                    self.generation
                ))
            }
        }
    }

    /// SIGUSR1: one line with everything worth knowing.
    fn status(&mut self) -> Result<()> {
        let c = &self.counts;
        let line = format!(
            "status: uptime {:.3}s, ticks {} ({} missed), generation {}, reloads {} ok {} failed, \
             signals HUP={} INT={} TERM={} USR1={} USR2={} RTMIN={} \
             RTMIN+1..RTMAX={}",
            self.started.elapsed().as_secs_f64(),
            self.ticks,
            self.missed,
            self.generation,
            self.reloads_ok,
            self.reloads_failed,
            c.hup,
            c.int,
            c.term,
            c.usr1,
            c.usr2,
            c.rtmin,
            c.rt_other
        );
        self.out.line(format_args!("{line}"))
    }
}

/// poll(2), retried on EINTR (a stop/continue from the terminal can interrupt it).
fn poll_retry(fds: &mut [PollFd<'_>], timeout: PollTimeout) -> Result<()> {
    loop {
        match poll(fds, timeout) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(common::Error::sys("poll", "signalfd, timerfd", e)),
        }
    }
}

fn readable(fd: &PollFd<'_>) -> bool {
    fd.revents()
        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
}
