//! One daemon lifecycle: how a long-running role says that it is ready, and that it stops.
//!
//! Every daemon of the workspace (fifo-demo daemon, socket-demo servers, signal-demo daemon,
//! and the ones to come) follows the same convention, so that a script, a test or a service
//! manager learns it once:
//!
//! 1. **Readiness, on stdout.** Once every object the daemon offers is usable (created,
//!    opened, bound, listening: a client that starts now succeeds), it calls [`ready`], which
//!    prints exactly one line on stdout and flushes it:
//!
//!    ```text
//!    ready: pid 4242 fifo /run/user/1000/ipc-demo/log.fifo
//!    ```
//!
//!    `ready: pid N`, then what a client needs to reach it: a kind and its path or address
//!    (`fifo PATH`, `socket PATH`, `tcp 127.0.0.1:6380`, `pid-file PATH`). A script waits for
//!    it with `read -r line` or `grep -m1 '^ready:'`; nothing else on stdout starts with
//!    `ready:`. Human-oriented status lines go to stderr. A daemon whose stdout also carries
//!    its data (fifo-demo's `--log -`) prints the ready line first, before any data.
//! 2. **`NOTIFY_SOCKET`.** When a service manager started us with `NOTIFY_SOCKET` set (systemd
//!    `Type=notify`), [`ready`] also sends it `READY=1`, `MAINPID=N` and `STATUS=<the same
//!    text>`, and [`stopping`] sends `STOPPING=1` when a stop begins. Without the variable
//!    both are silent no-ops. The datagrams are sent by the `sd-notify` crate (the protocol
//!    is systemd's `sd_notify(3)`; it is not what this project teaches). A unit file:
//!
//!    ```ini
//!    [Service]
//!    Type=notify
//!    ExecStart=/usr/local/bin/fifo-demo daemon --log /var/log/app.log
//!    ```
//!
//!    Children that a demo starts do not inherit `NOTIFY_SOCKET` (see [`crate::child`]): a
//!    role is not the service, and its `READY=1` would speak for the wrong process.
//! 3. **Signals.** SIGTERM and SIGINT stop gracefully: call [`stopping`], finish or drain
//!    what is in flight, remove every named object and the pid file, exit 0 (see
//!    [`crate::cleanup::Shutdown`]). SIGHUP reopens or reloads where that means something and
//!    never kills (a closed terminal must not leave a socket file behind). A stdout that goes
//!    away (`daemon | head -1`) is a stop too, with status 0, as for any filter.
//! 4. **`--pid-file`** on every daemon (see [`crate::pidfile`]); and a `path` subcommand
//!    that prints where the demo's objects live, so recipes never spell out the runtime dir:
//!    `echo hi > "$(fifo-demo path fifo)"`.

use std::fmt;

use crate::error::{Error, Result};

/// The environment variable through which a service manager asks for readiness messages.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Announce that the daemon is ready: `ready: pid N <what>` on stdout, and `READY=1` to the
/// service manager when `NOTIFY_SOCKET` is set. `what` names the object clients use, kind
/// first: `format_args!("fifo {}", path.display())`.
///
/// Call it once, after the last object is usable. Fails if stdout cannot be written (a broken
/// pipe is then a quiet exit 0, see [`crate::error::finish`]) or if `NOTIFY_SOCKET` is set
/// but cannot be reached: the manager would wait for a message that never comes and kill the
/// service at its start-up timeout, so it is better to say why at once.
pub fn ready(what: impl fmt::Display) -> Result<()> {
    let what = what.to_string();
    crate::say!("{}", ready_line(&what))?;
    notify_ready(&what)
}

/// The readiness line, `ready: pid N <what>`, for a daemon that writes its stdout its own way
/// (signal-demo's, which never blocks on it) and then calls [`notify_ready`].
pub fn ready_line(what: &str) -> String {
    format!("ready: pid {} {what}", std::process::id())
}

/// The service manager's half of [`ready`]: `READY=1`, `MAINPID=N` and `STATUS=<what>` to
/// `$NOTIFY_SOCKET`, if set; an error if it is set but cannot be reached.
pub fn notify_ready(what: &str) -> Result<()> {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::MainPid(std::process::id()),
        sd_notify::NotifyState::Status(what),
    ])
}

/// Tell the service manager, if there is one, that a stop has begun (`STOPPING=1`). Call it
/// as soon as the stop is decided, before draining. A failure is only traced: the daemon is
/// stopping anyway, and the manager learns it when the process exits.
pub fn stopping() {
    if let Err(e) = notify(&[sd_notify::NotifyState::Stopping]) {
        crate::trace!("{e}");
    }
}

/// Send `states` to `$NOTIFY_SOCKET`, if set.
fn notify(states: &[sd_notify::NotifyState<'_>]) -> Result<()> {
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return Ok(());
    };
    let text: Vec<String> = states.iter().map(ToString::to_string).collect();
    let socket = std::path::Path::new(&socket).display().to_string();
    sd_notify::notify(states).map_err(|e| {
        Error::msg(format!(
            "{NOTIFY_SOCKET}={socket}: sd_notify: {}",
            crate::error::io_cause(&e)
        ))
    })?;
    crate::trace!("sendto({NOTIFY_SOCKET} {socket}, \"{}\")", text.join("\\n"));
    Ok(())
}
