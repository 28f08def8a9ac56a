//! The library behind the `shm-demo` binary (see `src/main.rs` for the tour): one module per
//! role, named as its subcommand, then the database itself (`db`, the lesson), the segment's
//! layout and mapping, and the snapshots. It is a library so that the benchmark
//! (`benches/get.rs`) measures the very code the binary runs.

pub mod cli;

pub mod del;
pub mod demo;
pub mod destroy;
pub mod get;
pub mod list;
pub mod path;
pub mod put;
pub mod reader;
pub mod server;
pub mod stats;
pub mod watch;
pub mod writer;

pub mod db;
pub mod layout;
pub mod segment;
pub mod snapshot;
pub mod workload;
