//! Compile the C twin (c/twin.c) with the system C compiler into OUT_DIR, and tell the
//! binary where it is (env IPC_BENCH_C_TWIN). `CC` picks another compiler, as usual. Also tell
//! it the profile's opt-level (env IPC_BENCH_OPT_LEVEL).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "c/twin.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ipc-bench-c");
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-Wextra", "-o"])
        .arg(&out)
        .arg(src)
        .args(["-lrt", "-pthread"])
        .status()
        .unwrap_or_else(|e| panic!("ipc-bench: cannot run the C compiler {cc:?}: {e}"));
    assert!(status.success(), "ipc-bench: {cc} failed to compile {src}");
    println!("cargo:rustc-env=IPC_BENCH_C_TWIN={}", out.display());
    // The profile's opt-level, so that a run can say it measured an unoptimised build (cargo
    // gives every build script the OPT_LEVEL of the package it builds).
    let opt_level = env::var("OPT_LEVEL").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=IPC_BENCH_OPT_LEVEL={opt_level}");
}
