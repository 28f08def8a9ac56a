//! mqueue-demo: under construction.

fn main() {}
