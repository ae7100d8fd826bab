//! Copies of one message, and whether the server is to blame for each.
//!
//! The servers lose some replies on purpose: `data-end:accept-close` stores a message and closes
//! the connection without answering, so the client cannot know the message arrived and must send
//! it again. A correct client therefore leaves a second copy, with the same Message-ID and the
//! same bytes, for every lost reply: at least once, never more than the lost replies explain.
//!
//! The [`Ledger`] ties each lost reply (an `accept-close` event, which names its connection) to
//! the copy it stored (the last message of that connection: the server closed it right after),
//! and checks every message: all copies but the last were stored by a lost reply, the last one
//! was answered 250. So a client that resends after a 250, or does not resend after a lost
//! reply, or reuses a Message-ID for another message, fails the check, and the duplicates the
//! check accepts are exactly as many as the lost replies.
//!
//! [`distinct`] is how the scenarios count what an address received: one per Message-ID, the
//! copies of one message required to be byte-identical.
//!
//! A failed check names the sessions of the copies at fault (a message's `connection` is its
//! session), so the report shows their transcripts.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, ensure};

use crate::api::{Event, Mail, Record, Summary};
use crate::servers::Server;
use crate::transcripts::{Clue, on_server, suspect};

/// One message to one address as a scenario counts it: its first stored copy, parsed.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub record: Record,
    pub mail: Mail,
    /// Copies stored (1 when no reply was lost).
    pub copies: usize,
}

/// `records` (oldest first, as `/mail/N` lists them) grouped by address and Message-ID, in the
/// order of their first copy. Every record needs a Message-ID, and the copies of one message must
/// be the same bytes: a resend repeats the message, it does not rebuild it.
pub fn distinct(records: Vec<Record>) -> anyhow::Result<Vec<Delivered>> {
    let mut delivered: Vec<Delivered> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in records {
        let mail = record.message()?;
        let id = mail
            .message_id
            .clone()
            .with_context(|| format!("a message to {} has no Message-ID", record.to))?;
        match index.get(&(record.to.clone(), id.clone())) {
            Some(&at) => {
                let first = &mut delivered[at];
                ensure!(
                    first.record.raw == record.raw,
                    "two copies of Message-ID <{id}> to {} differ: a resend must repeat the message \
                     byte for byte\nfirst:\n{}\nlater:\n{}",
                    record.to,
                    first.record.raw,
                    record.raw
                );
                first.copies += 1;
            }
            None => {
                index.insert((record.to.clone(), id), delivered.len());
                delivered.push(Delivered {
                    record,
                    mail,
                    copies: 1,
                });
            }
        }
    }
    Ok(delivered)
}

/// One stored copy of a message.
#[derive(Debug, Clone)]
struct Copy {
    /// The server's message id (store order).
    id: u64,
    connection: u64,
    recipients: Vec<String>,
    /// Stored by an `accept-close`: the client never got the reply.
    lost_reply: bool,
}

/// Every message a server holds, by Message-ID, each copy marked with whether its reply was lost.
#[derive(Debug, Clone)]
pub struct Ledger {
    copies: BTreeMap<String, Vec<Copy>>,
    lost_replies: u64,
    /// The server it was fetched from ([`Server::name`]), whose sessions a failure names.
    server: Option<&'static str>,
}

/// What [`Ledger::check`] found among the messages it was asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Distinct messages (Message-IDs).
    pub messages: usize,
    /// Copies beyond the first of each message; each is one lost reply.
    pub duplicates: u64,
}

/// True for the event of a lost reply.
pub fn is_lost_reply(event: &Event) -> bool {
    event.stage == "data-end" && event.action == "accept-close"
}

impl Ledger {
    /// Every message and every fault event of `server`.
    pub async fn fetch(server: &Server) -> anyhow::Result<Ledger> {
        let api = &server.api;
        let summaries = api.messages().await?;
        let log = api.events(0).await?;
        // A dropped event could be a lost reply whose copy would then look unexplained.
        ensure!(
            log.dropped == 0,
            "the server's event log dropped {} events, so duplicates cannot be accounted for",
            log.dropped
        );
        let mut ledger =
            Ledger::build(&summaries, &log.events).map_err(|e| on_server(e, server.name))?;
        ledger.server = Some(server.name);
        Ok(ledger)
    }

    pub fn build(summaries: &[Summary], events: &[Event]) -> anyhow::Result<Ledger> {
        let mut last_on_connection: BTreeMap<u64, u64> = BTreeMap::new();
        for summary in summaries {
            let last = last_on_connection.entry(summary.connection).or_default();
            *last = (*last).max(summary.id);
        }
        let mut lost = BTreeSet::new();
        let mut lost_replies = 0;
        for event in events.iter().filter(|e| is_lost_reply(e)) {
            ensure!(
                event.stored,
                "accept-close event {} does not say it stored the message",
                event.seq
            );
            let Some(id) = last_on_connection.get(&event.connection) else {
                return Err(suspect(
                    anyhow!(
                        "accept-close event {} on connection {}, but no message of that connection is stored",
                        event.seq,
                        event.connection
                    ),
                    None,
                    Clue::Sessions(vec![event.connection]),
                ));
            };
            if !lost.insert(*id) {
                return Err(suspect(
                    anyhow!(
                        "two accept-close events on connection {}, which the first one closed",
                        event.connection
                    ),
                    None,
                    Clue::Sessions(vec![event.connection]),
                ));
            }
            lost_replies += 1;
        }
        let mut copies: BTreeMap<String, Vec<Copy>> = BTreeMap::new();
        for summary in summaries {
            let message_id = summary.message_id.clone().with_context(|| {
                format!(
                    "message {} to {:?} has no Message-ID",
                    summary.id, summary.recipients
                )
            })?;
            copies.entry(message_id).or_default().push(Copy {
                id: summary.id,
                connection: summary.connection,
                recipients: summary.recipients.clone(),
                lost_reply: lost.contains(&summary.id),
            });
        }
        for list in copies.values_mut() {
            list.sort_by_key(|c| c.id);
        }
        Ok(Ledger {
            copies,
            lost_replies,
            server: None,
        })
    }

    /// Lost replies (accept-close events) in the whole log.
    pub fn lost_replies(&self) -> u64 {
        self.lost_replies
    }

    /// Checks the copies of every message with a recipient that `mine` accepts: one recipient
    /// list for all copies, every copy but the last stored by a lost reply, the last one not.
    pub fn check(&self, mine: impl Fn(&str) -> bool) -> anyhow::Result<Checked> {
        let mut checked = Checked {
            messages: 0,
            duplicates: 0,
        };
        for (message_id, copies) in &self.copies {
            if !copies.iter().any(|c| c.recipients.iter().any(|r| mine(r))) {
                continue;
            }
            checked.messages += 1;
            let first = &copies[0];
            let blame =
                |ids: &[u64], error| suspect(error, self.server, Clue::Sessions(ids.to_vec()));
            if let Some(other) = copies.iter().find(|c| c.recipients != first.recipients) {
                return Err(blame(
                    &[first.connection, other.connection],
                    anyhow!(
                        "Message-ID <{message_id}> names two messages: message {} to {:?} and message {} to {:?}",
                        first.id,
                        first.recipients,
                        other.id,
                        other.recipients
                    ),
                ));
            }
            let (last, earlier) = copies.split_last().expect("at least one copy");
            if let Some(at) = earlier.iter().position(|c| !c.lost_reply) {
                // The copy answered 250 and the one sent after it: the resend that should not be.
                let unexplained = &copies[at];
                return Err(blame(
                    &[unexplained.connection, copies[at + 1].connection],
                    anyhow!(
                        "Message-ID <{message_id}> to {:?} is stored {} times, but copy {} (message {}, \
                         connection {}) was answered 250: the message was sent again after the server \
                         had accepted it",
                        first.recipients,
                        copies.len(),
                        at + 1,
                        unexplained.id,
                        unexplained.connection
                    ),
                ));
            }
            if last.lost_reply {
                return Err(blame(
                    &[last.connection],
                    anyhow!(
                        "the reply to Message-ID <{message_id}> to {:?} was lost (accept-close on connection \
                         {}) and the message was never sent again: the client gave up on a message the \
                         server had stored, or did not notice the lost reply",
                        first.recipients,
                        last.connection
                    ),
                ));
            }
            checked.duplicates += earlier.len() as u64;
        }
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcripts::Suspect;

    fn summary(id: u64, connection: u64, to: &str, message_id: &str) -> Summary {
        Summary {
            id,
            from: "harness@example.com".to_owned(),
            recipients: vec![to.to_owned()],
            subject: None,
            message_id: Some(message_id.to_owned()),
            tls: false,
            connection,
            session: connection,
        }
    }

    fn lost_reply(seq: u64, connection: u64) -> Event {
        Event {
            seq,
            connection,
            stage: "data-end".to_owned(),
            rule: "data-end:accept-close:10%".to_owned(),
            action: "accept-close".to_owned(),
            stored: true,
        }
    }

    fn mail_close(seq: u64, connection: u64) -> Event {
        Event {
            stage: "mail".to_owned(),
            action: "close".to_owned(),
            stored: false,
            ..lost_reply(seq, connection)
        }
    }

    #[test]
    fn a_copy_per_lost_reply_is_counted_and_accepted() {
        // a@: sent on connection 1, reply lost; sent again on 2, lost again; third copy on 3.
        let summaries = [
            summary(1, 1, "a@x", "m1@h"),
            summary(2, 2, "a@x", "m1@h"),
            summary(3, 3, "a@x", "m1@h"),
            summary(4, 3, "b@x", "m2@h"),
        ];
        let events = [lost_reply(1, 1), mail_close(2, 2), lost_reply(3, 2)];
        let ledger = Ledger::build(&summaries, &events).unwrap();
        assert_eq!(ledger.lost_replies(), 2);
        let all = ledger.check(|_| true).unwrap();
        assert_eq!(
            all,
            Checked {
                messages: 2,
                duplicates: 2
            }
        );
        let only_b = ledger.check(|to| to == "b@x").unwrap();
        assert_eq!(only_b.duplicates, 0);
    }

    #[test]
    fn a_resend_after_a_250_fails() {
        // Two copies and no lost reply: the second was sent after the first was accepted.
        let summaries = [summary(1, 1, "a@x", "m1@h"), summary(2, 2, "a@x", "m1@h")];
        let ledger = Ledger::build(&summaries, &[mail_close(1, 1)]).unwrap();
        let error = ledger.check(|_| true).unwrap_err();
        assert!(error.to_string().contains("was answered 250"), "{error}");
        // The report shows both sessions: the copy answered 250 and the one sent after it.
        let blamed = Suspect::find(&error).unwrap();
        assert_eq!(blamed.clue(), &Clue::Sessions(vec![1, 2]));
    }

    #[test]
    fn a_lost_reply_without_a_resend_fails() {
        let summaries = [summary(1, 1, "a@x", "m1@h")];
        let ledger = Ledger::build(&summaries, &[lost_reply(1, 1)]).unwrap();
        let error = ledger.check(|_| true).unwrap_err().to_string();
        assert!(error.contains("never sent again"), "{error}");
    }

    #[test]
    fn the_lost_reply_is_the_last_message_of_its_connection() {
        // Connection 1 delivered m1 (answered) and then m2, whose reply was lost.
        let summaries = [
            summary(1, 1, "a@x", "m1@h"),
            summary(2, 1, "a@x", "m2@h"),
            summary(3, 2, "a@x", "m2@h"),
        ];
        let ledger = Ledger::build(&summaries, &[lost_reply(1, 1)]).unwrap();
        assert_eq!(ledger.check(|_| true).unwrap().duplicates, 1);
    }

    #[test]
    fn one_message_id_for_two_messages_or_an_unmatched_event_fails() {
        let summaries = [summary(1, 1, "a@x", "m1@h"), summary(2, 2, "b@x", "m1@h")];
        let ledger = Ledger::build(&summaries, &[lost_reply(1, 1)]).unwrap();
        let error = ledger.check(|_| true).unwrap_err().to_string();
        assert!(error.contains("names two messages"), "{error}");

        let error = Ledger::build(&summaries, &[lost_reply(1, 9)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("no message of that connection"), "{error}");
    }

    fn record(to: &str, raw: &str) -> Record {
        Record {
            from: "harness@example.com".to_owned(),
            to: to.to_owned(),
            raw: raw.to_owned(),
        }
    }

    #[test]
    fn distinct_counts_one_per_message_id_and_address() {
        let one = "Message-ID: <m1@h>\r\nSubject: one\r\n\r\nbody\r\n";
        let two = "Message-ID: <m2@h>\r\nSubject: two\r\n\r\nbody\r\n";
        let delivered = distinct(vec![
            record("a@x", one),
            record("a@x", two),
            record("a@x", one),
            record("b@x", one),
        ])
        .unwrap();
        let seen: Vec<(&str, &str, usize)> = delivered
            .iter()
            .map(|d| (d.record.to.as_str(), d.mail.subject.as_str(), d.copies))
            .collect();
        assert_eq!(
            seen,
            [("a@x", "one", 2), ("a@x", "two", 1), ("b@x", "one", 1)]
        );

        let changed = "Message-ID: <m1@h>\r\nSubject: one, again\r\n\r\nbody\r\n";
        let error = distinct(vec![record("a@x", one), record("a@x", changed)])
            .unwrap_err()
            .to_string();
        assert!(error.contains("differ"), "{error}");
        let error = distinct(vec![record("a@x", "Subject: x\r\n\r\nbody\r\n")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("no Message-ID"), "{error}");
    }
}
