//! The log daemon: create the FIFO, read records from any number of writers, append them to
//! the log with a timestamp; SIGHUP reopens the log, SIGTERM/SIGINT drain and clean up.
//!
//! The calls, in the order [`run`] makes them (the order of the start-up matters):
//!
//! 1. sigaction: SIGINT/SIGTERM and SIGHUP each set a flag and write a self-pipe, before any
//!    thread exists (signal dispositions are process-wide); SIGXFSZ ignored;
//! 2. the pid file's locks (see [`common::pidfile`]), which tell a live rival (refuse) from the
//!    leftovers of a daemon killed with -9 (take over);
//! 3. `mkfifo(0600)`, or, if something is at the path already, vet it: a FIFO of ours that
//!    nobody reads is a stale leftover to reuse; a symlink, another kind of file, another
//!    user's FIFO or a FIFO somebody reads are refused;
//! 4. open the read end non-blocking, then a write end of our own (see [`open_fifo`]);
//! 5. open the log (see [`crate::logfile`]);
//! 6. announce readiness (see [`common::lifecycle`]): `ready: pid N fifo PATH` on stdout, and
//!    `READY=1` to a service manager's `NOTIFY_SOCKET`;
//! 7. then sleep in `poll` on the FIFO and the two self-pipes; `read` up to 64 KiB at a time,
//!    `write` the log lines when the pipe runs dry;
//! 8. on SIGTERM/SIGINT: `STOPPING=1` (with `NOTIFY_SOCKET`), unlink the FIFO and the pid
//!    file's name, close our own write end, drain until EOF (every writer gone) or
//!    `--drain-timeout`, close the read end right after the last read.
//!
//! # Pitfalls
//!
//! - **EOF whenever the last writer leaves.** A FIFO's reader sees EOF once no writer holds
//!   it, and `poll` then reports POLLHUP at every call: a busy loop. The daemon's own write
//!   end, never written to, keeps the stream open ([`open_fifo`]).
//! - **A blocking open for reading waits for a writer**: the read end is opened with
//!   O_NONBLOCK, and what was opened is checked with `fstat` (the path could have been
//!   swapped after `mkfifo`).
//! - **SA_RESTART hides signals from a blocking call**, and a busy pipe may never run dry:
//!   `poll` watches the self-pipes beside the FIFO, and one wake-up reads at most
//!   `READS_PER_WAKE` times before the flags are looked at again.
//! - **A rotation asked for before a stop** must still happen: SIGHUP is taken first.
//! - **A stop while writers are mid-stream**: the drain logs what they send until they close
//!   the FIFO; a record written between the last read and the close is lost with the pipe, as
//!   for any FIFO reader, so only a writer that outlives `--drain-timeout` can lose one.
//! - **A stdout log**: one whose reader goes away (`| head -1`) stops the daemon at once,
//!   FIFO and pid file removed, exit 0, as a filter does on EPIPE, before it takes a record
//!   it would drop; one whose reader reads nothing (a stopped `less`) is waited for in
//!   `poll`, never in `write` (see [`crate::logfile`]), until a stop signal comes: a second
//!   later the daemon gives up on it, counts the records it could not write, and stops
//!   without waiting for writers (what the pipe holds is counted too, and a writer's next
//!   record gets EPIPE).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::cleanup::{Shutdown, Unlink};
use common::lifecycle;
use common::out::Output;
use common::pidfile::{self, PidFile};
use common::{Context, Error, Result, trace};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::SigHandler;
use nix::sys::stat::{Mode, fchmod, fstat};

use crate::cli::DaemonArgs;
use crate::fifo::{existing_fifo, fifo_path, has_reader, pid_path_for};
use crate::logfile::{Log, file_id, say};
use crate::protocol::LogLines;

/// One `read()` takes up to this much: a default-sized pipe (64 KiB) in one call.
const READ_SIZE: usize = 64 * 1024;

/// The pipe buffer the daemon asks for (see [`grow_pipe`]).
const PIPE_SIZE: libc::c_int = 1024 * 1024;

/// How many reads one wake-up may do before the daemon looks at its signal flags again. A
/// busy pipe may never run dry, and the work per loop must be bounded for SIGHUP and SIGTERM
/// to take effect promptly (signal-hook's advice for the flag pattern).
const READS_PER_WAKE: usize = 16;

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(args: &DaemonArgs) -> Result<ExitCode> {
    let shutdown = Shutdown::install()?;
    let hangup = Hangup::install()?;
    // Past a file-size limit (`ulimit -f`) a write raises SIGXFSZ, whose default action kills
    // the process without a word. Ignored, the write fails with EFBIG, which the log reports
    // and survives like a full disk.
    // SAFETY: SIG_IGN installs no handler code, so nothing can run in signal context.
    unsafe { nix::sys::signal::signal(nix::sys::signal::Signal::SIGXFSZ, SigHandler::SigIgn) }
        .ctx("signal", "SIGXFSZ")?;
    let fifo = fifo_path(args.fifo.as_deref())?;
    let pid_path = args.pid_file.clone().unwrap_or_else(|| pid_path_for(&fifo));
    // Status lines for people go to stderr (stdout may be the log itself, with `--log -`),
    // through common::out::Output, which never blocks: a stderr nobody reads costs lines,
    // never a stop.
    let mut status = Output::stderr();

    // Declared first, dropped last: the pid file (and its lock) outlives the FIFO, so a
    // newcomer that gets the lock never finds our FIFO still in place.
    let pid_file = take_pid_file(&pid_path, &fifo)?;
    let fifo_guard = create_fifo(&fifo, args.fifo.as_deref(), &mut status)?;
    let (read_end, own_write_end) = open_fifo(&fifo)?;
    // The log must not be the FIFO or the pid file, under whatever name it was given.
    let ours = [
        (
            file_id(&read_end, &fifo.display().to_string())?,
            fifo.as_path(),
        ),
        (pid_file.id(), pid_path.as_path()),
    ];
    let mut log = Log::open(&args.log, &ours, status)?;

    // The details for a human on stderr, then the one readiness line every daemon prints
    // (common::lifecycle): the FIFO exists and is read, so a writer that starts now succeeds.
    let name = log.name();
    log.say(format_args!(
        "reads {}, logs to {name} (pid file {})",
        fifo.display(),
        pid_file.path().display()
    ));
    let fifo_arg = match &args.fifo {
        Some(p) => format!(" --fifo {}", p.display()),
        None => String::new(),
    };
    log.say(format_args!(
        "try: fifo-demo log{fifo_arg} hello   (stop with kill {})",
        std::process::id()
    ));
    match lifecycle::ready(format_args!("fifo {}", fifo.display())) {
        // Stopped while a stalled stdout held the ready line back: a stop as asked, which the
        // loop below begins at once.
        Ok(()) | Err(Error::Interrupted(_)) => {}
        Err(e) => return Err(e),
    }

    let mut reader = Reader::new(read_end);
    // Set when our stdout (`--log -`) loses its reader: see below.
    let mut output_gone = false;
    loop {
        // SIGHUP first: a rotation requested before a SIGTERM must still happen, or the
        // records read in between would go to the renamed file and no new log would appear.
        if hangup.take() && broken_pipe(log.reopen(&ours))? {
            output_gone = true;
            break;
        }
        if shutdown.requested() {
            break;
        }
        // Poll with no timeout: with no writers the daemon sleeps in the kernel and uses no
        // CPU at all. The self-pipes wake it for signals, which SA_RESTART would not.
        let fifo_fd = reader
            .fd
            .as_ref()
            .expect("the read end is open until shutdown");
        let mut fds = vec![
            PollFd::new(fifo_fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
            PollFd::new(hangup.wake_read.as_fd(), PollFlags::POLLIN),
        ];
        // With `--log -` into a pipe, watch that pipe too, asking for no event: poll always
        // reports POLLERR on a pipe whose reader has gone (POLLHUP on a hung-up terminal or
        // socket). Waiting for our next write to fail would mean reading records first, and
        // dropping them while their writers were told they were sent.
        let out = log.stdout_fd().map(|out| {
            fds.push(PollFd::new(out, PollFlags::empty()));
            fds.len() - 1
        });
        // Status lines that found stderr full wait for room (common::out::Output).
        let status = log.status.waiting_fd().map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLOUT));
            fds.len() - 1
        });
        // About to sleep, perhaps for long: a pending count of repeated trace lines goes out.
        common::narrate::flush();
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", fifo.display(), e)),
        }
        let revents = |i: Option<usize>| {
            i.and_then(|i| fds[i].revents())
                .unwrap_or(PollFlags::empty())
        };
        let (out_gone, room) = (
            revents(out).intersects(PollFlags::POLLERR | PollFlags::POLLHUP),
            !revents(status).is_empty(),
        );
        if out_gone {
            output_gone = true;
            break;
        }
        if room {
            log.status.flush()?;
        }
        let pumped = reader.pump(&mut log, READS_PER_WAKE, || {
            shutdown.requested() || hangup.pending()
        });
        // The reader may also leave between poll and write: the write then fails with EPIPE.
        if broken_pipe(pumped)? {
            output_gone = true;
            break;
        }
    }

    // Once, for either kind of stop: the service manager learns that a stop has begun.
    lifecycle::stopping();
    if output_gone {
        // Nobody reads our output any more (`fifo-demo daemon --log - | head -1`): each
        // record read from now on would be dropped. Stop as a filter stops on a broken pipe,
        // with status 0, but first stop taking records: remove the name, so no new writer
        // opens the FIFO, and close both of our ends at once, so a writer that still holds it
        // gets EPIPE at its next write instead of a success (`fifo-demo log` then says how
        // many bytes, if any, were left unread in the pipe).
        drop(fifo_guard);
        pid_file.unlink();
        drop(own_write_end);
        reader.close();
        log.say(format_args!(
            "stdout has no reader any more: stopped; removed {} and {}",
            fifo.display(),
            pid_path.display()
        ));
        log.status.drain(None)?;
        drop(pid_file);
        return Ok(ExitCode::SUCCESS);
    }
    // Shutting down. Remove the name first so no new writer can open the FIFO, and close our
    // own write end, so that the pipe reports EOF as soon as the writers that still hold it
    // have closed it. Then drain: read and log until that EOF, or until the drain timeout if
    // a writer does not finish, and close the read end right after the last read. From then
    // on a writer's write fails with EPIPE, which `fifo-demo log` reports. One window stays
    // open, as for any FIFO reader: a record written between that last read and the close is
    // accepted by the kernel and discarded with the pipe. Only a writer still writing when
    // the timeout expires can hit it; stop the writers first to lose nothing.
    drop(fifo_guard);
    // The pid file's name goes too, while we keep its lock: a second signal during the drain
    // exits at once (common::cleanup), and must not leave it behind. (In `fifo-demo demo`
    // that happens on a double Ctrl-C: the demo's teardown sends SIGTERM, and the demo's hard
    // exit sends another through PR_SET_PDEATHSIG.)
    pid_file.unlink();
    drop(own_write_end);
    let timed_out = reader.drain(&mut log, args.drain_timeout)?;
    reader.close();
    if timed_out {
        log.say(format_args!(
            "writers still held {} after {:?}; closed it (their further writes fail with EPIPE)",
            fifo.display(),
            args.drain_timeout
        ));
    }
    reader.finish(&mut log)?;
    log.flush()?;
    let sig = shutdown.signal().map_or("signal", |s| s.as_str());
    let dropped = match log.dropped() {
        0 => String::new(),
        n => format!(", dropped {n} that the log could not take"),
    };
    let unwritten = match log.unwritten() {
        0 => String::new(),
        n => format!(", could not write {n} to stdout (nothing read it)"),
    };
    let lost = log.dropped() + log.unwritten();
    log.say(format_args!(
        "{sig}: logged {} records{dropped}{unwritten}; removed {} and {}",
        reader.records - lost,
        fifo.display(),
        pid_path.display()
    ));
    // A stalled stderr gets a moment to take the last lines (common::out::DRAIN); a second
    // signal meanwhile exits at once.
    log.status.drain(None)?;
    drop(pid_file);
    // Records were lost: the exit status says so too, not only the line above.
    Ok(if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// True if `result` failed with a broken pipe (our stdout lost its reader); other errors are
/// returned as they are.
fn broken_pipe<T>(result: Result<T>) -> Result<bool> {
    match result {
        Ok(_) => Ok(false),
        Err(e) if e.is_broken_pipe() => Ok(true),
        Err(e) => Err(e),
    }
}

/// Take the pid file, or explain which live daemon holds it.
fn take_pid_file(pid_path: &Path, fifo: &Path) -> Result<PidFile> {
    match PidFile::create(pid_path) {
        Ok(p) => Ok(p),
        // The lock says "a daemon is alive"; say it in terms of the FIFO the user asked for.
        Err(e) => match pidfile::read(pid_path) {
            Ok(pid) => Err(Error::msg(format!(
                "a log daemon (pid {pid}) is already reading {}; refusing to start a second one",
                fifo.display()
            ))),
            Err(_) => Err(e),
        },
    }
}

/// Create the FIFO with mode 0600, or vet and reuse a stale one, and guard it for removal.
fn create_fifo(fifo: &Path, arg: Option<&Path>, status: &mut Output) -> Result<Unlink> {
    let mode = Mode::S_IRUSR | Mode::S_IWUSR;
    loop {
        // mkfifo fails with EEXIST rather than touching whatever is at the path (like
        // O_CREAT|O_EXCL), so a planted symlink is never followed.
        match nix::unistd::mkfifo(fifo, mode) {
            Ok(()) => {
                trace!("mkfifo({}, 0600) -> ok", fifo.display());
                return Ok(Unlink::path(fifo));
            }
            Err(Errno::EEXIST) => {
                trace!("mkfifo({}, 0600) -> EEXIST", fifo.display());
            }
            Err(e) => return Err(Error::sys("mkfifo", fifo.display(), e)),
        }
        // Something is there: refuse a symlink, a non-FIFO, someone else's FIFO.
        if !existing_fifo(fifo, arg)? {
            continue; // It vanished between the two calls: try to create it again.
        }
        // We hold the pid-file lock, so no daemon using that pid file is alive. One using
        // another pid file (or a `cat`) could still be reading it.
        if has_reader(fifo)? {
            return Err(Error::msg(format!(
                "{}: another process is already reading it; refusing to start",
                fifo.display()
            )));
        }
        say(
            status,
            format_args!(
                "reusing stale {} (its daemon died without cleaning up)",
                fifo.display()
            ),
        );
        return Ok(Unlink::path(fifo));
    }
}

/// Open the FIFO for reading, and keep a write end of our own.
///
/// The read end is opened with O_NONBLOCK, because a blocking open for reading waits until a
/// writer appears. Then we open a write end ourselves and never write to it (TLPI's
/// `fifo_seqnum_server` does the same): a FIFO reports EOF to its reader as soon as the last
/// writer closes, so without our own write end every writer that came and went would end the
/// stream, and `poll` would report POLLHUP forever — a busy loop. With it, the daemon simply
/// sleeps until the next writer writes.
fn open_fifo(fifo: &Path) -> Result<(OwnedFd, OwnedFd)> {
    let read_end = open(
        fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx("open", fifo.display())?;
    trace!("open({}, O_RDONLY|O_NONBLOCK) -> read end", fifo.display());
    // Between mkfifo/lstat and open the path could in principle have been replaced; what we
    // opened is what counts.
    let st = fstat(&read_end).ctx("fstat", fifo.display())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(Error::msg(format!("{}: is not a FIFO", fifo.display())));
    }
    // mkfifo applied the umask, and a reused FIFO may have been chmod-ed: make it 0600.
    fchmod(&read_end, Mode::S_IRUSR | Mode::S_IWUSR).ctx("fchmod", fifo.display())?;
    grow_pipe(&read_end, fifo);
    let own_write_end = open(
        fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx("open", fifo.display())?;
    trace!(
        "open({}, O_WRONLY) -> our own write end: no EOF when writers leave",
        fifo.display()
    );
    Ok((read_end, own_write_end))
}

/// Ask for a larger pipe buffer (Linux `F_SETPIPE_SZ`; 64 KiB by default). A burst from many
/// writers then waits in the kernel instead of making every writer sleep in poll(POLLOUT)
/// until we have caught up. Unprivileged processes may go up to /proc/sys/fs/pipe-max-size
/// (1 MiB by default); if the kernel refuses, the default buffer works too, only slower.
fn grow_pipe(fd: &OwnedFd, fifo: &Path) {
    match fcntl(fd, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE)) {
        Ok(size) => trace!(
            "fcntl({}, F_SETPIPE_SZ, {PIPE_SIZE}) -> {size}",
            fifo.display()
        ),
        Err(e) => trace!(
            "fcntl({}, F_SETPIPE_SZ, {PIPE_SIZE}) -> {e}; keeping the default size",
            fifo.display()
        ),
    }
}

/// SIGHUP as a flag plus a self-pipe, like [`Shutdown`] does for SIGTERM/SIGINT: the handler
/// only sets the flag and writes a byte; the main loop reopens the log.
struct Hangup {
    flag: Arc<AtomicBool>,
    wake_read: OwnedFd,
}

impl Hangup {
    fn install() -> Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let (wake_read, wake_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).ctx("pipe2", "sighup")?;
        let sig = signal_hook::consts::SIGHUP;
        signal_hook::flag::register(sig, Arc::clone(&flag)).ctx("sigaction", "SIGHUP")?;
        signal_hook::low_level::pipe::register_raw(sig, wake_write).ctx("sigaction", "SIGHUP")?;
        trace!("sigaction(SIGHUP) -> flag + self-pipe");
        Ok(Hangup { flag, wake_read })
    }

    fn pending(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// True if SIGHUP arrived since the last call; empties the self-pipe so that `poll` does
    /// not keep reporting it. (Signals coalesce: two quick SIGHUPs may reopen only once.)
    fn take(&self) -> bool {
        if !self.flag.swap(false, Ordering::SeqCst) {
            return false;
        }
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(&self.wake_read, &mut buf), Ok(n) if n > 0) {}
        true
    }
}

/// What a [`Reader::pump`] ended on.
#[derive(Debug, PartialEq, Eq)]
enum Pumped {
    /// The pipe is empty for now (EAGAIN, or a short read).
    Dry,
    /// End of file: no writer holds the FIFO any more (only once our own write end is closed).
    Eof,
    /// The read limit or the `stop` check ended it; more may wait.
    More,
}

/// Reads the FIFO and turns records into log lines.
struct Reader {
    /// The read end; `None` once closed at the end of the drain.
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    /// Records out of the bytes read, a record cut off by a read kept until its end comes.
    lines: LogLines,
    /// The log lines made from one read, written to the log in one call.
    out: Vec<u8>,
    records: u64,
}

impl Reader {
    fn new(fd: OwnedFd) -> Self {
        Reader {
            fd: Some(fd),
            buf: vec![0; READ_SIZE],
            lines: LogLines::default(),
            out: Vec::with_capacity(2 * READ_SIZE),
            records: 0,
        }
    }

    /// Read until the pipe is empty (EAGAIN) or EOF, at most `limit` times, or until `stop`
    /// says a signal wants attention. Flushes the log when the pipe ran dry.
    fn pump(&mut self, log: &mut Log, limit: usize, stop: impl Fn() -> bool) -> Result<Pumped> {
        for _ in 0..limit {
            let fd = self
                .fd
                .as_ref()
                .expect("the read end is open until the drain ends");
            let got = nix::unistd::read(fd, &mut self.buf);
            match got {
                // EOF: only after our own write end is closed (shutdown) and the writers left.
                Ok(0) => {
                    log.flush()?;
                    return Ok(Pumped::Eof);
                }
                Err(Errno::EAGAIN) => {
                    log.flush()?;
                    return Ok(Pumped::Dry);
                }
                // A short read emptied the pipe: flush now, without a second read() just to
                // be told EAGAIN. That saves a system call per wake-up when the writers are
                // slower than we are, which is most of the time.
                Ok(n) if n < self.buf.len() => {
                    trace!("read(fifo) -> {n} bytes");
                    self.consume(n, log)?;
                    log.flush()?;
                    return Ok(Pumped::Dry);
                }
                Ok(n) => {
                    trace!("read(fifo) -> {n} bytes (a full buffer; more may wait)");
                    self.consume(n, log)?;
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("read", "fifo", e)),
            }
            if stop() {
                break;
            }
        }
        Ok(Pumped::More)
    }

    /// At shutdown, with the FIFO's name and our own write end gone: read and log until EOF
    /// (every writer has closed the FIFO) or until `timeout`. True if it timed out.
    fn drain(&mut self, log: &mut Log, timeout: Duration) -> Result<bool> {
        let end = Instant::now() + timeout;
        loop {
            let pumped = self.pump(log, READS_PER_WAKE, || false)?;
            if pumped == Pumped::Eof {
                trace!("read(fifo) -> EOF: every writer has closed it");
                return Ok(false);
            }
            if pumped == Pumped::Dry && log.stalled() {
                // Nothing read from now on could be logged: what the pipe held is counted,
                // and the close that follows gives a writer EPIPE for anything more.
                return Ok(false);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(true);
            }
            let fd = self
                .fd
                .as_ref()
                .expect("the read end is open until the drain ends");
            // POLLIN for data, POLLHUP once the last writer has gone: either way, read again.
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, common::deadline::poll_timeout(left)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll", "fifo", e)),
            }
        }
    }

    /// Close the read end: writers that still hold the FIFO get EPIPE from now on, instead of
    /// having records accepted that nobody would read.
    fn close(&mut self) {
        if self.fd.take().is_some() {
            trace!("close(fifo read end)");
        }
    }

    /// Turn the first `n` bytes of the buffer into log lines, and hand them to the log.
    fn consume(&mut self, n: usize, log: &mut Log) -> Result<()> {
        self.out.clear();
        // One timestamp per read: the time the daemon received these records.
        let now = SystemTime::now();
        self.records += self.lines.push(&self.buf[..n], now, &mut self.out);
        log.write(&self.out)
    }

    /// At shutdown, a record whose newline never came is logged rather than dropped.
    fn finish(&mut self, log: &mut Log) -> Result<()> {
        self.out.clear();
        self.records += self.lines.finish(SystemTime::now(), &mut self.out);
        log.write(&self.out)
    }
}
