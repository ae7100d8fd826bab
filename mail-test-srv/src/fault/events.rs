//! The log of injected faults.
//!
//! Bounded by bytes (`--max-event-bytes`): the oldest events go first and are counted as
//! dropped, so a long run with a high fault rate cannot grow memory without bound. An event
//! is a small fixed-size entry; the text of its rule (which may be kilobytes) is held once
//! per rule in a table of the log, shared by every event that rule produced, and freed when
//! its last event goes. The bytes counted are the entries plus the texts in that table.
//!
//! Sequence numbers start at 1 and are never reused, not even after `POST /api/v1/reset`,
//! so a client that polls `GET /events?since=SEQ` never mistakes a new event for one it has
//! seen. Reads come in pages ([`EventLog::page`]), so one request never copies the whole log.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::Stage;

/// One injected fault, as reported (`GET /api/v1/events` and in-process readers).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultEvent {
    pub seq: u64,
    /// RFC 3339 time the fault fired.
    pub time: String,
    pub connection: u64,
    /// The session it happened in (`/api/v1/sessions/{id}`): the same number as `connection`.
    pub session: u64,
    pub stage: String,
    /// The rule's name (`mail-close-1`, or the one it was given); `outage` for an outage.
    pub rule: String,
    /// The rule as text without its name (`mail:close:35%`); for an outage, what it was.
    pub definition: String,
    pub action: String,
    pub stored: bool,
}

/// A rule as events show it, rendered once when the plan is made and shared by its events.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleText {
    /// The rule's name.
    pub rule: String,
    /// Its action alone (`close`, `reply=550`).
    pub action: String,
    /// The rule in `--fault` syntax, without its name.
    pub definition: String,
}

/// What the engine hands over when a fault fires; the log adds the sequence number and time.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub connection: u64,
    pub stage: Stage,
    pub rule: Arc<RuleText>,
    pub stored: bool,
}

/// An event as held: fixed size, the rule by its slot in the log's rule table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    /// Milliseconds since the Unix epoch.
    time_ms: u64,
    connection: u64,
    slot: u32,
    stage: Stage,
    stored: bool,
}

/// Bytes an entry costs (the deque holds entries inline).
const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();
/// Bytes a rule text costs besides its characters: the slot, its `Arc`, the lookup entry.
const SLOT_OVERHEAD: usize = 96;

#[derive(Debug)]
struct Slot {
    text: Arc<RuleText>,
    /// Events held that point at this slot; the slot is freed at zero.
    uses: u64,
}

impl Slot {
    fn bytes(&self) -> usize {
        SLOT_OVERHEAD + self.text.rule.len() + self.text.action.len() + self.text.definition.len()
    }
}

/// Append-only log of fault events, cleared by `POST /api/v1/reset`.
///
/// A `std::sync::Mutex`: every critical section is a push, a pop or a copy of one page of
/// small entries, nothing in it awaits, so an async lock would only add cost.
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    events: VecDeque<Entry>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Slot of each rule text held, by the address of its `Arc` (unique while the slot
    /// holds it, which is exactly as long as the entry here lives).
    by_text: HashMap<usize, u32>,
    /// Bytes held: entries plus rule texts.
    bytes: usize,
    max_bytes: usize,
    /// Sequence number of the last event recorded (0 before the first).
    last_seq: u64,
    /// Events pushed out by the bound since start or the last clear.
    dropped: u64,
}

/// A page of events, as `GET /api/v1/events` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventPage {
    pub events: Vec<FaultEvent>,
    /// Sequence number of the newest event ever recorded (0 if none).
    pub last_seq: u64,
    /// Events dropped by the bound since start or the last reset.
    pub dropped: u64,
    /// More events follow this page: ask again with `since=next_since`.
    pub more: bool,
    /// The sequence number to pass as `since` for the next page (the last one in this page,
    /// or the `since` asked for when the page is empty).
    pub next_since: u64,
}

/// A page as copied out of the log: entries and their shared rule texts, rendered to
/// [`FaultEvent`]s (or straight to JSON) outside the lock.
#[derive(Debug)]
pub struct RawPage {
    entries: Vec<(Entry, Arc<RuleText>)>,
    pub last_seq: u64,
    pub dropped: u64,
    pub more: bool,
    pub next_since: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog::new(EventLog::DEFAULT_MAX_BYTES)
    }
}

impl EventLog {
    /// The default bound (`--max-event-bytes`): about 400,000 events, whatever their rules.
    pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

    /// A log that holds at most about `max_bytes` (the newest event is always kept).
    pub fn new(max_bytes: usize) -> Self {
        EventLog {
            inner: Mutex::new(LogInner {
                max_bytes,
                ..LogInner::default()
            }),
        }
    }

    /// Records an event, giving it the next sequence number and the time now; returns that number.
    pub fn record(&self, event: NewEvent) -> u64 {
        let time_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut inner = self.lock();
        inner.last_seq += 1;
        let slot = inner.intern(event.rule);
        let entry = Entry {
            seq: inner.last_seq,
            time_ms,
            connection: event.connection,
            slot,
            stage: event.stage,
            stored: event.stored,
        };
        inner.events.push_back(entry);
        inner.bytes += ENTRY_BYTES;
        while inner.bytes > inner.max_bytes && inner.events.len() > 1 {
            inner.pop_oldest();
            inner.dropped += 1;
        }
        inner.last_seq
    }

    /// Events dropped by the bound since start or the last clear.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Bytes held now (entries and rule texts).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Every event held with a sequence number above `since`, oldest first (for in-process
    /// readers; the HTTP API pages with [`EventLog::page`]).
    pub fn since(&self, since: u64) -> EventPage {
        self.page(since, usize::MAX)
    }

    /// At most `limit` events with a sequence number above `since`, oldest first.
    pub fn page(&self, since: u64, limit: usize) -> EventPage {
        self.raw_page(since, limit).render()
    }

    /// Like [`EventLog::page`], without rendering: cheap to take under the lock.
    pub(crate) fn raw_page(&self, since: u64, limit: usize) -> RawPage {
        let inner = self.lock();
        // Sequence numbers are consecutive within the deque, so the start is found by
        // arithmetic rather than a scan.
        let first = inner.events.front().map_or(inner.last_seq + 1, |e| e.seq);
        let skip = usize::try_from(since.saturating_add(1).saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(inner.events.len());
        let end = skip.saturating_add(limit).min(inner.events.len());
        let entries: Vec<(Entry, Arc<RuleText>)> = inner
            .events
            .range(skip..end)
            .map(|e| (*e, inner.text(e.slot)))
            .collect();
        RawPage {
            next_since: entries.last().map_or(since, |(e, _)| e.seq),
            more: end < inner.events.len(),
            entries,
            last_seq: inner.last_seq,
            dropped: inner.dropped,
        }
    }

    /// Sequence number of the newest event ever recorded (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Number of events held now.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every event and the dropped count; sequence numbers go on from where they were.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.events.clear();
        inner.slots.clear();
        inner.free.clear();
        inner.by_text.clear();
        inner.bytes = 0;
        inner.dropped = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        // A panic while holding the lock cannot leave the log inconsistent in a way that
        // matters (at worst a byte count off by one entry), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LogInner {
    /// The slot holding `text`, made (and its bytes counted) on the first event of a rule.
    fn intern(&mut self, text: Arc<RuleText>) -> u32 {
        let key = Arc::as_ptr(&text) as usize;
        if let Some(&slot) = self.by_text.get(&key)
            && let Some(Some(held)) = self.slots.get_mut(slot as usize)
        {
            held.uses += 1;
            return slot;
        }
        let held = Slot { text, uses: 1 };
        self.bytes += held.bytes();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(held);
                slot
            }
            None => {
                self.slots.push(Some(held));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_text.insert(key, slot);
        slot
    }

    fn text(&self, slot: u32) -> Arc<RuleText> {
        match self.slots.get(slot as usize) {
            Some(Some(held)) => Arc::clone(&held.text),
            // Every entry's slot is live (freed only with its last entry); never reached.
            _ => Arc::new(RuleText {
                rule: String::new(),
                action: String::new(),
                definition: String::new(),
            }),
        }
    }

    fn pop_oldest(&mut self) {
        let Some(old) = self.events.pop_front() else {
            return;
        };
        self.bytes -= ENTRY_BYTES;
        let index = old.slot as usize;
        let Some(Some(held)) = self.slots.get_mut(index) else {
            return;
        };
        held.uses -= 1;
        if held.uses == 0 {
            let bytes = held.bytes();
            let key = Arc::as_ptr(&held.text) as usize;
            self.slots[index] = None;
            self.by_text.remove(&key);
            self.free.push(old.slot);
            self.bytes -= bytes;
        }
    }
}

impl RawPage {
    /// Owned events, for in-process readers.
    pub fn render(self) -> EventPage {
        EventPage {
            events: self.events().map(|e| e.owned()).collect(),
            last_seq: self.last_seq,
            dropped: self.dropped,
            more: self.more,
            next_since: self.next_since,
        }
    }

    fn events(&self) -> impl Iterator<Item = EventView<'_>> {
        self.entries.iter().map(|(e, text)| EventView {
            seq: e.seq,
            time: humantime::format_rfc3339_millis(
                SystemTime::UNIX_EPOCH + Duration::from_millis(e.time_ms),
            )
            .to_string(),
            connection: e.connection,
            session: e.connection,
            stage: e.stage,
            rule: &text.rule,
            definition: &text.definition,
            action: &text.action,
            stored: e.stored,
        })
    }
}

/// One event borrowing its rule text: what the JSON of a page is written from, so a page
/// of events sharing a long rule does not copy that rule once per event.
#[derive(Debug, serde::Serialize)]
struct EventView<'a> {
    seq: u64,
    time: String,
    connection: u64,
    session: u64,
    #[serde(serialize_with = "display")]
    stage: Stage,
    rule: &'a str,
    definition: &'a str,
    action: &'a str,
    stored: bool,
}

fn display<S: serde::Serializer>(value: &Stage, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

impl EventView<'_> {
    fn owned(&self) -> FaultEvent {
        FaultEvent {
            seq: self.seq,
            time: self.time.clone(),
            connection: self.connection,
            session: self.session,
            stage: self.stage.to_string(),
            rule: self.rule.to_owned(),
            definition: self.definition.to_owned(),
            action: self.action.to_owned(),
            stored: self.stored,
        }
    }
}

/// The events of a page as a JSON array, each as `GET /api/v1/events` shows it.
pub struct Events<'a>(&'a RawPage);

impl serde::Serialize for Events<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.events())
    }
}

impl RawPage {
    /// The events alone, for a reader that wraps them its own way (the event stream).
    pub fn items(&self) -> Events<'_> {
        Events(self)
    }

    /// Whether the page holds no event.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The same JSON as [`EventPage`], written straight from the shared rule texts.
impl serde::Serialize for RawPage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut page = s.serialize_struct("EventPage", 5)?;
        page.serialize_field("events", &Events(self))?;
        page.serialize_field("last_seq", &self.last_seq)?;
        page.serialize_field("dropped", &self.dropped)?;
        page.serialize_field("more", &self.more)?;
        page.serialize_field("next_since", &self.next_since)?;
        page.end()
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
