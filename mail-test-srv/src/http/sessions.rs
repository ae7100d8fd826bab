//! `/api/v1/sessions`: every SMTP session's summary and transcript.
//!
//! - `GET /sessions?limit=&before=&state=open|closed&peer=IP&fault=true|false&refused=true|false`:
//!   summaries, newest first; `next_before` pages on (absent on the last page).
//! - `GET /sessions/{id}`: the summary and its lines as JSON (`{"t", "dir", "line"}`).
//! - `GET /sessions/{id}/transcript`: the lines as text, `+0.012s C: MAIL FROM:<a@b>`.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{OriginalUri, Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{ApiError, Params, text};
use crate::State;
use crate::transcript::{Dir, Outcome, Query, Record, Refusal, TlsInfo};

/// Sessions in one page when `limit` is not given, and the most one page may hold.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

/// A session as lists show it.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    id: u64,
    peer: String,
    /// RFC 3339.
    started: String,
    ended: Option<String>,
    open: bool,
    tls: Option<TlsInfo>,
    helo: Option<String>,
    auth_user: Option<String>,
    commands: u64,
    /// Ids of the messages stored (`/api/v1/messages/{id}`).
    messages: Vec<u64>,
    faults: u64,
    refusals: Vec<Refusal>,
    outcome: Option<Outcome>,
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

impl From<&Record> for Summary {
    fn from(r: &Record) -> Self {
        Summary {
            id: r.id,
            peer: r.peer.to_string(),
            started: rfc3339(r.started),
            ended: r.ended.map(rfc3339),
            open: r.ended.is_none(),
            tls: r.tls.clone(),
            helo: r.helo.clone(),
            auth_user: r.auth_user.clone(),
            commands: r.commands,
            messages: r.messages.clone(),
            faults: r.faults,
            refusals: r.refusals.clone(),
            outcome: r.outcome.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Page {
    count: usize,
    sessions: Vec<Summary>,
    /// `before` for the next page, when there may be one.
    next_before: Option<u64>,
}

/// One transcript line as JSON.
#[derive(Debug, Serialize)]
pub(super) struct LineJson {
    /// Seconds since the session started.
    t: f64,
    dir: Dir,
    line: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Detail {
    #[serde(flatten)]
    summary: Summary,
    lines: Vec<LineJson>,
}

fn flag(params: &Params, key: &str) -> Result<Option<bool>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "bad {key} {other:?}: expected true or false"
        ))),
    }
}

/// `GET /sessions`.
pub(super) async fn list(
    AxumState(state): AxumState<State>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Page>, ApiError> {
    let params = Params::parse(&uri)?;
    let limit = params.number("limit", DEFAULT_LIMIT, MAX_LIMIT)? as usize;
    let open = match params.get("state") {
        None => None,
        Some("open") => Some(true),
        Some("closed") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "bad state {other:?}: expected open or closed"
            )));
        }
    };
    let peer = params
        .get("peer")
        .map(|p| {
            p.parse().map_err(|_| {
                ApiError::bad_request(format!("bad peer {p:?}: expected an IP address"))
            })
        })
        .transpose()?;
    let query = Query {
        limit,
        before: params
            .get("before")
            .map(|_| params.number("before", 0, u64::MAX))
            .transpose()?,
        open,
        peer,
        fault: flag(&params, "fault")?,
        refused: flag(&params, "refused")?,
    };
    let found = state.sessions().list(&query);
    let next_before = (found.len() == limit)
        .then(|| found.last().map(|r| r.id))
        .flatten();
    Ok(Json(Page {
        count: found.len(),
        sessions: found.iter().map(Summary::from).collect(),
        next_before,
    }))
}

fn find(state: &State, id: &str) -> Result<Record, ApiError> {
    if !state.sessions().enabled() {
        return Err(ApiError::not_found(
            "transcripts are off (--transcripts off)",
        ));
    }
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("bad session id {id:?}")))?;
    state
        .sessions()
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no session {id} (never, or no longer kept)")))
}

/// `GET /sessions/{id}`.
pub(super) async fn one(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Json<Detail>, ApiError> {
    let record = find(&state, &id)?;
    let lines = record
        .lines()
        .map(|line| match line {
            Ok(line) => LineJson {
                t: line.t.as_secs_f64(),
                dir: line.dir,
                line: line.text.to_string(),
            },
            Err(omitted) => LineJson {
                t: 0.0,
                dir: Dir::Note,
                line: format!("... {omitted} lines ..."),
            },
        })
        .collect();
    Ok(Json(Detail {
        summary: Summary::from(&record),
        lines,
    }))
}

/// `GET /sessions/{id}/transcript`.
pub(super) async fn transcript(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = find(&state, &id)?;
    Ok(text(StatusCode::OK, record.text()))
}
