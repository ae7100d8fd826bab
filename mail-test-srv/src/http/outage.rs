//! `/api/v1/outage`: the server gone away for a while (see `crate::outage`).
//!
//! - `POST` `{"for": "10s", "mode": "refuse"|"blackhole"}` (mode `refuse` when left out)
//!   begins one, replacing any outage on; answers with its status.
//! - `GET` the outage on (`{"active": true, "mode", "for", "until"}`) or `{"active": false}`.
//! - `DELETE` ends it early: `{"active": false}`, or 404 when none is on.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use serde::Deserialize;

use super::ApiError;
use crate::State;
use crate::outage::{Mode, Status, parse_length};

/// The body of `POST /outage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostOutage {
    /// A duration (`10s`); parsed after serde, so its error names the duration.
    #[serde(rename = "for")]
    length: String,
    #[serde(default)]
    mode: Option<String>,
}

/// `{"active": false}`, or the outage on.
fn report(status: Option<Status>) -> Json<serde_json::Value> {
    Json(match status {
        Some(status) => serde_json::to_value(status).unwrap_or_default(),
        None => serde_json::json!({ "active": false }),
    })
}

/// `POST /outage`.
pub(super) async fn post(
    AxumState(state): AxumState<State>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    // By hand rather than with the `Json` extractor, so every mistake gets `{"error": ...}`.
    let post: PostOutage = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad outage: {e}")))?;
    let length = parse_length(&post.length).map_err(ApiError::bad_request)?;
    let mode = match post.mode.as_deref() {
        None => Mode::default(),
        Some(text) => text.parse().map_err(ApiError::bad_request)?,
    };
    Ok(report(Some(state.outages().begin(mode, length).status())))
}

/// `GET /outage`.
pub(super) async fn get(AxumState(state): AxumState<State>) -> Json<serde_json::Value> {
    report(state.outages().status())
}

/// `DELETE /outage`.
pub(super) async fn delete(
    AxumState(state): AxumState<State>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match state.outages().end_early() {
        Some(_) => Ok(report(None)),
        None => Err(ApiError::not_found("no outage is on")),
    }
}
