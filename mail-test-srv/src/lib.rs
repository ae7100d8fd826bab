//! mail-test-srv: an SMTP test server that stores mail in memory, reports it over HTTP,
//! and injects faults at any SMTP stage, reproducibly from a seed.
//!
//! Map of the crate:
//! - [`config`]: every setting of one instance ([`Config`]), plain data.
//! - `smtp`: the protocol: command parser (no I/O), DATA receiver, one session per connection
//!   (public only with the `fuzzing` feature, for the fuzz targets, benches and tests).
//! - [`tls`]: rustls server configuration; generated CA + `localhost` certificate.
//! - [`fault`]: the fault plan, triggers, seeded decisions and the event log.
//! - [`store`]: the indexed, bounded mailbox.
//! - [`stats`]: atomic counters.
//! - [`http`]: the original text routes, the JSON API under `/api/v1`, `/metrics`, `/healthz`.
//! - [`transcript`]: every session's lines, summary and outcome, bounded.
//! - [`outage`]: the server gone away (listener closed, or a blackhole) for a while.
//! - `server`: [`State`] (the per-instance handle), [`run`] and [`start`] / [`ServerHandle`].
//! - `error`: [`StartError`], why [`start`] failed.
//!
//! The public surface is what an in-process user needs: [`start`] a server from a [`Config`],
//! hold its [`ServerHandle`], query its [`State`] (store, stats, sessions, fault engine,
//! outages) and build fault rules ([`fault::FaultRule`]). The protocol internals are
//! crate-private unless the `fuzzing` feature is on.
//!
//! Nothing here is global: two servers in one process share nothing.

pub mod config;
mod error;
pub mod fault;
pub mod http;
pub mod outage;
mod server;
#[cfg(feature = "fuzzing")]
pub mod smtp;
#[cfg(not(feature = "fuzzing"))]
mod smtp;
pub mod stats;
pub mod store;
pub mod tls;
pub mod transcript;

pub use config::{AuthMode, BareLf, CertFault, CertSource, Config, HttpConfig, Limits, TlsMode};
pub use error::{Listener, StartError};
pub use server::{ServerHandle, State, run, start};
