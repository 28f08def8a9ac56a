//! The daemon's log: a file opened for appending, or stdout (`--log -`), behind a large
//! buffer; and the daemon's status lines on stderr, which say when the log fails.
//!
//! # Pitfalls
//!
//! - **A stdout nobody reads.** With `--log -` into a pipe whose reader has stopped (a
//!   stopped `less`, a stalled log shipper), a `write(2)` sleeps until the reader reads. A
//!   stop signal does not end that sleep: the handler runs, SA_RESTART restarts the write,
//!   and the daemon never sees its SIGTERM. So the log is written through a
//!   [`common::sink::Sink`], which never sleeps in `write`, and waits for room in `poll`
//!   beside the stop signal's self-pipe ([`common::out::wait_for_room`]): the reader sets
//!   the pace (the FIFO fills and the writers wait, nothing is dropped) until a stop comes;
//!   then a reader that takes nothing for a second more is given up on, and the records it
//!   never got are counted and reported (see [`Log::flush`]).
//! - **A log that cannot be written** (a full disk, a quota, a file-size limit) must not stop
//!   the daemon, and must not leave half a record in the file (see [`Log`]).

use std::fmt;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use common::out::Output;
use common::sink::Sink;
use common::{Context, Error, Result, tell, trace};
use nix::errno::Errno;
use nix::sys::stat::fstat;

use crate::protocol::END;

/// The log's write buffer; flushed whenever the pipe runs dry, so `tail -f` sees lines
/// promptly, and in large blocks while writers keep it busy.
const LOG_BUFFER: usize = 256 * 1024;

/// A status line for people on stderr, `fifo-demo daemon: TEXT` (see `status` in
/// `crate::daemon::run`).
pub fn say(status: &mut Output, text: fmt::Arguments<'_>) {
    // Output::stderr goes quiet when its reader leaves: there is nobody to tell, and the
    // daemon's job is the log. Nothing else makes it fail.
    let _ = tell!(status, "fifo-demo daemon: {text}");
}

/// The log: a file opened for appending, or stdout, behind a large buffer.
///
/// A log that cannot be written (a full disk, a quota, a file-size limit) does not stop the
/// daemon: writers would get EPIPE and lose everything. It says so once on stderr, keeps every
/// whole record that fitted (a record cut off by the failing write is truncated away, so the
/// log never ends in half a line), counts the records it has to drop, and tries again with the
/// next batch; when a write works again it says how many were dropped. Only a broken pipe
/// (`--log -` into `| head`) ends the daemon, as it ends any Unix filter. A stdout that is
/// read too slowly is waited for, and one that is not read at all is given up on only once a
/// stop has come (see [`Log::flush`]).
pub struct Log {
    /// `None` for stdout.
    path: Option<PathBuf>,
    /// The log file, or our own descriptor for stdout: what `fstat` looks at, and what a
    /// record cut off by a failing write is truncated from.
    file: File,
    /// The same file, written through a sink that never sleeps in `write(2)` (a pipe or a
    /// terminal reopened non-blocking, `MSG_DONTWAIT` on a socket; a regular file as it is).
    out: Sink,
    /// Whole log lines not yet written.
    buf: Vec<u8>,
    /// The error the last write failed with, while it keeps failing.
    failing: Option<std::io::Error>,
    /// Records dropped because the log could not take them.
    dropped: u64,
    /// Set when a stop found stdout without room and its reader took nothing more: from then
    /// on nothing is written, and every record is counted in `unwritten`.
    stalled: bool,
    /// Records that a stalled stdout never took.
    unwritten: u64,
    /// The daemon's status lines on stderr, which say when the log fails.
    pub status: Output,
}

/// Device and inode: what tells two names for one file apart from two files.
pub type FileId = (u64, u64);

impl Log {
    /// Open the log; refuse it if it is one of the daemon's own files (`not`), under any name.
    pub fn open(path: &Path, not: &[(FileId, &Path)], status: Output) -> Result<Log> {
        let (path, file) = if path.as_os_str() == "-" {
            // A descriptor of our own for stdout (F_DUPFD_CLOEXEC), written through our own
            // buffer: std's stdout would flush at every newline.
            let fd = std::io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .ctx("dup", "stdout")?;
            (None, File::from(fd))
        } else {
            (Some(path.to_owned()), Self::open_file(path, not)?)
        };
        let log = Log {
            path,
            out: sink_for(&file)?,
            file,
            buf: Vec::with_capacity(LOG_BUFFER),
            failing: None,
            dropped: 0,
            stalled: false,
            unwritten: 0,
            status,
        };
        if log.path.is_none() {
            check_not_ours(&log.file, "stdout", not)?;
        }
        Ok(log)
    }

    fn open_file(path: &Path, not: &[(FileId, &Path)]) -> Result<File> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .ctx("open", path.display())?;
        trace!("open({}, O_WRONLY|O_APPEND|O_CREAT, 0600)", path.display());
        check_not_ours(&file, &path.display().to_string(), not)?;
        Ok(file)
    }

    /// A status line on stderr.
    pub fn say(&mut self, text: fmt::Arguments<'_>) {
        say(&mut self.status, text);
    }

    /// Our stdout, when it is the log: the descriptor to watch for its reader leaving.
    pub fn stdout_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.path.is_none().then(|| self.out.as_fd())
    }

    /// Records dropped because the log could not take them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records that a stdout nobody read at a stop never got (see [`Log::flush`]).
    pub fn unwritten(&self) -> u64 {
        self.unwritten
    }

    /// True once a stop has given up on a stdout nobody reads: whatever is read from the FIFO
    /// from now on can only be counted, not logged.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string())
    }

    /// Add log lines; they are written when the buffer is full or at the next flush.
    pub fn write(&mut self, lines: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(lines);
        if self.buf.len() >= LOG_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// Write out the buffer. Fails only on a broken pipe; any other failure drops the
    /// buffered records, says so once, and is tried again next time.
    ///
    /// A stdout without room (a pipe, a socket, a terminal whose reader is slow) is waited
    /// for, however long, until a stop signal comes; then for at most `common::out::DRAIN`
    /// more. A reader that has taken nothing by then is given up on: the records not written
    /// whole are counted as unwritten (a half one that went out stays torn on that stdout),
    /// and so is every record after them ([`Log::stalled`]).
    pub fn flush(&mut self) -> Result<()> {
        if self.stalled {
            self.unwritten += memchr::memchr_iter(END, &self.buf).count() as u64;
            self.buf.clear();
            return Ok(());
        }
        let mut done = 0;
        while done < self.buf.len() {
            match self.out.try_write(&self.buf[done..]) {
                Ok(0) => {
                    let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return self.failed(done, e);
                }
                Ok(n) => done += n,
                Err(Errno::EAGAIN) => match common::out::wait_for_room(&self.out) {
                    Ok(()) => {}
                    Err(Error::Interrupted(_)) => {
                        self.give_up(done);
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                },
                Err(Errno::EPIPE) => return Err(Error::sys("write", self.name(), Errno::EPIPE)),
                Err(e) => return self.failed(done, e.into()),
            }
        }
        self.buf.clear();
        if let Some(e) = self.failing.take() {
            let (name, dropped) = (self.name(), self.dropped);
            self.say(format_args!(
                "write {name}: works again ({e} before); {dropped} records dropped meanwhile"
            ));
        }
        Ok(())
    }

    /// A stop came while stdout had no room, and its reader took nothing more: stop writing.
    /// `done` bytes of the buffer went out; the records among the rest are counted.
    fn give_up(&mut self, done: usize) {
        let whole = memchr::memrchr(END, &self.buf[..done]).map_or(0, |nl| nl + 1);
        let lost = memchr::memchr_iter(END, &self.buf[whole..]).count() as u64;
        trace!(
            "write({}) -> no room after the stop: {lost} records not written",
            self.name()
        );
        self.unwritten += lost;
        self.buf.clear();
        self.stalled = true;
    }

    /// A write failed after `done` bytes of the buffer went out: keep the whole records among
    /// them, drop the rest, and report the first failure of a run.
    fn failed(&mut self, done: usize, e: std::io::Error) -> Result<()> {
        let whole = memchr::memrchr(END, &self.buf[..done]).map_or(0, |nl| nl + 1);
        if done > whole {
            // Half a record reached the file: cut it off again, so the log holds whole lines.
            let cut = (done - whole) as u64;
            let _ = self
                .file
                .metadata()
                .and_then(|m| self.file.set_len(m.len().saturating_sub(cut)));
        }
        let lost = memchr::memchr_iter(END, &self.buf[whole..]).count() as u64;
        self.dropped += lost;
        self.buf.clear();
        if self.failing.is_none() {
            let name = self.name();
            self.say(format_args!(
                "write {name}: {e}; dropping records until it works again ({lost} so far; \
                 every whole record that fitted is kept)"
            ));
        }
        self.failing = Some(e);
        Ok(())
    }

    /// SIGHUP: flush what belongs to the old file, then open the path again. After
    /// `mv app.log app.log.1` the old descriptor still writes to app.log.1 (a rename does not
    /// change the inode), so everything read before the reopen lands there and everything
    /// after in a new app.log: nothing is lost (logrotate's "create" mode).
    ///
    /// If the path cannot be opened (it became a directory, the disk is full), the daemon
    /// keeps logging to the file it has, says so, and tries again at the next SIGHUP, as
    /// rsyslog does: exiting would lose every record the writers send meanwhile.
    pub fn reopen(&mut self, not: &[(FileId, &Path)]) -> Result<()> {
        self.flush()?;
        let Some(path) = self.path.clone() else {
            trace!("SIGHUP: logging to stdout, nothing to reopen");
            return Ok(());
        };
        match Self::open_file(&path, not).and_then(|file| Ok((sink_for(&file)?, file))) {
            Ok((out, file)) => {
                // Replacing the file closes the old one; its buffer is already empty.
                (self.out, self.file) = (out, file);
                self.say(format_args!("SIGHUP: reopened {}", path.display()));
            }
            Err(e) => self.say(format_args!(
                "SIGHUP: {e}; still logging to the file opened before; \
                 will try again at the next SIGHUP"
            )),
        }
        Ok(())
    }
}

/// The sink the log's bytes go through: a descriptor of its own for `file` (see [`Sink::new`]).
fn sink_for(file: &File) -> Result<Sink> {
    Ok(Sink::new(file.try_clone().ctx("dup", "log")?))
}

/// The device and inode of an open file.
pub fn file_id(file: &impl AsFd, name: &str) -> Result<FileId> {
    let st = fstat(file).ctx("fstat", name)?;
    Ok((st.st_dev, st.st_ino))
}

/// Refuse a log that is one of `ours` (the FIFO, the pid file) under another name or the same:
/// the daemon would read its own log lines back from the FIFO, forever, or overwrite its pid.
fn check_not_ours(file: &File, name: &str, ours: &[(FileId, &Path)]) -> Result<()> {
    let id = file_id(file, name)?;
    match ours.iter().find(|(other, _)| *other == id) {
        Some((_, other)) => Err(Error::msg(format!(
            "--log {name}: is {} itself (the same file); choose another log file",
            other.display()
        ))),
        None => Ok(()),
    }
}
