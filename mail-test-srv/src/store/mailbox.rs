//! The mailbox data structure: messages in arrival order plus per-recipient records and
//! their indexes. No locking and no I/O here; [`super::Store`] wraps it in a lock.
//!
//! The original server keeps one record per recipient (a message with two RCPTs is two
//! records); `/count` and `/mail/N` speak in records, the JSON API in messages. Three
//! record lists serve them: all records, by recipient, by sender. Each list is in arrival
//! order, so evicting the oldest message only ever pops list fronts, and the N-th record
//! matching `to=X` is `by_to[X][N]`: no query scans the whole mailbox.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::search::Needle;
use super::{Filter, ListQuery, StoredMessage};

/// One record: recipient number `rcpt` of message `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordRef {
    id: u64,
    rcpt: u32,
}

/// The bytes a stored message holds, counted against the byte cap: the body, the envelope
/// and header strings, and per recipient its three index entries and the index keys (the
/// recipient and the sender, counted once per record since most keys are unique in tests).
/// Counting only the body let 3,000 tiny messages with 100 recipients of 4 KB each take
/// gigabytes under a 1 MiB cap.
pub(super) fn footprint(message: &StoredMessage) -> usize {
    use std::mem::size_of;
    let string = |s: &str| size_of::<String>() + s.len();
    let option = |s: &Option<String>| s.as_deref().map_or(0, str::len);
    let per_recipient =
        |to: &String| string(to) + 3 * size_of::<RecordRef>() + string(to) + string(&message.from);
    size_of::<StoredMessage>()
        + size_of::<Arc<StoredMessage>>()
        + message.data.len()
        + message.from.len()
        + option(&message.subject)
        + option(&message.message_id)
        + option(&message.auth_user)
        + message.recipients.iter().map(per_recipient).sum::<usize>()
        + message
            .lenient_lines
            .iter()
            .map(|l| string(l))
            .sum::<usize>()
}

#[derive(Debug)]
pub(super) struct Mailbox {
    max_messages: usize,
    max_bytes: usize,
    /// Stored messages; ids are consecutive, the front is the oldest.
    messages: VecDeque<Arc<StoredMessage>>,
    /// Id the next message gets (ids start at 1 and never repeat, not even after a clear).
    next_id: u64,
    /// What the stored messages hold in memory ([`footprint`]).
    bytes: usize,
    records: VecDeque<RecordRef>,
    by_to: HashMap<String, VecDeque<RecordRef>>,
    by_from: HashMap<String, VecDeque<RecordRef>>,
    /// Messages evicted by the caps since start.
    pub(super) evictions: u64,
    /// Times the mailbox was emptied (`clear`) since start: a reader that remembers it
    /// learns of a clear it did not see.
    pub(super) clears: u64,
}

impl Mailbox {
    /// A page of the messages matching `query`, in its order, and how many match in all.
    /// Without filters O(offset + limit); with `q=` or `subject=` one pass over the
    /// mailbox (no allocation per message); with an address filter one pass over that
    /// address's records.
    pub(super) fn list(
        &self,
        query: &ListQuery,
    ) -> Result<(Vec<Arc<StoredMessage>>, usize), Box<Scan>> {
        let subject = query.filter.subject.as_deref().map(Needle::new);
        let q = query.q.as_deref().map(Needle::new);
        let keep = |m: &&Arc<StoredMessage>| {
            subject_matches(subject.as_ref(), m) && text_matches(q.as_ref(), m)
        };
        let (offset, limit) = (query.offset, query.limit);
        if query.filter.to.is_none() && query.filter.from.is_none() {
            if subject.is_none() && q.is_none() {
                let total = self.messages.len();
                let page = if query.newest_first {
                    self.messages
                        .iter()
                        .rev()
                        .skip(offset)
                        .take(limit)
                        .cloned()
                        .collect()
                } else {
                    self.messages
                        .iter()
                        .skip(offset)
                        .take(limit)
                        .cloned()
                        .collect()
                };
                return Ok((page, total));
            }
            // One pass over the whole mailbox: done in pieces by the caller (`Scan`).
            return Err(Box::new(Scan {
                subject,
                q,
                newest_first: query.newest_first,
                offset,
                limit,
                total: 0,
                page: Vec::new(),
                after: 0,
                before: self.next_id,
            }));
        }
        let mut last_id = 0;
        let matching: Vec<&Arc<StoredMessage>> = self
            .records_matching(&query.filter)
            .map(|(m, _)| m)
            // A message listed twice for one address (a repeated RCPT) counts once.
            .filter(|m| std::mem::replace(&mut last_id, m.id) != m.id)
            .filter(keep)
            .collect();
        Ok(if query.newest_first {
            page_of(matching.into_iter().rev(), offset, limit)
        } else {
            page_of(matching.into_iter(), offset, limit)
        })
    }

    /// Goes on with `scan` over at most `chunk` messages; true when it has seen them all.
    pub(super) fn scan(&self, scan: &mut Scan, chunk: usize) -> bool {
        let from = self.messages.partition_point(|m| m.id <= scan.after);
        let to = self.messages.partition_point(|m| m.id < scan.before);
        if from >= to {
            return true;
        }
        if scan.newest_first {
            let start = to.saturating_sub(chunk).max(from);
            self.messages
                .range(start..to)
                .rev()
                .for_each(|m| scan.visit(m));
            scan.before = self.messages[start].id;
            start == from
        } else {
            let end = from.saturating_add(chunk).min(to);
            self.messages.range(from..end).for_each(|m| scan.visit(m));
            scan.after = self.messages[end - 1].id;
            end == to
        }
    }

    /// The newest `limit` messages with an id above `after`, oldest first, and how many
    /// stored messages have an id above `after`. O(log n + limit).
    pub(super) fn newer_than(&self, after: u64, limit: usize) -> (Vec<Arc<StoredMessage>>, usize) {
        let start = self.messages.partition_point(|m| m.id <= after);
        let newer = self.messages.len() - start;
        let from = start.max(self.messages.len().saturating_sub(limit));
        (self.messages.range(from..).cloned().collect(), newer)
    }

    pub(super) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Mailbox {
            max_messages,
            max_bytes,
            messages: VecDeque::new(),
            next_id: 1,
            bytes: 0,
            records: VecDeque::new(),
            by_to: HashMap::new(),
            by_from: HashMap::new(),
            evictions: 0,
            clears: 0,
        }
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id
    }

    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a message whose `id` is `next_id()`, then evicts the oldest while over a cap.
    /// The newest message itself is always kept, even alone over `max_bytes`.
    pub(super) fn push(&mut self, message: StoredMessage) {
        debug_assert_eq!(message.id, self.next_id);
        let id = message.id;
        self.next_id += 1;
        for (rcpt, to) in message.recipients.iter().enumerate() {
            let record = RecordRef {
                id,
                // SMTP caps recipients far below u32::MAX; saturate rather than panic.
                rcpt: u32::try_from(rcpt).unwrap_or(u32::MAX),
            };
            self.records.push_back(record);
            self.by_to.entry(to.clone()).or_default().push_back(record);
            self.by_from
                .entry(message.from.clone())
                .or_default()
                .push_back(record);
        }
        self.bytes += footprint(&message);
        self.messages.push_back(Arc::new(message));
        while self.messages.len() > 1
            && (self.messages.len() > self.max_messages || self.bytes > self.max_bytes)
        {
            self.evict_oldest();
        }
    }

    fn evict_oldest(&mut self) {
        let Some(old) = self.messages.pop_front() else {
            return;
        };
        self.bytes -= footprint(&old);
        self.evictions += 1;
        for to in &old.recipients {
            self.records.pop_front();
            pop_front_of(&mut self.by_to, to);
            pop_front_of(&mut self.by_from, &old.from);
        }
    }

    /// Empties the mailbox; ids go on growing.
    pub(super) fn clear(&mut self) {
        self.messages.clear();
        self.records.clear();
        self.by_to.clear();
        self.by_from.clear();
        self.bytes = 0;
        self.clears += 1;
    }

    pub(super) fn get(&self, id: u64) -> Option<&Arc<StoredMessage>> {
        self.index_of(id).and_then(|i| self.messages.get(i))
    }

    /// Where message `id` sits in `messages`. Ids are consecutive until a message is deleted
    /// on its own (`DELETE /api/v1/messages/{id}`), so arithmetic finds it at once; after
    /// a deletion the ids stay sorted and a binary search does.
    fn index_of(&self, id: u64) -> Option<usize> {
        let first = self.messages.front()?.id;
        let guess = usize::try_from(id.checked_sub(first)?).ok()?;
        if self.messages.get(guess).is_some_and(|m| m.id == id) {
            return Some(guess);
        }
        self.messages.binary_search_by_key(&id, |m| m.id).ok()
    }

    /// Removes message `id` and its records, returning it; `None` when it is not stored.
    /// Costs O(stored records): deleting one message is a rare, interactive act.
    pub(super) fn remove(&mut self, id: u64) -> Option<Arc<StoredMessage>> {
        let index = self.index_of(id)?;
        let gone = self.messages.remove(index)?;
        self.bytes -= footprint(&gone);
        self.records.retain(|r| r.id != id);
        for to in &gone.recipients {
            retain_in(&mut self.by_to, to, id);
        }
        retain_in(&mut self.by_from, &gone.from, id);
        Some(gone)
    }

    /// The record list that answers this filter best, and whether every entry of it
    /// already satisfies the address filters (so no per-entry check is needed).
    fn candidates(&self, filter: &Filter) -> (Option<&VecDeque<RecordRef>>, bool) {
        const EMPTY: Option<&VecDeque<RecordRef>> = None;
        match (&filter.to, &filter.from) {
            (None, None) => (Some(&self.records), true),
            (Some(to), None) => (self.by_to.get(to).or(EMPTY), true),
            (None, Some(from)) => (self.by_from.get(from).or(EMPTY), true),
            (Some(to), Some(from)) => {
                let (a, b) = (self.by_to.get(to), self.by_from.get(from));
                match (a, b) {
                    (Some(a), Some(b)) => (Some(if a.len() <= b.len() { a } else { b }), false),
                    _ => (None, true),
                }
            }
        }
    }

    /// Records (one per recipient) matching the address filters, oldest first.
    fn records_matching<'a>(
        &'a self,
        filter: &'a Filter,
    ) -> impl Iterator<Item = (&'a Arc<StoredMessage>, &'a str)> + 'a {
        let (list, exact) = self.candidates(filter);
        list.into_iter().flatten().filter_map(move |r| {
            let message = self.get(r.id)?;
            let to = message.recipients.get(r.rcpt as usize)?.as_str();
            if !exact
                && (filter.to.as_deref().is_some_and(|t| t != to)
                    || filter.from.as_deref().is_some_and(|f| f != message.from))
            {
                return None;
            }
            Some((message, to))
        })
    }

    /// Number of records matching the address filters (`/count`). O(1) for one filter.
    pub(super) fn count_records(&self, filter: &Filter) -> usize {
        match self.candidates(filter) {
            (None, _) => 0,
            (Some(list), true) => list.len(),
            (Some(_), false) => self.records_matching(filter).count(),
        }
    }

    /// The `n`-th record (0-based) matching the address filters (`/mail/N`): the message
    /// and the recipient of that record. O(1) for one filter.
    pub(super) fn nth_record(
        &self,
        filter: &Filter,
        n: usize,
    ) -> Option<(Arc<StoredMessage>, String)> {
        let found = match self.candidates(filter) {
            (None, _) => None,
            (Some(list), true) => list.get(n).and_then(|r| {
                let message = self.get(r.id)?;
                Some((message, message.recipients.get(r.rcpt as usize)?.as_str()))
            }),
            (Some(_), false) => self.records_matching(filter).nth(n),
        };
        found.map(|(m, to)| (Arc::clone(m), to.to_owned()))
    }

    /// Messages matching the whole filter, oldest first, skipping `offset`, at most `limit`.
    /// Costs O(offset + limit) with an address filter and no subject filter.
    pub(super) fn messages(
        &self,
        filter: &Filter,
        offset: usize,
        limit: usize,
    ) -> Vec<Arc<StoredMessage>> {
        let subject = filter.subject.as_deref().map(Needle::new);
        let subject_ok = |m: &StoredMessage| subject_matches(subject.as_ref(), m);
        if filter.to.is_none() && filter.from.is_none() {
            // By message, not by record: a message without recipients still shows.
            return self
                .messages
                .iter()
                .filter(|m| subject_ok(m))
                .skip(offset)
                .take(limit)
                .cloned()
                .collect();
        }
        let mut last_id = 0;
        self.records_matching(filter)
            .filter_map(|(m, _)| {
                // A message listed twice for one address (a repeated RCPT) counts once.
                if m.id == last_id {
                    return None;
                }
                last_id = m.id;
                Some(m)
            })
            .filter(|m| subject_ok(m))
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// The subject filter: no filter, or a subject containing it.
fn subject_matches(needle: Option<&Needle>, m: &StoredMessage) -> bool {
    needle.is_none_or(|n| m.subject.as_deref().is_some_and(|s| n.found_in(s)))
}

/// `q=`: the sender, a recipient or the subject contains it.
fn text_matches(needle: Option<&Needle>, m: &StoredMessage) -> bool {
    needle.is_none_or(|n| {
        n.found_in(&m.from)
            || m.recipients.iter().any(|r| n.found_in(r))
            || m.subject.as_deref().is_some_and(|s| n.found_in(s))
    })
}

/// A `q=` or `subject=` list over the whole mailbox, done a chunk at a time so that the
/// store's lock is let go in between: an insert waits for one chunk, not for the whole scan.
/// It covers the messages with ids in `after < id < before` as of its start; the bounds
/// narrow as it goes, so messages stored meanwhile are left out and evicted ones skipped.
#[derive(Debug)]
pub(super) struct Scan {
    subject: Option<Needle>,
    q: Option<Needle>,
    newest_first: bool,
    offset: usize,
    limit: usize,
    total: usize,
    page: Vec<Arc<StoredMessage>>,
    after: u64,
    before: u64,
}

impl Scan {
    fn visit(&mut self, m: &Arc<StoredMessage>) {
        if subject_matches(self.subject.as_ref(), m) && text_matches(self.q.as_ref(), m) {
            if self.total >= self.offset && self.page.len() < self.limit {
                self.page.push(Arc::clone(m));
            }
            self.total += 1;
        }
    }

    /// The page and the number of matches.
    pub(super) fn finish(self) -> (Vec<Arc<StoredMessage>>, usize) {
        (self.page, self.total)
    }
}

/// One page of `matching` (already in the order asked for) and how many there are in all.
fn page_of<'a>(
    matching: impl Iterator<Item = &'a Arc<StoredMessage>>,
    offset: usize,
    limit: usize,
) -> (Vec<Arc<StoredMessage>>, usize) {
    let mut total = 0;
    let mut page = Vec::with_capacity(limit.min(1024));
    for m in matching {
        if total >= offset && page.len() < limit {
            page.push(Arc::clone(m));
        }
        total += 1;
    }
    (page, total)
}

/// Drops the records of message `id` from the list of `key`, and the list when it empties.
fn retain_in(index: &mut HashMap<String, VecDeque<RecordRef>>, key: &str, id: u64) {
    if let Some(list) = index.get_mut(key) {
        list.retain(|r| r.id != id);
        if list.is_empty() {
            index.remove(key);
        }
    }
}

fn pop_front_of(index: &mut HashMap<String, VecDeque<RecordRef>>, key: &str) {
    if let Some(list) = index.get_mut(key) {
        list.pop_front();
        if list.is_empty() {
            index.remove(key);
        }
    }
}
