//! The queues of one task queue, all named after its `--queue NAME`.
//!
//! | queue | written by | read by |
//! |---|---|---|
//! | `NAME` | producers (`submit`) | the supervisor |
//! | `NAME-done` | workers (hello, results) | the supervisor |
//! | `NAME-w<pid>` | the supervisor (tasks, stop) | worker `pid`: its inbox |
//! | `NAME-results` | the supervisor | `results`, any reader |
//! | `NAME-r<pid>-<stamp>` | the supervisor | `submit --wait` (pid): its own results |
//! | `NAME-dead` | the supervisor | `status`/`purge`, anyone inspecting |
//!
//! POSIX queue names are global to the machine, so every name starts with `/ipc-demo-` (see
//! `common::names`), which `make clean-ipc` sweeps.

use std::path::PathBuf;

use common::{Error, Result};
use nix::unistd::Pid;

/// The default `--queue`.
pub const DEFAULT_QUEUE: &str = "/ipc-demo-tasks";

/// Room left for the longest suffix (`-r`, a pid, `-` and 16 hex digits) under NAME_MAX (255,
/// without the slash).
const MAX_BASE: usize = 200;

/// The names of one task queue.
#[derive(Clone, Debug)]
pub struct Names {
    /// `NAME`: where producers put tasks.
    pub tasks: String,
    /// `NAME-results`.
    pub results: String,
    /// `NAME-dead`.
    pub dead: String,
    /// `NAME-done`: workers to supervisor.
    pub done: String,
    /// `NAME-held`: the supervisor's record of who holds what, and its lock (a POSIX shared
    /// memory object, see record.rs).
    pub record: String,
}

impl Names {
    /// Check `--queue` and derive the other names from it.
    pub fn new(base: &str) -> Result<Names> {
        let prefix = common::names::posix_name("");
        let ok = base.starts_with(&prefix)
            && base.len() > prefix.len()
            && base.len() <= MAX_BASE
            && !base[1..].contains('/')
            && base.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(Error::Usage(format!(
                "--queue {base:?}: a queue name is {prefix}<word> (printable ASCII, no other \
                 '/', at most {MAX_BASE} bytes), so that make clean-ipc can find it"
            )));
        }
        Ok(Names {
            tasks: base.to_owned(),
            results: format!("{base}-results"),
            dead: format!("{base}-dead"),
            done: format!("{base}-done"),
            record: format!("{base}-held"),
        })
    }

    /// The inbox of worker `pid`.
    pub fn inbox(&self, pid: Pid) -> String {
        format!("{}-w{pid}", self.tasks)
    }

    /// The reply queue of `submit --wait` process `pid`, started at `stamp` (CLOCK_MONOTONIC
    /// ns): a name no later process has, even one that gets the same pid, so a supervisor that
    /// still holds a queue by that name open holds the right one.
    pub fn reply(&self, pid: Pid, stamp: u64) -> String {
        format!("{}-r{pid}-{stamp:x}", self.tasks)
    }

    /// True if `name` is a reply queue of this task queue, `NAME-r<pid>` or
    /// `NAME-r<pid>-<hex>` (the supervisor sends results only to those, whatever a task
    /// message says).
    pub fn is_reply(&self, name: &str) -> bool {
        let Some(rest) = name
            .strip_prefix(&self.tasks)
            .and_then(|s| s.strip_prefix("-r"))
        else {
            return false;
        };
        let (pid, stamp) = rest.split_once('-').unwrap_or((rest, "0"));
        let digits = |s: &str, hex: bool| {
            !s.is_empty()
                && s.bytes().all(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        digits(pid, false) && digits(stamp, true)
    }

    /// The four queues the supervisor creates, in the order it creates them.
    pub fn all(&self) -> [&str; 4] {
        [&self.tasks, &self.results, &self.dead, &self.done]
    }

    /// The supervisor's pid file, in the runtime dir: `ipc-demo-tasks.pid`.
    pub fn pid_file(&self) -> Result<PathBuf> {
        common::names::runtime_path(&format!("{}.pid", &self.tasks[1..]))
    }

    /// The live supervisor's pid, whatever its runtime dir: the holder of its record's lock
    /// (record.rs). Or an error that says there is none and how to start one.
    pub fn supervisor(&self) -> Result<Pid> {
        let why = match crate::record::holder(self) {
            Ok(Some(pid)) => return Ok(pid),
            Ok(None) => format!("nobody holds the lock of {}", self.record),
            Err(e) => e.to_string(),
        };
        Err(Error::msg(format!(
            "no supervisor serves {} ({why}); start one with: mqueue-demo run --queue {}",
            self.tasks, self.tasks
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_base() {
        let n = Names::new("/ipc-demo-jobs").unwrap();
        assert_eq!(
            n.all(),
            [
                "/ipc-demo-jobs",
                "/ipc-demo-jobs-results",
                "/ipc-demo-jobs-dead",
                "/ipc-demo-jobs-done"
            ]
        );
        assert_eq!(n.inbox(Pid::from_raw(42)), "/ipc-demo-jobs-w42");
        assert!(n.is_reply("/ipc-demo-jobs-r42"));
        assert_eq!(
            n.reply(Pid::from_raw(42), 0xbeef),
            "/ipc-demo-jobs-r42-beef"
        );
        assert!(n.is_reply("/ipc-demo-jobs-r42-beef"));
        assert!(!n.is_reply("/ipc-demo-jobs-r"));
        assert!(!n.is_reply("/ipc-demo-jobs-r42-"));
        assert!(!n.is_reply("/ipc-demo-jobs-r42-xyz"));
        assert!(!n.is_reply("/ipc-demo-other-r42"));
    }

    #[test]
    fn foreign_names_are_refused() {
        for bad in [
            "/tasks",
            "ipc-demo-x",
            "/ipc-demo-",
            "/ipc-demo-a/b",
            "/ipc-demo-a b",
        ] {
            assert!(Names::new(bad).is_err(), "{bad}");
        }
    }
}
