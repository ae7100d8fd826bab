//! harness: the integration stage. It builds the binaries, starts mail-test-srv as child
//! processes, drives expiration-mailer and notify-mailer against a server that drops a third of
//! the connections, and checks over HTTP what the server stored.
//!
//! Map of the crate:
//! - `startservers` (in `test/startservers.rs`): the service table and the child lifecycle.
//! - [`cli`]: the command line (`run`, the default, `serve` and `bench`).
//! - [`binaries`]: `cargo build` in the harness's own profile, and where the binaries are.
//! - [`servers`]: the two mail-test-srv services (plain with faults, implicit TLS).
//! - [`api`]: the server's HTTP report API as the scenarios read it.
//! - [`certs`]: test certificates with a chosen validity.
//! - [`mailers`]: running a mailer with the shared SMTP flags and reporting its failure.
//! - [`scenarios`]: expiration, notify, exactly-once, tls, go-client, gone-away.
//! - [`transcripts`]: the server's transcripts of the sessions behind a failed scenario.
//! - [`run`], [`serve`], [`report`]: the subcommands and the result table.
//! - [`mod@bench`]: `harness bench`, the load generator.

pub mod api;
pub mod bench;
pub mod binaries;
pub mod certs;
pub mod cli;
pub mod mailers;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod serve;
pub mod servers;
#[path = "../../test/startservers.rs"]
pub mod startservers;
pub mod transcripts;

use std::process::ExitCode;

/// Runs the parsed command line.
pub fn main(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => run::run(cli.run),
        Some(cli::Command::Run(args)) => run::run(args),
        Some(cli::Command::Serve(args)) => serve::serve(args),
        Some(cli::Command::Bench(args)) => bench::bench(args),
    }
}
