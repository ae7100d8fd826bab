//! What expiration-mailer and notify-mailer share, kept out of the `mailer` library so that
//! its users build only lettre, tokio, rand and tracing: flags, the runtime, logging,
//! templates, `FAKECLOCK`, and the certificate store (sqlx, SQLite or MySQL/MariaDB).
//!
//! - `cli`: flags, set-up, logging, templates, exit codes, signals.
//! - `db`: the certificate store and its embedded migrations.
//! - `fakeclock`: the clock of a run, fixed by `FAKECLOCK` for the integration harness.

pub mod cli;
pub mod db;
pub mod fakeclock;
