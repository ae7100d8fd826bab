//! `/api/v1/messages...` and `/api/v1/wait`: the mailbox as JSON, by message (not by
//! recipient record), oldest first unless `order=newest`; the MIME parts the web page
//! shows are in `parts.rs`.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{OriginalUri, Path, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::parts::{self, Parts};
use super::{ApiError, Params};
use crate::State;
use crate::store::{ListQuery, StoredMessage};

/// Default page size of `GET /messages`.
const DEFAULT_LIMIT: u64 = 100;
/// Largest page `GET /messages` returns in one response.
const MAX_LIMIT: u64 = 10_000;
/// Largest `count` `GET /wait` accepts (it returns that many messages).
const MAX_WAIT_COUNT: u64 = 10_000;
/// `GET /wait` without `timeout=`.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// Longest `GET /wait`: a long-poll left open for ever would pin a connection.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// One message in a list.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    id: u64,
    from: String,
    recipients: Vec<String>,
    subject: Option<String>,
    message_id: Option<String>,
    size: usize,
    /// RFC 3339.
    received: String,
    tls: bool,
    auth_user: Option<String>,
    connection: u64,
    /// The session it arrived in (`/api/v1/sessions/{id}`): the same number as `connection`.
    session: u64,
    /// MAIL / RCPT lines as received when only the lenient path syntax accepted them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lenient_lines: Vec<String>,
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

impl From<&StoredMessage> for Summary {
    fn from(m: &StoredMessage) -> Self {
        Summary {
            id: m.id,
            from: m.from.clone(),
            recipients: m.recipients.clone(),
            subject: m.subject.clone(),
            message_id: m.message_id.clone(),
            size: m.data.len(),
            received: rfc3339(m.received),
            tls: m.tls,
            auth_user: m.auth_user.clone(),
            connection: m.connection,
            session: m.connection,
            lenient_lines: m.lenient_lines.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Page {
    /// Messages in this page.
    count: usize,
    /// Messages matching the filters in all (every page together).
    total: usize,
    offset: u64,
    limit: u64,
    messages: Vec<Summary>,
}

/// `GET /messages?to=&from=&subject=&q=&order=oldest|newest&limit=&offset=`.
pub(super) async fn list(
    AxumState(state): AxumState<State>,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<impl Serialize>, ApiError> {
    let params = Params::parse(&uri)?;
    let limit = params.number("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = params.number("offset", 0, usize::MAX as u64)?;
    let newest_first = match params.get("order") {
        None | Some("oldest") => false,
        Some("newest") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "bad order {other:?}: expected oldest or newest"
            )));
        }
    };
    let query = ListQuery {
        filter: params.filter(),
        q: params.get("q").map(str::to_owned),
        newest_first,
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    };
    let (found, total) = if query.q.is_some() || query.filter.subject.is_some() {
        // A search reads every message (tens of ms with 100,000): on the blocking pool, so
        // the SMTP sessions sharing this runtime's workers do not wait for it.
        let store = state.store().clone();
        tokio::task::spawn_blocking(move || store.list(&query))
            .await
            .map_err(|e| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("search failed: {e}"),
            })?
    } else {
        state.store().list(&query)
    };
    let messages: Vec<Summary> = found.iter().map(|m| Summary::from(&**m)).collect();
    Ok(Json(Page {
        count: messages.len(),
        total,
        offset,
        limit,
        messages,
    }))
}

fn parse_id(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!("bad message id {text:?}: expected a whole number"))
    })
}

fn lookup(state: &State, id: &str) -> Result<std::sync::Arc<StoredMessage>, ApiError> {
    let id = parse_id(id)?;
    state
        .store()
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("no message {id}")))
}

#[derive(Debug, Serialize)]
struct HeaderField {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct Detail {
    #[serde(flatten)]
    summary: Summary,
    /// Every header in order, values as written (unfolded, not decoded).
    headers: Vec<HeaderField>,
    /// The first text part, decoded (transfer encoding and charset).
    text: Option<String>,
    /// The first HTML part, decoded, if any.
    html: Option<String>,
    /// The text part, whether there is an HTML one, and the attachments (for the web page).
    parts: Parts,
}

/// `GET /messages/{id}`: the summary plus a full MIME parse.
pub(super) async fn one(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Json<impl Serialize>, ApiError> {
    let message = lookup(&state, &id)?;
    let parsed = mail_parser::MessageParser::default().parse(&message.data[..]);
    let (headers, text, html) = match &parsed {
        Some(p) => (
            p.headers_raw()
                .map(|(name, value)| HeaderField {
                    name: name.to_owned(),
                    value: unfold(value),
                })
                .collect(),
            p.body_text(0).map(|t| t.into_owned()),
            // Only a real text/html part: mail-parser would render a text part as HTML.
            p.html_part(0)
                .filter(|part| part.is_text_html())
                .and_then(|_| p.body_html(0))
                .map(|t| t.into_owned()),
        ),
        None => (Vec::new(), None, None),
    };
    Ok(Json(Detail {
        summary: Summary::from(&*message),
        headers,
        text,
        html,
        parts: Parts::of(parsed.as_ref()),
    }))
}

/// A raw header value on one line, without the leading space.
fn unfold(raw: &str) -> String {
    raw.split(['\r', '\n'])
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join("")
        .trim()
        .to_owned()
}

/// `GET /messages/{id}/raw`: the message bytes as received.
pub(super) async fn raw(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let message = lookup(&state, &id)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "message/rfc822")],
        message.data.clone(),
    )
        .into_response())
}

/// `GET /messages/{id}/html`: the HTML part, sandboxed (see `parts.rs`).
pub(super) async fn html(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let message = lookup(&state, &id)?;
    parts::html(
        mail_parser::MessageParser::default()
            .parse(&message.data[..])
            .as_ref(),
    )
}

/// `GET /messages/{id}/attachments/{index}`: one attachment's decoded bytes, as a download.
pub(super) async fn attachment(
    AxumState(state): AxumState<State>,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let message = lookup(&state, &id)?;
    parts::attachment(
        mail_parser::MessageParser::default()
            .parse(&message.data[..])
            .as_ref(),
        &index,
    )
}

/// `GET /messages/{id}/eml`: the message as received, as a `.eml` download.
pub(super) async fn eml(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let message = lookup(&state, &id)?;
    let name = format!("message-{}.eml", message.id);
    Ok(parts::download(
        "message/rfc822",
        &name,
        &name,
        message.data.clone(),
    ))
}

/// `DELETE /messages/{id}`: 204, or 404 when it is not stored (never, or no longer).
pub(super) async fn delete_one(
    AxumState(state): AxumState<State>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if state.store().remove(id) {
        state.live().deleted(id, state.store().len());
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no message {id}")))
    }
}

/// `DELETE /messages`: empties the mailbox.
pub(super) async fn delete_all(AxumState(state): AxumState<State>) -> Json<serde_json::Value> {
    let deleted = state.store().len();
    state.store().clear();
    Json(serde_json::json!({ "deleted": deleted }))
}

/// `GET /wait?to=&from=&subject=&count=N&timeout=DURATION`.
pub(super) async fn wait(
    AxumState(state): AxumState<State>,
    OriginalUri(uri): OriginalUri,
    long_poll: Option<axum::Extension<super::serve::LongPoll>>,
) -> Result<Response, ApiError> {
    let params = Params::parse(&uri)?;
    let count = params.number("count", 1, MAX_WAIT_COUNT)?;
    if count == 0 {
        return Err(ApiError::bad_request("count must be at least 1"));
    }
    let timeout = match params.get("timeout") {
        None => DEFAULT_WAIT,
        Some(text) => parse_timeout(text)?,
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // A silent connection is expected while we wait: the idle timeout must not close it.
    let _waiting = long_poll.map(|axum::Extension(poll)| poll.waiting());
    match state.store().wait(&params.filter(), count, timeout).await {
        Ok(found) => {
            let messages: Vec<Summary> = found.iter().map(|m| Summary::from(&**m)).collect();
            Ok(
                Json(serde_json::json!({ "count": messages.len(), "messages": messages }))
                    .into_response(),
            )
        }
        Err(so_far) => Ok((
            StatusCode::REQUEST_TIMEOUT,
            Json(serde_json::json!({
                "error": format!(
                    "timed out after {}: {so_far} of {count} messages matched",
                    humantime::format_duration(timeout)
                ),
                "count": so_far,
                "expected": count,
            })),
        )
            .into_response()),
    }
}

/// A humantime duration (`2s`, `500ms`), or a bare number of seconds; at most [`MAX_WAIT`].
fn parse_timeout(text: &str) -> Result<Duration, ApiError> {
    let timeout = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            ApiError::bad_request(format!(
                "bad timeout {text:?}: {e} (expected a duration such as 5s or 500ms)"
            ))
        })?,
    };
    if timeout > MAX_WAIT {
        return Err(ApiError::bad_request(format!(
            "timeout {text:?} too long (at most {})",
            humantime::format_duration(MAX_WAIT)
        )));
    }
    Ok(timeout)
}
