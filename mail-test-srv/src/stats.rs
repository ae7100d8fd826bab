//! Counters of one server instance, read by `GET /api/v1/stats` and `/metrics`.
//!
//! Plain atomics: the session bumps them on its hot path without taking a lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one server instance. Shared by reference through `State`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted since start (refused ones included).
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Connections refused with 421 because `max_connections` were open.
    pub connections_refused: AtomicU64,
    /// SMTP command lines received (AUTH continuation lines and DATA content excluded).
    pub commands: AtomicU64,
    /// Commands refused with a 5xx (syntax, sequence, policy, failed AUTH).
    pub command_errors: AtomicU64,
    /// Sessions closed with 421 for reaching `max_errors`.
    pub error_limit_closes: AtomicU64,
    /// DATA transfers refused (452 / 451) because `max_inflight_bytes` were being received.
    pub inflight_refusals: AtomicU64,
    /// Sessions closed with 421 at `max_session_time`.
    pub session_time_limits: AtomicU64,
    /// Messages stored (accept-close included).
    pub messages: AtomicU64,
    /// Raw bytes of stored messages.
    pub bytes: AtomicU64,
    /// Sessions closed for idling past `idle_timeout`.
    pub idle_timeouts: AtomicU64,
    /// HTTP connections answered 503 because `--http-max-connections` were open.
    pub http_refusals: AtomicU64,
}

impl Stats {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter (relaxed: a report needs no ordering with other memory).
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Subtracts one, saturating at zero (for `connections_open`).
    pub fn drop_one(counter: &AtomicU64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }
}
