//! What the web page sees live: one task per server instance ([`live`]) that samples the
//! counters every second into a ring (`GET /api/v1/stats/series`) and, while at least one
//! event stream is open (`stream.rs`), renders what changed every [`BATCH`] into
//! server-sent-event frames that every stream forwards. A single delete is sent at once
//! ([`Live::deleted`]).
//!
//! Nothing is added to the SMTP path: the task *looks* at the store, the fault log and the
//! sessions on its own clock (one short read lock each) and remembers where it looked
//! ([`Cursor`]). Each frame is rendered once, whatever the number of open pages, and handed
//! to them through a `broadcast` channel. With no stream open the task wakes once a second
//! to sample, nothing more.
//!
//! No item is lost between a page's first look and its stream: a stream subscribes under
//! the cursor's lock, and when it is the first, moves the cursor to "now" there; everything
//! after that goes out in a batch. A page may see a message both in its first
//! `GET /messages` and in a batch: it keeps one per id.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::State;
use crate::stats::Stats;

/// How often the task looks for news while a stream is open.
pub(super) const BATCH: Duration = Duration::from_millis(50);
/// Items of one kind in one batch at most; more are counted as `skipped`.
pub(super) const MAX_ITEMS: usize = 200;
/// Samples kept: ten minutes at one a second.
pub(super) const SERIES_LEN: usize = 600;
/// Open event streams at most; past it `GET /stream` answers 503.
pub(super) const MAX_STREAMS: usize = 32;
/// Frames a stream may fall behind before it is ended (the page reconnects and reloads).
const CHANNEL: usize = 256;

/// The live side of one server instance, held by its [`State`].
#[derive(Debug)]
pub struct Live {
    frames: broadcast::Sender<Bytes>,
    cursor: Mutex<Cursor>,
    series: Mutex<VecDeque<Point>>,
    /// Bumped when the fault rules, the seed or the settings change.
    changes: AtomicU64,
    streams: Arc<AtomicUsize>,
    /// A stream was opened: the task starts batching at once.
    joined: Notify,
    /// Cancelled when the task ends (server shutdown): streams end with it.
    stopped: CancellationToken,
}

/// Where the task last looked.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    message: u64,
    clears: u64,
    event: u64,
    sessions: (u64, u64),
    changes: u64,
}

/// One second of activity.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(super) struct Point {
    /// Unix seconds at the end of the second.
    pub t: u64,
    /// Messages stored in that second.
    pub messages: u64,
    /// Faults injected.
    pub faults: u64,
    /// SMTP connections accepted.
    pub sessions: u64,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            frames: broadcast::channel(CHANNEL).0,
            cursor: Mutex::default(),
            series: Mutex::new(VecDeque::with_capacity(SERIES_LEN)),
            changes: AtomicU64::new(0),
            streams: Arc::default(),
            joined: Notify::new(),
            stopped: CancellationToken::new(),
        }
    }
}

/// An open stream's place under [`MAX_STREAMS`], given back on drop.
#[derive(Debug)]
pub(super) struct Subscription {
    pub frames: broadcast::Receiver<Bytes>,
    streams: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Live {
    /// The fault rules, the seed or a setting changed: open pages are told (`event: rules`).
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// One message was deleted (`DELETE /messages/{id}`): open pages drop its row at once
    /// (`event: deleted`, `{"id", "total"}`) instead of noticing from the stored count.
    /// Sent straight away, outside the batches: a delete is rare and a person is waiting.
    pub(crate) fn deleted(&self, id: u64, total: usize) {
        if self.frames.receiver_count() > 0 {
            let data = serde_json::json!({ "id": id, "total": total });
            // No receiver left in between: nobody to tell.
            let _ = self.frames.send(frame("deleted", &data));
        }
    }

    /// Cancelled once the server stops.
    pub(super) fn stopped(&self) -> &CancellationToken {
        &self.stopped
    }

    /// A new stream's subscription, or `None` past [`MAX_STREAMS`].
    pub(super) fn subscribe(&self, state: &State) -> Option<Subscription> {
        if self.streams.fetch_add(1, Ordering::Relaxed) >= MAX_STREAMS {
            self.streams.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let streams = Arc::clone(&self.streams);
        let mut cursor = lock(&self.cursor);
        if self.frames.receiver_count() == 0 {
            // Nobody was listening, so the cursor is stale: start from now.
            *cursor = Cursor::now(state, self);
        }
        let frames = self.frames.subscribe();
        drop(cursor);
        self.joined.notify_one();
        Some(Subscription { frames, streams })
    }

    /// The last `seconds` samples, oldest first.
    pub(super) fn series(&self, seconds: usize) -> Vec<Point> {
        let series = lock(&self.series);
        let skip = series.len().saturating_sub(seconds);
        series.iter().skip(skip).copied().collect()
    }
}

impl Cursor {
    fn now(state: &State, live: &Live) -> Cursor {
        let (message, clears) = state.store().position();
        Cursor {
            message,
            clears,
            event: state.faults().events().last_seq(),
            sessions: state.sessions().position(),
            changes: live.changes.load(Ordering::Relaxed),
        }
    }
}

/// One server-sent event: `event: NAME` and its JSON on one `data:` line (JSON from serde
/// never holds a raw line break).
pub(super) fn frame(name: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// The task: samples every second, batches every [`BATCH`] while a stream is open, until
/// `stop`; then every stream ends.
pub async fn live(state: State, stop: CancellationToken) {
    let live = state.live();
    let mut counters = Counters::read(&state);
    let mut next_sample = Instant::now() + Duration::from_secs(1);
    loop {
        let listening = live.frames.receiver_count() > 0;
        let wake = if listening {
            (Instant::now() + BATCH).min(next_sample)
        } else {
            next_sample
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(wake) => {}
            _ = live.joined.notified() => {}
        }
        let now = Instant::now();
        if now >= next_sample {
            let point = counters.sample(&state);
            {
                let mut series = lock(&live.series);
                if series.len() == SERIES_LEN {
                    series.pop_front();
                }
                series.push_back(point);
            }
            // A stalled runtime does not make up for lost seconds with a burst.
            next_sample = (next_sample + Duration::from_secs(1)).max(now);
            if live.frames.receiver_count() > 0 {
                let mut stats = super::metrics::stats_json(&state);
                if let Some(object) = stats.as_object_mut() {
                    object.insert(
                        "point".to_owned(),
                        serde_json::to_value(point).unwrap_or_default(),
                    );
                }
                let _ = live.frames.send(frame("stats", &stats));
            }
        }
        if live.frames.receiver_count() > 0 {
            batch(&state, live);
        }
    }
    live.stopped.cancel();
}

/// Counter values at the last sample.
struct Counters {
    messages: u64,
    faults: u64,
    sessions: u64,
}

impl Counters {
    fn read(state: &State) -> Counters {
        Counters {
            messages: Stats::get(&state.stats().messages),
            faults: state.faults().events().last_seq(),
            sessions: Stats::get(&state.stats().connections_total),
        }
    }

    /// What happened since the last sample; remembers the counters for the next.
    fn sample(&mut self, state: &State) -> Point {
        let now = Counters::read(state);
        let point = Point {
            t: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            messages: now.messages.saturating_sub(self.messages),
            faults: now.faults.saturating_sub(self.faults),
            sessions: now.sessions.saturating_sub(self.sessions),
        };
        *self = now;
        point
    }
}

#[derive(Serialize)]
struct Items<T: Serialize> {
    items: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    #[serde(skip_serializing_if = "is_zero")]
    skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Looks at everything once and sends what changed since the cursor.
fn batch(state: &State, live: &Live) {
    let mut cursor = lock(&live.cursor);
    let arrivals = state.store().arrivals(cursor.message, MAX_ITEMS);
    if arrivals.clears != cursor.clears {
        cursor.clears = arrivals.clears;
        let _ = live.frames.send(frame("reset", &serde_json::json!({})));
    }
    let changes = live.changes.load(Ordering::Relaxed);
    if changes != cursor.changes {
        cursor.changes = changes;
        let _ = live.frames.send(frame("rules", &serde_json::json!({})));
    }
    if arrivals.last_id > cursor.message {
        cursor.message = arrivals.last_id;
        if arrivals.newer > 0 {
            let items: Vec<super::messages::Summary> = arrivals
                .messages
                .iter()
                .map(|m| super::messages::Summary::from(&**m))
                .collect();
            let skipped = arrivals.newer - items.len();
            let data = Items {
                items,
                total: Some(arrivals.total),
                skipped,
            };
            let _ = live.frames.send(frame("messages", &data));
        }
    }
    let events = state.faults().events();
    let last_seq = events.last_seq();
    if last_seq > cursor.event {
        // The newest MAX_ITEMS when more came; the ones before are only counted.
        let from = cursor.event.max(last_seq.saturating_sub(MAX_ITEMS as u64));
        let skipped = usize::try_from(from - cursor.event).unwrap_or(usize::MAX);
        cursor.event = last_seq;
        let page = events.raw_page(from, MAX_ITEMS);
        if !page.is_empty() {
            let data = Items {
                items: page.items(),
                total: None,
                skipped,
            };
            let _ = live.frames.send(frame("faults", &data));
        }
    }
    let changes = state.sessions().changes(cursor.sessions, MAX_ITEMS);
    cursor.sessions = changes.position;
    if !changes.sessions.is_empty() {
        let items: Vec<super::sessions::Summary> = changes
            .sessions
            .iter()
            .map(super::sessions::Summary::from)
            .collect();
        let data = Items {
            items,
            total: None,
            skipped: 0,
        };
        let _ = live.frames.send(frame("sessions", &data));
    }
}

/// Middleware: a successful change of the fault plan, the seed, the settings, the outage or
/// a reset tells open pages to reload them (`event: rules`). One place, so a new route
/// under those paths cannot forget it.
pub(super) async fn note_changes(
    axum::extract::State(state): axum::extract::State<State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let watched = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    ) && [
        "/api/v1/faults",
        "/api/v1/settings",
        "/api/v1/outage",
        "/api/v1/reset",
    ]
    .iter()
    .any(|p| {
        path == *p
            || path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
    });
    let response = next.run(request).await;
    if watched && response.status().is_success() {
        state.live().changed();
    }
    response
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a copy or a push; a poisoned value is still whole.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
