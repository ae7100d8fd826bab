//! The mailbox of one server instance: every message acknowledged with 250, indexed for
//! the report API, bounded by count and bytes (oldest evicted first, counted).
//!
//! - `store/mailbox.rs`: the data structure (messages, per-recipient records, indexes, eviction).
//! - `store/headers.rs`: the cheap Subject / Message-ID scan done at insert.
//! - `store/waiters.rs`: the long polls, handed each new message that matches them.
//! - `store/search.rs`: the case-insensitive substring match of `subject=` and `q=`.
//!
//! Address filters (`to=`, `from=`) match exactly, as in the original server; the
//! `subject=` filter of the JSON API is a case-insensitive substring match.

mod headers;
mod mailbox;
mod search;
mod waiters;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use mailbox::Mailbox;
use waiters::Waiters;

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

/// Messages a search looks at per hold of the read lock (`Store::list`): about a
/// millisecond's work.
const SCAN_CHUNK: usize = 4096;

/// A page of the JSON list (`GET /api/v1/messages`).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub filter: Filter,
    /// Sender, a recipient or the subject containing this, ignoring case.
    pub q: Option<String>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    pub offset: usize,
    pub limit: usize,
}

/// What arrived since a reader last looked (the web page's event stream).
#[derive(Debug, Clone)]
pub struct Arrivals {
    /// The newest messages with an id above the one asked for (at most the limit asked
    /// for), oldest first.
    pub messages: Vec<Arc<StoredMessage>>,
    /// How many stored messages have an id above the one asked for (`messages` included).
    pub newer: usize,
    /// Messages stored now.
    pub total: usize,
    /// The id of the newest message ever stored (0 before the first).
    pub last_id: u64,
    /// Times the mailbox was emptied since start.
    pub clears: u64,
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
    /// The long polls; each new message goes to those it matches (no rescans).
    waiters: Waiters,
}

impl Store {
    pub fn new(max_messages: usize, max_bytes: usize) -> Self {
        Store {
            inner: Arc::new(Inner {
                mailbox: RwLock::new(Mailbox::new(max_messages, max_bytes)),
                waiters: Waiters::default(),
            }),
        }
    }

    /// Stores a message and returns its id (ids start at 1 and only grow).
    /// Never fails: past the caps the oldest messages make room.
    pub fn insert(&self, message: NewMessage) -> u64 {
        self.insert_stored(message).0
    }

    /// Like [`Store::insert`], also handing back the message as stored (its scanned headers
    /// included), so a caller needs no second look-up under the lock.
    pub fn insert_stored(&self, message: NewMessage) -> (u64, Option<Arc<StoredMessage>>) {
        // The header scan runs before taking the lock, keeping the write section short.
        let summary = headers::scan(&message.data);
        let (id, stored) = {
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
            (id, mailbox.get(id).cloned())
        };
        // Outside the mailbox lock: the waiters test the message against their filters.
        if let Some(stored) = &stored {
            self.inner.waiters.offer(stored);
        }
        (id, stored)
    }

    /// Removes every message (ids go on growing; the eviction count stays).
    pub fn clear(&self) {
        let next_id = {
            let mut mailbox = self.write();
            mailbox.clear();
            mailbox.next_id()
        };
        self.inner.waiters.cleared(next_id);
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

    /// A page of the messages `query` asks for, and how many match in all.
    pub fn list(&self, query: &ListQuery) -> (Vec<Arc<StoredMessage>>, usize) {
        let mut scan = match self.read().list(query) {
            Ok(found) => return found,
            Err(scan) => scan,
        };
        // A search reads every message: a few thousand at a time, so SMTP inserts (which
        // need the write lock) never wait for more than one piece.
        while !self.read().scan(&mut scan, SCAN_CHUNK) {}
        scan.finish()
    }

    /// Deletes message `id`, its records and its bytes; `false` when it is not stored.
    pub fn remove(&self, id: u64) -> bool {
        self.write().remove(id).is_some()
    }

    /// Messages stored after message `after`: the newest `limit` of them, and the mailbox's
    /// counters, under one look.
    pub fn arrivals(&self, after: u64, limit: usize) -> Arrivals {
        let mailbox = self.read();
        let (messages, newer) = mailbox.newer_than(after, limit);
        Arrivals {
            messages,
            newer,
            total: mailbox.len(),
            last_id: mailbox.next_id() - 1,
            clears: mailbox.clears,
        }
    }

    /// The id of the newest message ever stored (0 before the first) and how many times
    /// the mailbox was emptied: where a reader of [`Store::arrivals`] starts.
    pub fn position(&self) -> (u64, u64) {
        let mailbox = self.read();
        (mailbox.next_id() - 1, mailbox.clears)
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
    /// Looks at the mailbox once; after that it is handed each new matching message (see
    /// `store/waiters.rs`), never rescans and never polls.
    pub async fn wait(
        &self,
        filter: &Filter,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Arc<StoredMessage>>, usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Registering before the first look means no insert can slip between the look
        // and the sleep unnoticed.
        let waiter = self.inner.waiters.register(filter);
        {
            let mailbox = self.read();
            waiter.start(mailbox.messages(filter, 0, count), mailbox.next_id());
        }
        loop {
            let so_far = match waiter.take(count) {
                Ok(found) => return Ok(found),
                Err(so_far) => so_far,
            };
            if tokio::time::timeout_at(deadline, waiter.woken())
                .await
                .is_err()
            {
                return Err(so_far);
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
