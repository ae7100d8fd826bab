//! mailer: send mail through an SMTP server that may drop the connection, reset it or
//! answer 421, reconnecting with exponential backoff and resending the same message.
//!
//! Map of the crate:
//! - `config`: [`Config`] (server, TLS, credentials, from, backoff, bounds, step timeout).
//! - `mailer`: [`Mailer`] and its [`Connection`] (`connect`, `send_mail`, `close`).
//! - `disposition`: the pure retry decision over an SMTP error.
//! - `backoff`: `retry_backoff(i, base, max, 2)` with ±20% jitter.
//! - `message`: building the RFC 5322 message (headers, quoted-printable body).
//! - `clock`: [`Clock`]: the real clock or `FAKECLOCK`.
//! - `counters`: attempts by result and cause, reconnects.
//! - `cli`: flags and set-up shared by the two binaries (OWNER: helper "mailer programs").
//!
//! OWNER of everything but `cli` and `src/bin/`: helper "mailer library".

pub mod cli;
pub mod db;
