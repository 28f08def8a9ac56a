//! shm-demo: under construction.

fn main() {}
