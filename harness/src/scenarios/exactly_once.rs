//! Every message the sending scenarios produced is stored once, plus exactly one copy for each
//! reply the server lost on purpose: the right number of messages (Message-IDs) per address,
//! nothing else, and the JSON API and the stats agree with the original routes.
//!
//! The server was asked for two faults, and the event log must show both and nothing else:
//! closes at MAIL, which store nothing and so must leave no copy, and `accept-close` after the
//! final dot, which stores the message and drops the reply. Each of those must be matched by one
//! resent copy of that very message (see [`copies`](super::copies)): duplicates = accept-close
//! events, exactly. When the chances make a fault near-certain over this many messages, it must
//! have fired, so the check has really met a closed connection and a duplicate.

use std::collections::BTreeMap;

use anyhow::{anyhow, ensure};

use super::copies::{Ledger, distinct, is_lost_reply};
use crate::servers::Server;
use crate::transcripts::{Clue, suspect};

/// What the check verified.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    /// Distinct messages.
    pub messages: usize,
    pub faults: u64,
    /// Copies beyond the first, one per lost reply.
    pub duplicates: u64,
}

/// The faults the server was started with, in percent.
#[derive(Debug, Clone, Copy)]
pub struct Chances {
    /// `mail:close` (the harness's `--close-chance`).
    pub close: u8,
    /// `data-end:accept-close`.
    pub accept_close: u8,
}

/// Below this probability of not firing at all, a fault that did not fire is a failure.
const NEVER_FIRES: f64 = 1e-4;

/// Whether a fault of `chance` percent, tried at least `tries` times, must have fired: true when
/// not firing once has a probability under [`NEVER_FIRES`] (10% over 100 messages: 3e-5), so a
/// run with small numbers does not fail by bad luck.
fn must_fire(chance: u8, tries: usize) -> bool {
    let miss = 1.0 - f64::from(chance) / 100.0;
    chance > 0 && miss.powi(i32::try_from(tries).unwrap_or(i32::MAX)) < NEVER_FIRES
}

/// Checks `server` against `expected` (address → distinct messages it must hold); with `tls`,
/// every message must also have arrived over TLS.
pub async fn run(
    server: &Server,
    expected: &BTreeMap<String, usize>,
    chances: Chances,
    tls: bool,
) -> anyhow::Result<Checked> {
    let records = server.api.records(None).await?;
    let stored = records.len();
    let mut by_to: BTreeMap<String, usize> = BTreeMap::new();
    for delivered in distinct(records)? {
        *by_to.entry(delivered.record.to).or_default() += 1;
    }
    let blame = |error, clue| suspect(error, Some(server.name), clue);
    for (address, want) in expected {
        let held = by_to.get(address.as_str()).copied().unwrap_or(0);
        if held != *want {
            return Err(blame(
                anyhow!(
                    "{address} should hold {want} message(s); the server has {held} (by Message-ID)"
                ),
                Clue::count(address, held, *want),
            ));
        }
    }
    if let Some((stray, n)) = by_to.iter().find(|(to, _)| !expected.contains_key(*to)) {
        return Err(blame(
            anyhow!("{n} message(s) to {stray}, which no scenario sent to"),
            Clue::Stored(stray.clone()),
        ));
    }

    let summaries = server.api.messages().await?;
    ensure!(
        summaries.len() == stored,
        "GET /api/v1/messages lists {} messages, /count says {stored} records (every message has one recipient)",
        summaries.len(),
    );
    if let Some(plain) = summaries.iter().find(|s| tls && !s.tls) {
        return Err(blame(
            anyhow!(
                "message {} to {:?} arrived without TLS",
                plain.id,
                plain.recipients
            ),
            Clue::Sessions(vec![plain.session]),
        ));
    }
    let stats = server.api.stats().await?;
    ensure!(
        stats.messages == stored as u64,
        "the stats count {} stored messages, the mailbox holds {stored}",
        stats.messages,
    );

    let log = server.api.events(0).await?;
    let faults = log.events.len() as u64 + log.dropped;
    ensure!(
        faults == stats.faults.total,
        "the event log holds {faults} faults, the stats count {}",
        stats.faults.total
    );
    let mut closes = 0;
    for event in &log.events {
        let its_session = Clue::Sessions(vec![event.connection]);
        if event.stage == "mail" && event.action.contains("close") {
            if event.stored {
                return Err(blame(
                    anyhow!("fault {} (close at MAIL) stored a message", event.seq),
                    its_session,
                ));
            }
            closes += 1;
        } else if !is_lost_reply(event) {
            return Err(blame(
                anyhow!(
                    "unexpected fault {} at {} ({}): only closes at MAIL and accept-close after DATA were configured",
                    event.action,
                    event.stage,
                    event.rule
                ),
                its_session,
            ));
        }
    }

    let ledger = Ledger::fetch(server).await?;
    let copies = ledger.check(|_| true)?;
    let lost = ledger.lost_replies();
    ensure!(
        copies.duplicates == lost,
        "{} message(s) are stored more than once ({} extra copies), but the server lost {lost} \
         replies (accept-close): each lost reply must cause exactly one resend, and nothing else any",
        copies.messages,
        copies.duplicates
    );
    ensure!(
        copies.messages + copies.duplicates as usize == stored,
        "{} messages and {} extra copies, but {stored} are stored",
        copies.messages,
        copies.duplicates
    );

    for (kind, chance, fired) in [
        ("close at MAIL", chances.close, closes),
        ("accept-close (lost reply)", chances.accept_close, lost),
    ] {
        if chance == 0 {
            ensure!(
                fired == 0,
                "{fired} {kind} faults were injected at chance 0%: {}",
                stats.faults.describe()
            );
        } else if must_fire(chance, copies.messages) {
            ensure!(
                fired > 0,
                "no {kind} fault was injected at {chance}% over {} messages (stats: {})",
                copies.messages,
                stats.faults.describe()
            );
        }
    }
    Ok(Checked {
        messages: copies.messages,
        faults,
        duplicates: copies.duplicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_must_fire_only_when_missing_it_would_be_a_fluke() {
        // The plain server's run: 35% and 10% over ~120 messages.
        assert!(must_fire(35, 120) && must_fire(10, 120));
        // The TLS scenario's dozen messages could well see no lost reply at 10%.
        assert!(!must_fire(10, 12));
        assert!(!must_fire(0, 1000));
        assert!(must_fire(100, 1));
    }
}
