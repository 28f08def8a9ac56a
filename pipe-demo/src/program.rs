//! The program a child will run, looked up before `fork`: its words split as a shell would,
//! its argv as C strings, and the file PATH names for it.
//!
//! Why before `fork`: between `fork` and `execv` the child may only make async-signal-safe
//! calls (see [`crate::spawn`]). `execvp`'s PATH search is not one (it may allocate to build
//! each candidate), and neither is building C strings. So all of it happens here, in the
//! parent, and the child calls plain `execv` on the result.
//!
//! # Pitfalls
//!
//! - **A word with a NUL byte** cannot be a C string: refused here as a usage error, not met
//!   in the child.
//! - **Not found and not executable are different failures** (exit 127 and 126 in a shell):
//!   the search remembers a candidate that exists but may not be executed, as `execvp` does,
//!   so the error the child reports is the one a shell would.

use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::{Error, Result};
use nix::unistd::AccessFlags;

/// A command ready to run: its words, its argv as C strings, and the file `execv` will run.
pub struct Program {
    /// The words as given: `["ls", "-l", "/tmp"]`.
    words: Vec<String>,
    /// The same words as C strings, for execv's argv.
    argv: Vec<CString>,
    /// The result of the PATH search; `None` if nothing was found (the child then reports
    /// ENOENT through the error pipe, as a failed `execvp` would).
    path: Option<CString>,
}

impl Program {
    /// Split `line` into words as a shell would (quotes, backslashes), without running a shell.
    pub fn parse(line: &str) -> Result<Self> {
        let words = shell_words::split(line)
            .map_err(|e| Error::Usage(format!("cannot split '{line}' into words: {e}")))?;
        Self::new(words)
    }

    /// A program from words already split: `["ls", "-l", "/tmp"]`.
    pub fn new(words: Vec<String>) -> Result<Self> {
        let Some(name) = words.first() else {
            return Err(Error::Usage("empty command".into()));
        };
        let argv = words
            .iter()
            .map(|w| CString::new(w.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::Usage(format!("'{name}': a word contains a NUL byte")))?;
        let path = search_path(name).map(|p| {
            CString::new(p.as_os_str().as_bytes()).expect("built from NUL-free words and PATH")
        });
        Ok(Program { words, argv, path })
    }

    /// The command name (`argv[0]`).
    pub fn name(&self) -> &str {
        &self.words[0]
    }

    /// The argv for `execv`, as C strings (without the terminating null pointer).
    pub fn argv(&self) -> &[CString] {
        &self.argv
    }

    /// The file `execv` will run, or `None` if the PATH search found nothing.
    pub fn path(&self) -> Option<&CStr> {
        self.path.as_deref()
    }

    /// The words as given: `["ls", "-l", "/tmp"]`.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Why `execv` would fail, if it surely would: nothing found in PATH, or a file we may
    /// not execute. (It can still fail for other reasons; the error pipe reports those.)
    pub fn unrunnable(&self) -> Option<&'static str> {
        match &self.path {
            None => Some("not found"),
            Some(p) if nix::unistd::access(p.as_c_str(), AccessFlags::X_OK).is_err() => {
                Some("not executable")
            }
            Some(_) => None,
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shell_words::join(&self.words))
    }
}

/// `execvp`'s PATH search, done in the parent before `fork`.
///
/// `execvp` is not on POSIX's list of async-signal-safe functions (it may allocate to build
/// each candidate path), so the child calls `execv` on a path found here. Like `execvp`, a
/// name with a slash is used as it is, an empty PATH element means the current directory, and
/// a candidate that exists but is not executable is remembered in case nothing better comes.
fn search_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    if name.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut not_executable = None;
    for dir in path.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(name);
        if !candidate.is_file() {
            continue;
        }
        if nix::unistd::access(&candidate, AccessFlags::X_OK).is_ok() {
            return Some(candidate);
        }
        not_executable.get_or_insert(candidate);
    }
    not_executable
}
