//! The log of injected faults.
//!
//! Bounded: it keeps the last [`EventLog::CAPACITY`] events and counts the ones it dropped,
//! so a long run with a high fault rate cannot grow memory without bound. Sequence numbers
//! start at 1 and are never reused, not even after `POST /api/v1/reset`, so a client that
//! polls `GET /events?since=SEQ` never mistakes a new event for one it has seen.

use std::collections::VecDeque;
use std::sync::Mutex;

/// One injected fault.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultEvent {
    pub seq: u64,
    /// RFC 3339 time the fault fired.
    pub time: String,
    pub connection: u64,
    pub stage: String,
    /// Index of the rule in the plan, and the rule as text (`mail:close:35%`).
    pub rule_index: usize,
    pub rule: String,
    pub action: String,
    pub stored: bool,
}

/// Append-only log of fault events, cleared by `POST /api/v1/reset`.
///
/// A `std::sync::Mutex`: every critical section is a push or a copy of a few entries,
/// nothing in it awaits, so an async lock would only add cost.
#[derive(Debug, Default)]
pub struct EventLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default)]
struct LogInner {
    events: VecDeque<FaultEvent>,
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
}

impl EventLog {
    /// Events kept; older ones are dropped and counted.
    pub const CAPACITY: usize = 100_000;

    /// Records an event, filling in its sequence number; returns that number.
    pub fn record(&self, mut event: FaultEvent) -> u64 {
        let mut inner = self.lock();
        inner.last_seq += 1;
        event.seq = inner.last_seq;
        if inner.events.len() >= Self::CAPACITY {
            inner.events.pop_front();
            inner.dropped += 1;
        }
        inner.events.push_back(event);
        inner.last_seq
    }

    /// Events dropped by the bound since start or the last clear.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The events with a sequence number above `since`, oldest first.
    pub fn since(&self, since: u64) -> EventPage {
        let inner = self.lock();
        // Sequence numbers are consecutive within the deque, so the start is found by
        // arithmetic rather than a scan.
        let first = inner.events.front().map_or(inner.last_seq + 1, |e| e.seq);
        let skip = usize::try_from(since.saturating_add(1).saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(inner.events.len());
        EventPage {
            events: inner.events.range(skip..).cloned().collect(),
            last_seq: inner.last_seq,
            dropped: inner.dropped,
        }
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
        inner.dropped = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        // A panic while holding the lock cannot leave the log inconsistent (each change is
        // a single push/pop), so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(connection: u64) -> FaultEvent {
        FaultEvent {
            seq: 0,
            time: String::new(),
            connection,
            stage: "mail".into(),
            rule_index: 0,
            rule: "mail:close".into(),
            action: "close".into(),
            stored: false,
        }
    }

    #[test]
    fn sequence_starts_at_one_and_since_filters() {
        let log = EventLog::default();
        assert_eq!(log.record(event(1)), 1);
        assert_eq!(log.record(event(2)), 2);
        assert_eq!(log.record(event(3)), 3);
        let all = log.since(0);
        assert_eq!(
            all.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let later = log.since(2);
        assert_eq!(later.events.len(), 1);
        assert_eq!(later.events[0].connection, 3);
        assert!(log.since(3).events.is_empty());
        assert!(log.since(u64::MAX).events.is_empty());
    }

    #[test]
    fn bounded_and_counts_dropped() {
        let log = EventLog::default();
        for i in 0..(EventLog::CAPACITY as u64 + 5) {
            log.record(event(i));
        }
        let page = log.since(0);
        assert_eq!(page.events.len(), EventLog::CAPACITY);
        assert_eq!(page.dropped, 5);
        assert_eq!(page.events[0].seq, 6);
        assert_eq!(log.since(10).events[0].seq, 11);
    }

    #[test]
    fn clear_keeps_numbering() {
        let log = EventLog::default();
        log.record(event(1));
        log.clear();
        assert!(log.is_empty());
        assert_eq!(log.record(event(2)), 2);
        assert_eq!(log.since(0).events.len(), 1);
    }
}
