//! The sessions of one server: open ones (shared with the session that writes them) and the
//! last `max_sessions` closed ones, within a byte budget; queries for the HTTP API.
//!
//! Each open session owns an `Arc<Mutex<Record>>`; the registry holds a clone so a query sees
//! it live. The mutex is a `std::sync::Mutex`: every critical section is a short in-memory
//! append or copy, never held across an `.await`, and only the session and a reader contend.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::reconnects::Reconnects;
use super::record::{Dir, Outcome, Record, Refusal, TlsInfo};

/// The sessions of one server. Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    enabled: bool,
    max_kept: usize,
    max_bytes: usize,
    lists: Mutex<Lists>,
    /// Bytes held by open and kept sessions.
    bytes: AtomicUsize,
    evicted: AtomicU64,
    reconnects: Reconnects,
}

#[derive(Debug, Default)]
struct Lists {
    open: BTreeMap<u64, Arc<Mutex<Record>>>,
    closed: BTreeMap<u64, Arc<Record>>,
    /// Closed session ids in the order they closed: eviction pops the front.
    closed_order: VecDeque<u64>,
    /// Id of the newest session opened (0 before the first).
    last_opened: u64,
    /// Sessions closed since start: the last `closed_order.len()` of them are in it.
    closes: u64,
}

/// Sessions opened or closed since a reader last looked (the web page's event stream).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// The sessions, newest id last, as copies without their lines; at most the limit
    /// asked for (the newest).
    pub sessions: Vec<Record>,
    /// Where the next look starts: `(last_opened, closes)`.
    pub position: (u64, u64),
}

/// Which sessions a query wants; `None` fields match all.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// At most this many, newest first.
    pub limit: usize,
    /// Only ids below this one (paging).
    pub before: Option<u64>,
    /// `Some(true)`: open only; `Some(false)`: closed only.
    pub open: Option<bool>,
    pub peer: Option<IpAddr>,
    /// Only sessions with (true) or without (false) an injected fault.
    pub fault: Option<bool>,
    /// Only sessions with (true) or without (false) a refused transaction.
    pub refused: Option<bool>,
}

impl Sessions {
    /// A registry keeping up to `max_kept` closed sessions and `max_bytes` of transcripts;
    /// when `enabled` is false nothing is recorded at all.
    pub fn new(enabled: bool, max_kept: usize, max_bytes: usize) -> Self {
        Sessions {
            inner: Arc::new(Inner {
                enabled,
                max_kept,
                max_bytes,
                lists: Mutex::new(Lists::default()),
                bytes: AtomicUsize::new(0),
                evicted: AtomicU64::new(0),
                reconnects: Reconnects::default(),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Starts recording session `id`; `None` when transcripts are off.
    pub fn open(&self, id: u64, peer: SocketAddr) -> Option<Recorder> {
        self.inner.reconnects.connected(peer.ip());
        if !self.inner.enabled {
            return None;
        }
        let record = Arc::new(Mutex::new(Record::new(id, peer)));
        {
            let mut lists = self.lists();
            lists.open.insert(id, Arc::clone(&record));
            lists.last_opened = lists.last_opened.max(id);
        }
        self.inner
            .bytes
            .fetch_add(std::mem::size_of::<Record>(), Ordering::Relaxed);
        Some(Recorder {
            sessions: self.clone(),
            record,
            id,
            unpublished: AtomicIsize::new(0),
        })
    }

    /// Sessions open now.
    pub fn open_count(&self) -> usize {
        self.lists().open.len()
    }

    /// Closed sessions kept.
    pub fn kept_count(&self) -> usize {
        self.lists().closed.len()
    }

    /// Closed sessions dropped to stay within the bounds, since start.
    pub fn evicted(&self) -> u64 {
        self.inner.evicted.load(Ordering::Relaxed)
    }

    /// New connections from a client whose previous session the server ended (a fault, an
    /// outage) within the last minute (`reconnects.rs`). Counted with transcripts on only.
    pub fn reconnects_seen(&self) -> u64 {
        self.inner.reconnects.seen()
    }

    /// Where a reader of [`Sessions::changes`] starts: nothing before now.
    pub fn position(&self) -> (u64, u64) {
        let lists = self.lists();
        (lists.last_opened, lists.closes)
    }

    /// Sessions opened or closed after `position` (from [`Sessions::position`] or the last
    /// [`Changes`]), at most `limit` of them (the newest ids).
    pub fn changes(&self, position: (u64, u64), limit: usize) -> Changes {
        let lists = self.lists();
        let (opened_after, closes_before) = position;
        let closed_since = usize::try_from(lists.closes.saturating_sub(closes_before))
            .unwrap_or(usize::MAX)
            .min(lists.closed_order.len());
        let mut ids: Vec<u64> = lists
            .closed_order
            .range(lists.closed_order.len() - closed_since..)
            .copied()
            .chain(
                lists
                    .open
                    .range(opened_after.saturating_add(1)..)
                    .map(|(id, _)| *id),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let keep = ids.len().saturating_sub(limit);
        let sessions = ids[keep..]
            .iter()
            .filter_map(|id| match lists.closed.get(id) {
                Some(record) => Some(record.summary()),
                None => lists.open.get(id).map(|r| lock(r).summary()),
            })
            .collect();
        Changes {
            sessions,
            position: (lists.last_opened, lists.closes),
        }
    }

    /// Bytes held by the transcripts of open and kept sessions.
    pub fn bytes(&self) -> usize {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Forgets the closed sessions (`POST /api/v1/reset`); open ones go on.
    pub fn clear(&self) {
        let mut lists = self.lists();
        let freed: usize = lists.closed.values().map(|r| r.bytes()).sum();
        lists.closed.clear();
        lists.closed_order.clear();
        self.inner.bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// A copy of session `id`, open or closed.
    pub fn get(&self, id: u64) -> Option<Record> {
        let lists = self.lists();
        if let Some(record) = lists.closed.get(&id) {
            return Some(Record::clone(record));
        }
        let open = lists.open.get(&id).cloned()?;
        drop(lists);
        let record = lock(&open).clone();
        Some(record)
    }

    /// The sessions `query` asks for, newest first, as copies without their lines.
    pub fn list(&self, query: &Query) -> Vec<Record> {
        let lists = self.lists();
        let below = query.before.unwrap_or(u64::MAX);
        let mut open = if query.open == Some(false) {
            None
        } else {
            Some(lists.open.range(..below).rev().peekable())
        };
        let mut closed = if query.open == Some(true) {
            None
        } else {
            Some(lists.closed.range(..below).rev().peekable())
        };
        let mut found = Vec::new();
        while found.len() < query.limit {
            let next_open = open.as_mut().and_then(|o| o.peek().map(|(id, _)| **id));
            let next_closed = closed.as_mut().and_then(|c| c.peek().map(|(id, _)| **id));
            // Matched before copying: a filter that matches little scans without allocating.
            let record = match (next_open, next_closed) {
                (None, None) => break,
                (Some(o), c) if c.is_none_or(|c| o > c) => {
                    let Some((_, record)) = open.as_mut().and_then(Iterator::next) else {
                        break;
                    };
                    let record = lock(record);
                    query.matches(&record).then(|| record.summary())
                }
                _ => {
                    let Some((_, record)) = closed.as_mut().and_then(Iterator::next) else {
                        break;
                    };
                    query.matches(record).then(|| record.summary())
                }
            };
            found.extend(record);
        }
        found
    }

    fn lists(&self) -> MutexGuard<'_, Lists> {
        lock(&self.inner.lists)
    }

    /// Moves session `id` from open to closed, evicting the oldest closed ones past the bounds.
    fn close(&self, id: u64, record: Record) {
        if matches!(record.outcome, Some(Outcome::ServerFault(_))) {
            self.inner.reconnects.failed(record.peer.ip());
        }
        let mut lists = self.lists();
        lists.closed.insert(id, Arc::new(record));
        lists.closed_order.push_back(id);
        lists.closes += 1;
        while lists.closed.len() > self.inner.max_kept
            || (self.bytes() > self.inner.max_bytes && lists.closed.len() > 1)
        {
            let Some(old) = lists.closed_order.pop_front() else {
                break;
            };
            if let Some(gone) = lists.closed.remove(&old) {
                self.inner.bytes.fetch_sub(gone.bytes(), Ordering::Relaxed);
                self.inner.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn grow(&self, delta: isize) {
        if delta >= 0 {
            self.inner
                .bytes
                .fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            self.inner
                .bytes
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}

impl Query {
    fn matches(&self, record: &Record) -> bool {
        self.peer.is_none_or(|ip| record.peer.ip() == ip)
            && self.fault.is_none_or(|f| (record.faults > 0) == f)
            && self.refused.is_none_or(|r| record.refusals.is_empty() != r)
    }
}

/// Poisoning cannot leave a record half-written in a way that matters to a reader (each
/// change is one push or assignment), so a poisoned lock is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a session writes its transcript through. Dropping it without [`Recorder::finish`]
/// closes the record as `client-closed`.
#[derive(Debug)]
pub struct Recorder {
    sessions: Sessions,
    record: Arc<Mutex<Record>>,
    id: u64,
    /// Bytes this record gained (or lost) that the server-wide count does not show yet:
    /// published in batches, so sessions on different threads do not bounce one counter's
    /// cache line on every line they record.
    /// (An atomic only so the recorder can be shared by reference across threads; one
    /// session writes it.)
    unpublished: AtomicIsize,
}

/// How far a session's byte count may run ahead of the server-wide one.
const PUBLISH_EVERY: isize = 16 * 1024;

impl Recorder {
    /// A line from the client, a reply line, or a note; also logged at debug.
    pub fn line(&self, dir: Dir, raw: &[u8]) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let text = String::from_utf8_lossy(raw);
            tracing::debug!(session = self.id, "{} {}", dir.prefix(), text.trim_end());
        }
        let mut record = lock(&self.record);
        if dir == Dir::Client {
            record.commands += 1;
        }
        let delta = record.push(dir, raw);
        drop(record);
        self.grow(delta);
    }

    /// Every reply line in `replies` (CRLF-separated, as written to the socket).
    pub fn replies(&self, replies: &[u8]) {
        for line in replies.split_inclusive(|&b| b == b'\n') {
            self.line(Dir::Server, line);
        }
    }

    /// Changes the summary.
    pub fn update(&self, change: impl FnOnce(&mut Record)) {
        let mut record = lock(&self.record);
        let before = record.bytes();
        change(&mut record);
        let after = record.bytes();
        drop(record);
        self.grow(after as isize - before as isize);
    }

    /// Counts `delta` bytes, publishing them once enough have gathered.
    fn grow(&self, delta: isize) {
        let pending = self.unpublished.load(Ordering::Relaxed) + delta;
        if pending.abs() >= PUBLISH_EVERY {
            self.sessions.grow(pending);
            self.unpublished.store(0, Ordering::Relaxed);
        } else {
            self.unpublished.store(pending, Ordering::Relaxed);
        }
    }

    pub fn tls(&self, info: TlsInfo) {
        self.update(|r| r.tls = Some(info));
    }

    pub fn refused(&self, refusal: Refusal) {
        self.update(|r| r.refusals.push(refusal));
    }

    /// Sets how the session ended, unless an earlier, more precise outcome was set.
    pub fn outcome(&self, outcome: Outcome) {
        self.update(|r| {
            r.outcome.get_or_insert(outcome);
        });
    }

    /// Ends the record and takes it out of the shared cell (readers now find it closed).
    fn finish_with(&self, outcome: Outcome) -> Record {
        let mut record = lock(&self.record);
        record.finish(outcome);
        let empty = Record::new(record.id, record.peer);
        std::mem::replace(&mut *record, empty)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Out of the open list first, so no reader sees the emptied cell.
        self.sessions.lists().open.remove(&self.id);
        self.sessions
            .grow(self.unpublished.swap(0, Ordering::Relaxed));
        let record = self.finish_with(Outcome::ClientClosed);
        let outcome = record
            .outcome
            .as_ref()
            .map(Outcome::name)
            .unwrap_or_default();
        tracing::info!(
            session = record.id,
            peer = %record.peer,
            commands = record.commands,
            messages = record.messages.len(),
            faults = record.faults,
            refused = record.refusals.len(),
            outcome = %outcome,
            "session ended"
        );
        self.sessions.close(self.id, record);
    }
}
