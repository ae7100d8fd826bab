//! The mailbox of one server instance: every message acknowledged with 250, indexed for
//! the report API, bounded by count and bytes (oldest evicted first, counted).
//!
//! - `store/mailbox.rs`: the data structure (messages, per-recipient records, indexes, eviction).
//! - `store/headers.rs`: the cheap Subject / Message-ID scan done at insert.
//!
//! Address filters (`to=`, `from=`) match exactly, as in the original server; the
//! `subject=` filter of the JSON API is a case-insensitive substring match.

mod headers;
mod mailbox;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use mailbox::Mailbox;

/// A message as the SMTP session hands it over, after the final dot.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Envelope sender without angle brackets; empty for the null sender `<>`.
    pub from: String,
    /// Envelope recipients without angle brackets, in RCPT order.
    pub recipients: Vec<String>,
    /// The message as received: CRLF line ends, dot-unstuffed, without the final `.\r\n`.
    pub data: Bytes,
    pub received: SystemTime,
    /// The session was under TLS (implicit or after STARTTLS).
    pub tls: bool,
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// Id of the SMTP connection it arrived on.
    pub connection: u64,
    /// The MAIL and RCPT lines, as received, whose path only the lenient syntax accepted
    /// (`MAIL FROM:<"Name" <a@b>>`), so a user sees what the client really sent.
    pub lenient_lines: Vec<String>,
}

/// A message in the store: what the session handed over, its id and the scanned headers.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// 1 for the first message stored, then one more for each.
    pub id: u64,
    pub from: String,
    pub recipients: Vec<String>,
    pub data: Bytes,
    pub received: SystemTime,
    pub tls: bool,
    pub auth_user: Option<String>,
    pub connection: u64,
    /// See [`NewMessage::lenient_lines`].
    pub lenient_lines: Vec<String>,
    /// Decoded `Subject` header, if any.
    pub subject: Option<String>,
    /// `Message-ID` header without angle brackets, if any.
    pub message_id: Option<String>,
}

/// Which messages a query is about; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A recipient equal to this (exact match).
    pub to: Option<String>,
    /// The envelope sender equal to this (exact match).
    pub from: Option<String>,
    /// Subject containing this, ignoring case (JSON API only).
    pub subject: Option<String>,
}

/// The mailbox. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// A `std::sync::RwLock`, not tokio's: every critical section is a short in-memory
    /// update or lookup with no `.await` inside, so the guard is never held across a
    /// suspension point and a blocking lock is both correct and cheaper. Readers (the
    /// HTTP queries) proceed together; only insert, clear and eviction write.
    mailbox: RwLock<Mailbox>,
    /// Bumped after every insert and clear; `wait` sleeps on it instead of polling.
    changes: watch::Sender<u64>,
}

impl Store {
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Store {
            inner: Arc::new(Inner {
                mailbox: RwLock::new(Mailbox::new(max_messages, max_bytes)),
                changes: watch::Sender::new(0),
            }),
        }
    }

    /// Stores a message and returns its id (ids start at 1 and only grow).
    /// Never fails: past the caps the oldest messages make room.
    pub fn insert(&self, message: NewMessage) -> u64 {
        // The header scan runs before taking the lock, keeping the write section short.
        let summary = headers::scan(&message.data);
        let id = {
            let mut mailbox = self.write();
            let id = mailbox.next_id();
            mailbox.push(StoredMessage {
                id,
                from: message.from,
                recipients: message.recipients,
                data: message.data,
                received: message.received,
                tls: message.tls,
                auth_user: message.auth_user,
                connection: message.connection,
                lenient_lines: message.lenient_lines,
                subject: summary.subject,
                message_id: summary.message_id,
            });
            id
        };
        self.inner.changes.send_modify(|v| *v += 1);
        id
    }

    /// Removes every message (ids go on growing; the eviction count stays).
    pub fn clear(&self) {
        self.write().clear();
        self.inner.changes.send_modify(|v| *v += 1);
    }

    /// The message with this id, if still stored.
    pub fn get(&self, id: u64) -> Option<Arc<StoredMessage>> {
        self.read().get(id).cloned()
    }

    /// Records (one per recipient) matching the address filters: the original `/count`.
    pub fn count_records(&self, filter: &Filter) -> usize {
        self.read().count_records(filter)
    }

    /// The `n`-th matching record (0-based): the message and that record's recipient.
    pub fn nth_record(&self, filter: &Filter, n: usize) -> Option<(Arc<StoredMessage>, String)> {
        self.read().nth_record(filter, n)
    }

    /// Matching messages, oldest first, after skipping `offset`, at most `limit`.
    pub fn messages(
        &self,
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> Vec<Arc<StoredMessage>> {
        self.read().messages(filter, offset, limit)
    }

    /// Messages stored now.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Raw bytes of the messages stored now.
    pub fn bytes(&self) -> usize {
        self.read().bytes()
    }

    /// Messages evicted by the caps since start.
    pub fn evictions(&self) -> u64 {
        self.read().evictions
    }

    /// Waits until at least `count` messages match `filter`, then returns the first
    /// `count` of them; after `timeout`, returns `Err` with how many matched by then.
    /// Sleeps on a change notification, never polls.
    pub async fn wait(
        &self,
        filter: &Filter,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Arc<StoredMessage>>, usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribing before the first check means no insert can slip between the check
        // and the sleep unnoticed.
        let mut changes = self.inner.changes.subscribe();
        loop {
            changes.borrow_and_update();
            let found = self.messages(filter, 0, count);
            if found.len() >= count {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out (or, impossibly while `self` lives, the sender is gone).
                _ => return Err(found.len()),
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Mailbox> {
        // Every mutation leaves the mailbox consistent before it can panic, so a poisoned
        // lock still guards valid data.
        self.inner.mailbox.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Mailbox> {
        self.inner
            .mailbox
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[path = "store/tests.rs"]
mod tests;
