//! The key-value service: what the server serves, not the lesson.
//!
//! The lesson is the sockets: [`crate::server`] (the `epoll` loop), [`crate::connection`]
//! (one client's partial reads and writes, backpressure), [`crate::sock`] (binding safely),
//! [`crate::dgram`] and [`crate::passfd`]. What travels over them is a small Redis, so that
//! clients nobody here wrote (`redis-cli`, `redis-benchmark`, redis-py) can use the server;
//! that product lives here, below the lesson, and touches no socket:
//!
//! - [`protocol`]: the wire format, RESP2 and RESP3: requests parsed (server) and encoded
//!   (client), replies written (server) and parsed (client), every length a peer sends
//!   checked before it is trusted;
//! - [`commands`]: one parsed request in, its reply appended to an output buffer: the command
//!   table, one file per command family, sessions and transactions;
//! - [`store`]: the keyspace, with expiry and SCAN's order.
//!
//! The socket roles call [`execute`] with the words of a request the protocol has parsed and
//! the connection's [`Session`]; the reply lands in the connection's output buffer, and the
//! event loop decides when it goes out.

pub mod commands;
pub mod protocol;
pub mod store;

pub use commands::{After, Session, State, execute};
