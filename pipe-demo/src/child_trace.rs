//! The `-v` lines of a child between `fork` and `execv`, written without allocating.
//!
//! What it shows: how a forked child can still narrate what it does. The usual tools
//! (`format!`, `eprintln!`, the `common::narrate` timeline) allocate or take locks, which the
//! child must not do (see [`crate::spawn`]). So the one line that needs allocation, the
//! `execv` call with its path and argv, is formatted in the parent before `fork`; the others
//! carry only small numbers, which the child formats itself into a stack buffer. Each line goes
//! out with one `write(2)` to stderr:
//!
//! ```text
//! [pid 3474 stage 1 seq] dup2(4, 1): stdout is now the pipe
//! [pid 3474 stage 1 seq] close(4)
//! [pid 3474 stage 1 seq] execv(/usr/bin/seq, ["seq", "3"])
//! ```
//!
//! # Pitfalls
//!
//! - **The pid is the child's**, read with `getpid(2)` in the child (async-signal-safe): the
//!   parent's pid, formatted before `fork`, would be wrong.
//! - **One `write` per line**, so lines from stages running at the same time never interleave
//!   mid-line (writes to a pipe of at most PIPE_BUF bytes are atomic; the buffer is 512).

use std::os::fd::{BorrowedFd, RawFd};

use crate::program::Program;

/// A child's trace, prepared before `fork`. Every method is async-signal-safe, and does
/// nothing when tracing is off.
pub struct ChildTrace {
    /// `None` when tracing is off.
    prepared: Option<Prepared>,
}

struct Prepared {
    stderr: BorrowedFd<'static>,
    /// `stage 1 seq`.
    role: Vec<u8>,
    /// `execv(/usr/bin/seq, ["seq", "3"])`.
    execv: Vec<u8>,
}

impl ChildTrace {
    /// Format, in the parent, what the child of `role` running `prog` will need.
    pub fn prepare(role: &str, prog: &Program) -> Self {
        let prepared = common::narrate::enabled().then(|| Prepared {
            // SAFETY: fd 2 stays open for the life of the process (spawn::ensure_std_fds),
            // and the child only writes to it.
            stderr: unsafe { BorrowedFd::borrow_raw(2) },
            role: format!("{role} {}", prog.name()).into_bytes(),
            execv: match prog.path() {
                Some(p) => format!("execv({}, {:?})", p.to_string_lossy(), prog.words()),
                None => format!("execvp({}): not found in PATH", prog.name()),
            }
            .into_bytes(),
        });
        ChildTrace { prepared }
    }

    /// `dup2(4, 1): stdout is now the pipe`.
    pub fn dup2(&self, fd: RawFd, target: RawFd) {
        self.say(|l| {
            l.put(b"dup2(");
            l.num(fd);
            l.put(b", ");
            l.num(target);
            l.put(if target == 0 {
                b"): stdin is now the pipe"
            } else {
                b"): stdout is now the pipe"
            });
        });
    }

    /// `close(4)`.
    pub fn close(&self, fd: RawFd) {
        self.say(|l| {
            l.put(b"close(");
            l.num(fd);
            l.put(b")");
        });
    }

    /// The `execv` line prepared before `fork`.
    pub fn execv(&self) {
        self.say(|l| {
            if let Some(p) = &self.prepared {
                l.put(&p.execv);
            }
        });
    }

    /// Write `[pid N role] ` + what `body` puts + `\n` with one `write(2)`.
    fn say(&self, body: impl FnOnce(&mut Line)) {
        let Some(p) = &self.prepared else {
            return;
        };
        let mut l = Line {
            buf: [0; 512],
            len: 0,
        };
        l.put(b"[pid ");
        l.num(nix::unistd::getpid().as_raw());
        l.put(b" ");
        l.put(&p.role);
        l.put(b"] ");
        body(&mut l);
        // One byte is always kept free for the newline.
        l.buf[l.len] = b'\n';
        let _ = nix::unistd::write(p.stderr, &l.buf[..=l.len]);
    }
}

/// A line built on the stack; what does not fit is cut.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn put(&mut self, bytes: &[u8]) {
        let k = bytes.len().min(self.buf.len() - 1 - self.len);
        self.buf[self.len..self.len + k].copy_from_slice(&bytes[..k]);
        self.len += k;
    }

    /// A non-negative number in decimal (fds and pids are never negative here).
    fn num(&mut self, n: i32) {
        let mut n = u32::try_from(n).unwrap_or(0);
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::Line;

    fn line() -> Line {
        Line {
            buf: [0; 512],
            len: 0,
        }
    }

    #[test]
    fn numbers_are_written_in_decimal_without_allocating() {
        let mut l = line();
        for n in [0, 7, 42, 4_194_304, i32::MAX] {
            l.num(n);
            l.put(b" ");
        }
        assert_eq!(&l.buf[..l.len], b"0 7 42 4194304 2147483647 ");
    }

    #[test]
    fn a_long_line_is_cut_leaving_room_for_the_newline() {
        let mut l = line();
        l.put(&[b'x'; 600]);
        l.put(b"more");
        assert_eq!(l.len, 511);
    }
}
