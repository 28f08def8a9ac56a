//! The command line as a user meets it: help with examples for every subcommand, what `-v`
//! narrates in each role, defaults shown, `-v` accepted before or after the subcommand, bad
//! usage refused with status 2 by every role.

mod support;

use common::testkit::{self, Sandbox};
use support::fifo_demo;

/// `fifo-demo ARGS --help`, checked to succeed.
fn help(sb: &Sandbox, args: &[&str]) -> String {
    let out = testkit::run(fifo_demo(sb).args(args).arg("--help"), b"");
    assert!(out.status.success(), "{args:?}: {}", testkit::stderr(&out));
    testkit::stdout(&out)
}

#[test]
fn every_subcommand_has_examples_and_says_what_its_trace_shows() {
    let sb = Sandbox::new();
    // (subcommand, an example it shows, a call its -v help names)
    let roles = [
        ("daemon", "fifo-demo daemon --log app.log", "mkfifo"),
        ("log", "tail -f app.out | fifo-demo log", "poll(POLLOUT)"),
        ("cleanup", "fifo-demo cleanup --fifo", "unlink"),
        ("demo", "fifo-demo demo --writers 16", "IPC_DEMO_TRACE=1"),
        (
            "path",
            "echo hello > \"$(fifo-demo path fifo)\"",
            "runtime directory",
        ),
    ];
    for (role, example, traced) in roles {
        let text = help(&sb, &[role]);
        assert!(text.contains("\nExamples:\n"), "{role}: {text}");
        assert!(text.contains(example), "{role}: {text}");
        // -v is one global flag; what it shows in this role is said after the examples.
        assert!(text.contains("  -v, --trace"), "{role} has no -v: {text}");
        let trace = text
            .split("\nWith -v: ")
            .nth(1)
            .unwrap_or_else(|| panic!("{role} does not say what -v shows: {text}"));
        let trace = trace.split("\n\n").next().unwrap_or(trace);
        assert!(trace.contains(traced), "{role}'s -v: {trace:?}");
    }
}

/// Every role refuses an unknown option with status 2 (usage), before it does anything.
#[test]
fn every_role_exits_2_on_bad_usage() {
    let sb = Sandbox::new();
    for role in ["demo", "daemon", "log", "cleanup", "path"] {
        let out = testkit::run(fifo_demo(&sb).args([role, "--bogus"]), b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{role}: {}",
            testkit::stderr(&out)
        );
        assert!(testkit::stderr(&out).contains("--bogus"), "{role}");
    }
    assert!(sb.leftovers().is_empty(), "{:?}", sb.leftovers());
}

#[test]
fn defaults_are_shown_and_the_default_subcommand_is_demo() {
    let sb = Sandbox::new();
    // Words joined again where clap wrapped a line.
    let flat = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let daemon = flat(help(&sb, &["daemon"]));
    for default in [
        "[default: fifo-demo.log]",
        "[default: 2]",
        "[default: <runtime dir>/log.fifo]",
        "[default: <fifo>.pid]",
    ] {
        assert!(daemon.contains(default), "{default}: {daemon}");
    }
    let demo = flat(help(&sb, &["demo"]));
    assert!(
        demo.contains("[default: 8]") && demo.contains("[default: 1000]"),
        "{demo}"
    );
    let top = flat(help(&sb, &[]));
    assert!(
        top.contains("With no subcommand, `fifo-demo` runs `demo`"),
        "{top}"
    );
}

#[test]
fn trace_is_accepted_before_and_after_the_subcommand() {
    let sb = Sandbox::new();
    for args in [["-v", "cleanup"], ["cleanup", "-v"]] {
        let out = testkit::run(fifo_demo(&sb).args(args), b"");
        assert!(out.status.success(), "{args:?}: {}", testkit::stderr(&out));
        assert!(
            testkit::stderr(&out).contains("] flock("),
            "{args:?}: {}",
            testkit::stderr(&out)
        );
    }
}
