//! `/api/v1/faults`, `/api/v1/events`, `/api/v1/reset`: the fault plan as plain CRUD over
//! the same JSON that configures it, and the log of what it did.
//!
//! `PUT /faults` takes `{"seed": N, "rules": [...]}` (`seed` optional; each rule either the
//! `--fault` text or the object form, see `fault/rule.rs`) and replaces the whole plan.
//! `GET /faults` answers in the same shape, so its output can be sent back unchanged.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State as AxumState};
use serde::Deserialize;

use super::{ApiError, Params};
use crate::State;
use crate::fault::{FaultRule, PlanSnapshot, RawPage};

/// Events in one `GET /events` page unless `limit=` says otherwise.
const DEFAULT_EVENT_LIMIT: u64 = 1_000;
/// Largest `limit=` of `GET /events`.
const MAX_EVENT_LIMIT: u64 = 10_000;

/// The body of `PUT /faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutFaults {
    /// A new seed for connections accepted from now on; absent keeps the current one.
    #[serde(default)]
    seed: Option<u64>,
    rules: Vec<FaultRule>,
}

/// `GET /faults`.
pub(super) async fn get_faults(AxumState(state): AxumState<State>) -> Json<PlanSnapshot> {
    Json(state.faults().snapshot())
}

/// `PUT /faults`: replaces the rules (and the seed if given); answers with the new plan.
pub(super) async fn put_faults(
    AxumState(state): AxumState<State>,
    body: Bytes,
) -> Result<Json<PlanSnapshot>, ApiError> {
    // Parsed by hand rather than with the `Json` extractor so that every mistake (bad
    // JSON, a bad rule, a missing field) gets the same `{"error": ...}` shape, and the
    // message names the bad part of the rule.
    let put: PutFaults = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad fault plan: {e}")))?;
    Ok(Json(state.faults().replace(put.rules, put.seed)))
}

/// `DELETE /faults`: no rules any more (the seed stays).
pub(super) async fn delete_faults(AxumState(state): AxumState<State>) -> Json<PlanSnapshot> {
    Json(state.faults().replace(Vec::new(), None))
}

/// `GET /events[?since=SEQ][&limit=N]`: at most `limit` (default 1,000) events with a
/// sequence number above `since` (default 0), oldest first; `more` says whether another
/// page follows, from `since=next_since`.
pub(super) async fn events(
    AxumState(state): AxumState<State>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<RawPage>, ApiError> {
    let params = Params::parse(&uri)?;
    let since = params.number("since", 0, u64::MAX)?;
    let limit = params.number("limit", DEFAULT_EVENT_LIMIT, MAX_EVENT_LIMIT)?;
    if limit == 0 {
        return Err(ApiError::bad_request("limit must be at least 1"));
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    // Copied under the lock as small entries; the JSON is written afterwards, each rule
    // text borrowed from the one copy the log holds.
    Ok(Json(state.faults().events().raw_page(since, limit)))
}

/// `POST /reset`: messages, events and every trigger counter, in one call.
pub(super) async fn reset(AxumState(state): AxumState<State>) -> Json<serde_json::Value> {
    state.store().clear();
    state.faults().reset();
    state.sessions().clear();
    Json(serde_json::json!({ "reset": true }))
}
