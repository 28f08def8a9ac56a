//! From the parsed command line to the role that runs.

use std::process::ExitCode;
use std::time::Duration;

use common::Result;

use crate::cli::Role;
use crate::client::Output;
use crate::sock::Target;

/// Run the role chosen on the command line.
pub fn dispatch(role: Role) -> Result<ExitCode> {
    match role {
        Role::Demo => crate::demo::run(),
        Role::Server(a) => crate::server::run(crate::server::Options {
            unix: a.unix,
            tcp: a.tcp,
            max_clients: a.max_clients,
            allow_uid: a.allow_uid,
            pid_file: a.pid_file,
            busy_poll: Duration::from_micros(a.busy_poll_us),
        }),
        Role::Client(a) => crate::client::run(
            &Target::from_flags(a.unix.as_deref(), a.tcp.as_deref())?,
            Output::choose(a.output.forced()),
            &a.command,
        ),
        Role::DgramServer(a) => crate::dgram::server(a.path.as_deref(), a.pid_file.as_deref()),
        Role::DgramClient(a) => crate::dgram::client(
            a.path.as_deref(),
            Duration::from_secs(a.timeout),
            Output::choose(a.output.forced()),
            &a.command,
        ),
        Role::PassFd(a) if a.receive => crate::passfd::receive_role(),
        Role::PassFd(_) => crate::passfd::send_role(),
        Role::Path(a) => crate::path::run(&a),
        Role::Worker(a) => crate::demo::worker(&a.unix, a.id, a.rounds, &a.counter),
    }
}
