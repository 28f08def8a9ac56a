//! The library behind the `shm-demo` binary (see `src/main.rs` for the tour): one module per
//! role, plus the segment's layout, mapping and synchronisation. It is a library so that the
//! benchmark (`benches/get.rs`) measures the very code the binary runs.

pub mod cli;
pub mod client;
pub mod db;
pub mod demo;
pub mod layout;
pub mod segment;
pub mod server;
pub mod snapshot;
pub mod workers;
