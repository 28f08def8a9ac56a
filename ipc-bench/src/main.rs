//! ipc-bench: under construction.

fn main() {}
