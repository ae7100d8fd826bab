//! SMTP protocol (RFC 5321): parsing without I/O, and the per-connection session.
//!
//! - `parse.rs`: one command line in, a [`parse::Command`] or a typed error out;
//!   `path.rs` reads MAIL / RCPT paths, leniently by default or strictly (`--strict`).
//! - `data.rs`: the DATA receiver (end marker, dot-unstuffing, size limit);
//!   `inflight.rs` the server-wide budget of bytes being received.
//! - `reply.rs`: reply formatting with enhanced status codes (RFC 3463).
//! - `settings.rs`: what all sessions of one server share (greeting, EHLO lines, limits, TLS).
//! - `session.rs`: the state machine ([`Session`], its `Phase`) and fault execution;
//!   `verbs.rs` has one handler per verb, `auth.rs` the SASL exchanges.
//! - `connection.rs`: the socket loop (read, batch, flush, close / reset / hang / STARTTLS).
//! - `stream.rs`: plain or TLS stream, with a real TCP reset.
//! - `shape.rs`: reply-shape faults (truncate, garbage, bare LF, slow); `abort.rs` the
//!   `abort` fault that resets a STARTTLS handshake.

mod abort;
mod auth;
pub mod connection;
pub mod data;
pub mod inflight;
pub mod parse;
mod path;
mod recording;
pub mod reply;
pub mod session;
pub mod settings;
mod shape;
pub mod stream;
mod verbs;

#[cfg(feature = "fuzzing")]
pub use session::{Flow, Session};
pub use settings::Settings;
