//! The role processes that `counter`, `bridge` and `demo` start: each a real child running
//! this same binary (`common::child::RoleCommand`), with a deadline, in a process group of its
//! own, stopped (SIGTERM, then SIGKILL) when its handle is dropped, and sent SIGTERM by the
//! kernel if we die without dropping it (`kill -9`: `PR_SET_PDEATHSIG`).

use std::process::Stdio;
use std::time::Duration;

use common::Result;
use common::child::{Ended, RoleCommand, Supervised};
use common::cleanup::Shutdown;

/// How long a role may run: far more than it needs; reached only if something hangs.
pub const DEADLINE: Duration = Duration::from_secs(600);

/// `sem-demo ARGS...` as the role child `label`: stdin and stdout to /dev/null, stderr shared
/// with ours. A group of its own: a Ctrl-C at the terminal reaches only us, and we stop the
/// roles in order as their handles drop, after which our guards remove the objects.
pub fn start(label: &str, args: &[&str]) -> Result<Supervised> {
    RoleCommand::new(label, DEADLINE)?
        .args(args)
        .stdout(Stdio::null())
        .spawn()
}

/// Wait until every child has exited; returns the ones that failed, as `label status`. A
/// stop signal ends the wait at once with [`common::Error::Interrupted`] (the caller's
/// handles then stop the children): each wait sleeps in `poll` on the child's pidfd and the
/// shutdown's self-pipe.
pub fn wait_all(children: &[Supervised], shutdown: &Shutdown) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for child in children {
        let status = child.wait_or_stop(DEADLINE, shutdown)?;
        if !status.success() {
            failed.push(format!("{} {}", child.label(), Ended::from(status)));
        }
    }
    Ok(failed)
}
