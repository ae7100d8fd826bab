//! The scenarios. Each sends or checks mail on a running server and returns what it verified;
//! a failure is an error saying what was expected and what the server reported.
//!
//! - `expiration`: expiration-mailer on a store of generated certificates under FAKECLOCK.
//! - `notify`: notify-mailer over a list of recipients, each with its own data.
//! - `exactly_once`: every message stored once (by Message-ID), and faults really injected.
//! - `tls`: the three above in small, over implicit TLS.
//! - `go_client`: the Go net/smtp client the original mailer was, built from `test/clients/`.
//!
//! Scenarios use their own addresses (`...-plain@`, `...-tls@`, `@go-client.example`), so none
//! sees another's mail and `exactly_once` can check the sum of what the others sent without a
//! reset in between. The Go client's mail is not in that sum: it runs after `exactly_once`.

mod exactly_once;
mod expiration;
mod go_client;
mod notify;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::binaries::Binaries;
use crate::cli::ScenarioName;
use crate::servers::Server;

/// Sender of every message the harness has sent.
pub const FROM: &str = "Harness <harness@example.com>";
/// Recipients of the notify scenario on the plain server (the issue asks for at least 100).
pub const NOTIFY_RECIPIENTS: usize = 120;
/// Recipients of the notify part of the TLS scenario.
pub const TLS_NOTIFY_RECIPIENTS: usize = 10;

/// What the scenarios share.
#[derive(Debug)]
pub struct Ctx {
    pub binaries: Binaries,
    pub plain: Server,
    pub tls: Server,
    /// A private temporary folder (stores, certificates, lists, templates).
    pub work: PathBuf,
    pub seed: u64,
    pub close_chance: u8,
    /// Messages each address should hold on the plain server, from the scenarios run so far.
    pub expected_plain: BTreeMap<String, usize>,
}

/// What a passing scenario verified.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Messages checked.
    pub mails: usize,
    /// Faults it accounts for, when it counts them itself; otherwise the runner counts the
    /// faults injected while it ran.
    pub faults: Option<u64>,
    /// Why it checked nothing (a tool it needs is missing, outside CI): shown as skipped.
    pub skipped: Option<String>,
}

/// Runs one scenario.
pub async fn run(name: ScenarioName, ctx: &mut Ctx) -> anyhow::Result<Outcome> {
    match name {
        ScenarioName::Expiration => {
            let server = ctx.plain.clone();
            let sent = expiration::run(ctx, &server, "plain").await?;
            let mails = sent.values().sum();
            ctx.expected_plain.extend(sent);
            Ok(Outcome {
                mails,
                ..Outcome::default()
            })
        }
        ScenarioName::Notify => {
            let server = ctx.plain.clone();
            let sent = notify::run(ctx, &server, "plain", NOTIFY_RECIPIENTS).await?;
            let mails = sent.values().sum();
            ctx.expected_plain.extend(sent);
            Ok(Outcome {
                mails,
                ..Outcome::default()
            })
        }
        ScenarioName::ExactlyOnce => {
            let checked =
                exactly_once::run(&ctx.plain, &ctx.expected_plain, ctx.close_chance, false).await?;
            Ok(Outcome {
                mails: checked.messages,
                faults: Some(checked.faults),
                skipped: None,
            })
        }
        ScenarioName::Tls => {
            let server = ctx.tls.clone();
            let mut expected = expiration::run(ctx, &server, "tls").await?;
            expected.extend(notify::run(ctx, &server, "tls", TLS_NOTIFY_RECIPIENTS).await?);
            let checked = exactly_once::run(&server, &expected, ctx.close_chance, true).await?;
            Ok(Outcome {
                mails: checked.messages,
                ..Outcome::default()
            })
        }
        ScenarioName::GoClient => go_client::run(ctx).await,
    }
}

/// `key=value` words of a program's summary line (`sent=120 failed=0`).
fn summary_field(output: &str, key: &str) -> Option<u64> {
    output
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim_end_matches(',').parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_fields_are_read() {
        let out = "notify-mailer: recipients=120 sent=119 failed=1 skipped=0\nfailed: a@b: 550\n";
        assert_eq!(summary_field(out, "sent"), Some(119));
        assert_eq!(summary_field(out, "failed"), Some(1));
        assert_eq!(summary_field(out, "nope"), None);
    }
}
