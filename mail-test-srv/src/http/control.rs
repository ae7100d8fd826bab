//! `/api/v1/faults`, `/api/v1/events`, `/api/v1/reset`: the fault plan as plain CRUD over
//! the same JSON that configures it, and the log of what it did.
//!
//! `PUT /faults` takes `{"seed": N, "rules": [...]}` (`seed` optional; each rule either the
//! `--fault` text or the object form, see `fault/rule.rs`) and replaces the whole plan.
//! `GET /faults` answers in the same shape, every rule named, so its output can be sent back
//! unchanged. One rule at a time, by name: `GET /faults/NAME`, `PUT /faults/NAME` (201 when
//! added at the end, 200 when it replaced the rule of that name in place), `PATCH
//! /faults/NAME` with `{"enabled": false}` (kept, not firing), `DELETE /faults/NAME` (204).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State as AxumState};
use axum::http::StatusCode;
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
    let plan = state
        .faults()
        .replace(put.rules, put.seed)
        .map_err(|e| ApiError::bad_request(format!("bad fault plan: {e}")))?;
    Ok(Json(plan))
}

/// `DELETE /faults`: no rules any more (the seed stays).
pub(super) async fn delete_faults(AxumState(state): AxumState<State>) -> Json<PlanSnapshot> {
    // An empty plan has no names to clash.
    Json(
        state
            .faults()
            .replace(Vec::new(), None)
            .unwrap_or_else(|_| state.faults().snapshot()),
    )
}

fn no_rule(name: &str) -> ApiError {
    ApiError::not_found(format!("no fault rule named {name:?}"))
}

/// `GET /faults/{name}`.
pub(super) async fn get_rule(
    AxumState(state): AxumState<State>,
    Path(name): Path<String>,
) -> Result<Json<FaultRule>, ApiError> {
    state
        .faults()
        .rule(&name)
        .map(Json)
        .ok_or_else(|| no_rule(&name))
}

/// `PUT /faults/{name}`: one rule in either form; 201 when added, 200 when replaced.
pub(super) async fn put_rule(
    AxumState(state): AxumState<State>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<FaultRule>), ApiError> {
    let rule: FaultRule = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad fault rule: {e}")))?;
    let (added, rule) = state
        .faults()
        .put_rule(&name, rule)
        .map_err(|e| ApiError::bad_request(format!("bad fault rule: {e}")))?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(rule)))
}

/// The body of `PATCH /faults/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchRule {
    enabled: bool,
}

/// `PATCH /faults/{name}` with `{"enabled": BOOL}`.
pub(super) async fn patch_rule(
    AxumState(state): AxumState<State>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<FaultRule>, ApiError> {
    let patch: PatchRule = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "bad patch: {e} (expected {{\"enabled\": true|false}})"
        ))
    })?;
    state
        .faults()
        .set_enabled(&name, patch.enabled)
        .map(Json)
        .ok_or_else(|| no_rule(&name))
}

/// `DELETE /faults/{name}`: 204, or 404 when there is no such rule.
pub(super) async fn delete_rule(
    AxumState(state): AxumState<State>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.faults().delete_rule(&name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_rule(&name))
    }
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
