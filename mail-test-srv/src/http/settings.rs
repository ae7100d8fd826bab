//! `/api/v1/settings`: server settings that may change while it runs.
//!
//! `GET` answers `{"strict": false}`; `PATCH` takes the same object with any subset of its
//! fields, applies them to every session from its next command on, and answers with the
//! settings now in force. Unknown fields and wrong types are refused with 400, so a typo
//! never passes silently.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::State;

/// The settings in force.
#[derive(Debug, Serialize)]
pub(super) struct Settings {
    /// RFC 5321 path syntax for MAIL and RCPT (`--strict`); false reads paths leniently.
    strict: bool,
}

/// A `PATCH` body: absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    #[serde(default)]
    strict: Option<bool>,
}

fn current(state: &State) -> Settings {
    Settings {
        strict: state.strict(),
    }
}

/// `GET /settings`.
pub(super) async fn get(AxumState(state): AxumState<State>) -> Json<Settings> {
    Json(current(&state))
}

/// `PATCH /settings`.
pub(super) async fn patch(
    AxumState(state): AxumState<State>,
    body: Bytes,
) -> Result<Json<Settings>, ApiError> {
    let patch: Patch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad settings: {e}")))?;
    if let Some(strict) = patch.strict {
        state.set_strict(strict);
        tracing::info!(strict, "path syntax changed");
    }
    Ok(Json(current(&state)))
}
