//! `/api/v1/stats` (JSON), `/metrics` (Prometheus text format 0.0.4) and `/healthz`.
//!
//! Both reports are rendered from one [`Report`] read from the same counters, so they
//! never disagree. The Prometheus text is written by hand: a registry crate would add a
//! dependency for a dozen lines, and the one with a global recorder is ruled out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::{OriginalUri, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::State;
use crate::fault::{Action, Stage};
use crate::stats::Stats;

#[derive(Debug, Serialize)]
struct Connections {
    total: u64,
    open: u64,
    refused: u64,
}

#[derive(Debug, Serialize)]
struct Stored {
    messages: usize,
    bytes: usize,
}

#[derive(Debug, Serialize)]
struct Sessions {
    open: usize,
    /// Closed sessions whose transcripts are kept.
    kept: usize,
    evicted: u64,
    transcript_bytes: usize,
}

/// Sessions ended or transfers refused by a limit.
#[derive(Debug, Serialize)]
struct Limited {
    error_limit: u64,
    session_time: u64,
    inflight_refusals: u64,
    inflight_bytes: usize,
    http_refusals: u64,
}

#[derive(Debug, Serialize)]
struct Faults {
    total: u64,
    by_stage: BTreeMap<&'static str, u64>,
    by_action: BTreeMap<&'static str, u64>,
    /// Fault events dropped from the bounded log.
    events_dropped: u64,
}

/// Everything `/stats` and `/metrics` report.
#[derive(Debug, Serialize)]
struct Report {
    connections: Connections,
    commands: u64,
    command_errors: u64,
    messages: u64,
    bytes: u64,
    stored: Stored,
    evictions: u64,
    idle_timeouts: u64,
    /// New connections from a client whose previous session the server ended (a fault, an
    /// outage) within the last minute.
    reconnects_seen: u64,
    limits: Limited,
    sessions: Sessions,
    faults: Faults,
    seed: u64,
    /// The SMTP side gone away now (`/api/v1/outage`), or `null`.
    outage: Option<crate::outage::Status>,
    /// Non-zero (stage, action kind) pairs, for the labelled metric.
    #[serde(skip)]
    injected: Vec<(Stage, &'static str, u64)>,
}

impl Report {
    fn read(state: &State) -> Report {
        let s = state.stats();
        let engine = state.faults();
        let mut injected = Vec::new();
        let mut by_stage = BTreeMap::new();
        let mut by_action: BTreeMap<&'static str, u64> = BTreeMap::new();
        for stage in Stage::ALL {
            let mut stage_total = 0;
            for (kind, name) in Action::KINDS.iter().enumerate() {
                let n = engine.injected(stage, kind);
                stage_total += n;
                *by_action.entry(name).or_default() += n;
                if n > 0 {
                    injected.push((stage, *name, n));
                }
            }
            by_stage.insert(stage.as_str(), stage_total);
        }
        let store = state.store();
        Report {
            connections: Connections {
                total: Stats::get(&s.connections_total),
                open: Stats::get(&s.connections_open),
                refused: Stats::get(&s.connections_refused),
            },
            commands: Stats::get(&s.commands),
            command_errors: Stats::get(&s.command_errors),
            messages: Stats::get(&s.messages),
            bytes: Stats::get(&s.bytes),
            stored: Stored {
                messages: store.len(),
                bytes: store.bytes(),
            },
            evictions: store.evictions(),
            idle_timeouts: Stats::get(&s.idle_timeouts),
            reconnects_seen: state.sessions().reconnects_seen(),
            limits: Limited {
                error_limit: Stats::get(&s.error_limit_closes),
                session_time: Stats::get(&s.session_time_limits),
                inflight_refusals: Stats::get(&s.inflight_refusals),
                http_refusals: Stats::get(&s.http_refusals),
                inflight_bytes: state.inflight().in_use(),
            },
            sessions: Sessions {
                open: state.sessions().open_count(),
                kept: state.sessions().kept_count(),
                evicted: state.sessions().evicted(),
                transcript_bytes: state.sessions().bytes(),
            },
            faults: Faults {
                total: by_stage.values().sum(),
                by_stage,
                by_action,
                events_dropped: engine.events().dropped(),
            },
            seed: engine.seed(),
            outage: state.outages().status(),
            injected,
        }
    }

    fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            // Writing to a String cannot fail.
            let _ = write!(
                out,
                "# HELP mail_test_srv_{name} {help}\n# TYPE mail_test_srv_{name} {kind}\nmail_test_srv_{name} {value}\n"
            );
        };
        let c = &self.connections;
        metric(
            "connections_total",
            "counter",
            "SMTP connections accepted.",
            c.total,
        );
        metric(
            "connections_open",
            "gauge",
            "SMTP connections open now.",
            c.open,
        );
        metric(
            "connections_refused_total",
            "counter",
            "SMTP connections refused with 421 at the connection limit.",
            c.refused,
        );
        metric(
            "commands_total",
            "counter",
            "SMTP command lines received.",
            self.commands,
        );
        metric(
            "command_errors_total",
            "counter",
            "SMTP commands answered with a syntax or sequence error.",
            self.command_errors,
        );
        metric(
            "messages_total",
            "counter",
            "Messages stored.",
            self.messages,
        );
        metric(
            "bytes_total",
            "counter",
            "Raw bytes of stored messages.",
            self.bytes,
        );
        metric(
            "stored_messages",
            "gauge",
            "Messages held in the mailbox now.",
            self.stored.messages as u64,
        );
        metric(
            "stored_bytes",
            "gauge",
            "Bytes the mailbox holds now: bodies, envelopes, header index.",
            self.stored.bytes as u64,
        );
        metric(
            "evictions_total",
            "counter",
            "Messages evicted by the mailbox caps.",
            self.evictions,
        );
        metric(
            "idle_timeouts_total",
            "counter",
            "Sessions closed for idling.",
            self.idle_timeouts,
        );
        metric(
            "reconnects_seen_total",
            "counter",
            "New connections from a client whose previous session a fault or an outage ended within 60 s.",
            self.reconnects_seen,
        );
        let l = &self.limits;
        metric(
            "error_limit_closes_total",
            "counter",
            "Sessions closed with 421 for too many refused commands.",
            l.error_limit,
        );
        metric(
            "session_time_limits_total",
            "counter",
            "Sessions closed with 421 at the session time limit.",
            l.session_time,
        );
        metric(
            "inflight_refusals_total",
            "counter",
            "DATA transfers refused because too many bytes were being received.",
            l.inflight_refusals,
        );
        metric(
            "http_refusals_total",
            "counter",
            "HTTP connections answered 503 at the HTTP connection limit.",
            l.http_refusals,
        );
        metric(
            "inflight_bytes",
            "gauge",
            "Message bytes being received now.",
            l.inflight_bytes as u64,
        );
        let t = &self.sessions;
        metric(
            "sessions_open",
            "gauge",
            "Sessions open now (with a transcript).",
            t.open as u64,
        );
        metric(
            "sessions_kept",
            "gauge",
            "Closed sessions whose transcripts are kept.",
            t.kept as u64,
        );
        metric(
            "sessions_evicted_total",
            "counter",
            "Closed sessions dropped to stay within --max-sessions / --max-transcript-bytes.",
            t.evicted,
        );
        metric(
            "transcript_bytes",
            "gauge",
            "Bytes held by session transcripts.",
            t.transcript_bytes as u64,
        );
        metric(
            "fault_events_dropped_total",
            "counter",
            "Fault events dropped from the bounded event log.",
            self.faults.events_dropped,
        );
        metric("seed", "gauge", "Seed of the fault decisions.", self.seed);
        metric(
            "outage_active",
            "gauge",
            "1 while the SMTP side is gone away (an outage), 0 otherwise.",
            u64::from(self.outage.is_some()),
        );
        out.push_str(
            "# HELP mail_test_srv_faults_injected_total Faults injected, by stage and action.\n\
             # TYPE mail_test_srv_faults_injected_total counter\n",
        );
        for (stage, action, n) in &self.injected {
            // Label values are fixed identifiers: nothing to escape.
            let _ = writeln!(
                out,
                "mail_test_srv_faults_injected_total{{stage=\"{stage}\",action=\"{action}\"}} {n}"
            );
        }
        out
    }
}

/// `GET /api/v1/stats`.
pub(super) async fn stats(AxumState(state): AxumState<State>) -> Json<impl Serialize> {
    Json(Report::read(&state))
}

/// The JSON of `GET /api/v1/stats`, for the event stream.
pub(super) fn stats_json(state: &State) -> serde_json::Value {
    serde_json::to_value(Report::read(state)).unwrap_or_default()
}

/// Seconds `GET /stats/series` answers when `seconds=` is not given.
const DEFAULT_SERIES_SECONDS: u64 = 300;

/// `GET /api/v1/stats/series?seconds=N`: messages, faults and connections per second over
/// the last N seconds (default 300, at most 600), oldest first, from the live task's ring.
pub(super) async fn series(
    AxumState(state): AxumState<State>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<serde_json::Value>, super::ApiError> {
    let params = super::Params::parse(&uri)?;
    let seconds = params.number(
        "seconds",
        DEFAULT_SERIES_SECONDS,
        super::live::SERIES_LEN as u64,
    )?;
    let points = state
        .live()
        .series(usize::try_from(seconds).unwrap_or(usize::MAX));
    Ok(Json(serde_json::json!({
        "interval_ms": 1000,
        "points": points,
    })))
}

/// `GET /metrics`.
pub(super) async fn prometheus(AxumState(state): AxumState<State>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        Report::read(&state).prometheus(),
    )
        .into_response()
}

/// `GET /healthz`.
pub(super) async fn healthz() -> Response {
    super::text(StatusCode::OK, "ok\n")
}
