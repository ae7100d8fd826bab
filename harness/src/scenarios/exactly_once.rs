//! Every message the sending scenarios produced is stored exactly once: one record per
//! Message-ID, the right number per address, nothing else, and the JSON API and the stats agree
//! with the original routes. The event log must show the faults the server was asked to inject:
//! closes at MAIL, none of which stored a message.

use std::collections::BTreeMap;

use anyhow::{Context, bail, ensure};

use crate::servers::Server;

/// What the check verified.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub messages: usize,
    pub faults: u64,
}

/// Checks `server` against `expected` (address → messages it must hold); with `tls`, every
/// message must also have arrived over TLS.
pub async fn run(
    server: &Server,
    expected: &BTreeMap<String, usize>,
    close_chance: u8,
    tls: bool,
) -> anyhow::Result<Checked> {
    let records = server.api.records(None).await?;
    let mut by_id: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut by_to: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &records {
        let mail = record.message()?;
        let id = mail
            .message_id
            .with_context(|| format!("a message to {} has no Message-ID", record.to))?;
        by_id.entry(id).or_default().push(&record.to);
        *by_to.entry(&record.to).or_default() += 1;
    }
    for (id, to) in &by_id {
        if to.len() != 1 {
            bail!(
                "Message-ID <{id}> is stored {} times (to {}): a message was sent again after it was stored",
                to.len(),
                to.join(", ")
            );
        }
    }
    for (address, want) in expected {
        let held = by_to.get(address.as_str()).copied().unwrap_or(0);
        ensure!(
            held == *want,
            "{address} should hold {want} message(s); the server has {held}"
        );
    }
    if let Some((stray, n)) = by_to.iter().find(|(to, _)| !expected.contains_key(**to)) {
        bail!("{n} message(s) to {stray}, which no scenario sent to");
    }

    let summaries = server.api.messages().await?;
    ensure!(
        summaries.len() == records.len(),
        "GET /api/v1/messages lists {} messages, /count says {} records (every message has one recipient)",
        summaries.len(),
        records.len()
    );
    for summary in &summaries {
        let id = summary.message_id.as_deref().unwrap_or_default();
        ensure!(
            by_id.contains_key(id),
            "message {} (Message-ID {id:?}) is in the JSON list but not in /mail/N",
            summary.id
        );
        ensure!(
            !tls || summary.tls,
            "message {} to {:?} arrived without TLS",
            summary.id,
            summary.recipients
        );
    }
    let stats = server.api.stats().await?;
    ensure!(
        stats.messages == records.len() as u64,
        "the stats count {} stored messages, the mailbox holds {}",
        stats.messages,
        records.len()
    );

    let log = server.api.events(0).await?;
    let faults = log.events.len() as u64 + log.dropped;
    ensure!(
        faults == stats.faults.total,
        "the event log holds {faults} faults, the stats count {}",
        stats.faults.total
    );
    if close_chance > 0 {
        ensure!(
            faults > 0,
            "no fault was injected at close chance {close_chance}% over {} messages (stats: {})",
            records.len(),
            stats.faults.describe()
        );
    } else {
        ensure!(
            faults == 0,
            "faults were injected at close chance 0%: {}",
            stats.faults.describe()
        );
    }
    for event in &log.events {
        ensure!(
            event.stage == "mail" && event.action.contains("close"),
            "unexpected fault {} at {} ({}): only closes at MAIL were configured",
            event.action,
            event.stage,
            event.rule
        );
        ensure!(
            !event.stored,
            "fault {} at MAIL stored a message",
            event.seq
        );
    }
    Ok(Checked {
        messages: records.len(),
        faults,
    })
}
