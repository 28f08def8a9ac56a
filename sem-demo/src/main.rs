//! sem-demo: under construction.

fn main() {}
