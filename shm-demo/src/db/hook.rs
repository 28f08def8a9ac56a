//! The test hook: a writer that stops (SIGSTOP) inside its critical section, holding the
//! writers' mutex, so that a test, or the demo's step 3, can look at the table or SIGKILL the
//! writer at that exact instant. Set through the environment, read in one place
//! ([`stop_hook`]); no option, so no help, man page or completion mentions it.

/// The environment variable of the test hook: `put` and `del` run with it set to `1` stop
/// (SIGSTOP) inside their critical section, holding the writers' mutex (see
/// [`Db::stop_mid_write`]). Only the tests and the demo's killed writer set it; it is no
/// option, so it is in no help, man page or completion.
pub const STOP_HOOK: &str = "IPC_DEMO_TEST_STOP_IN_CRITICAL_SECTION";

/// True if the test hook is asked for ([`STOP_HOOK`] is `1`): the one place it is read.
pub fn stop_hook() -> bool {
    std::env::var_os(STOP_HOOK).is_some_and(|v| v == "1")
}

/// The test hook's stop (see [`Db::stop_mid_write`]), announced on stderr first.
pub(super) fn stop_for_test() {
    eprintln!("shm-demo: stopping inside the critical section (test hook)");
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}
