//! The HTTP report API: the original text routes, the JSON API, metrics, health.
//!
//! - `legacy.rs`: `/count`, `/clear`, `/mail/N`, byte-compatible with the original Go server.
//! - `messages.rs`: `/api/v1/messages...` and `/api/v1/wait`.
//! - `control.rs`: `/api/v1/faults`, `/api/v1/events`, `/api/v1/reset`.
//! - `metrics.rs`: `/api/v1/stats`, `/metrics` (Prometheus text), `/healthz`.
//! - `settings.rs`: `/api/v1/settings`, what may change at runtime (`strict`).
//! - `outage.rs`: `/api/v1/outage`, the SMTP side gone away for a while.
//! - `sessions.rs`: `/api/v1/sessions...`, every session's summary and transcript.
//! - `assets.rs`: the web page (`/`) and its files (`/ui/...`), embedded, with their CSP.
//! - `parts.rs`: a message's MIME parts, its sandboxed HTML, attachments and `.eml` download.
//! - `live.rs`: the per-instance task behind the event stream and `/api/v1/stats/series`.
//! - `stream.rs`: `/api/v1/stream`, server-sent events for the web page.
//! - `guard.rs`: checks before any handler (DNS rebinding, CSRF) and `nosniff` on every response.
//! - `serve.rs`: the listener with its limits (connections, header and idle timeouts).
//!
//! Under `/api/v1` every error is JSON `{"error": "..."}` with a 4xx status, unknown routes
//! included; elsewhere unknown routes get the Go server's `404 page not found`.
//! `/metrics` and `/healthz` answer both at the root and under `/api/v1`.
//!
//! The web page's routes (README "HTTP API" has the JSON shapes):
//! - `GET /`, `GET /ui/{app.js,app.css,favicon.svg}`: the page; `304` on `If-None-Match`.
//! - `GET /api/v1/messages?q=&order=newest|oldest&limit=&offset=`: `total` is the count of
//!   all matches; `order` defaults to `oldest` so existing clients see no change.
//! - `GET /api/v1/messages/{id}` adds `"parts": {"text", "html": bool, "attachments": [...]}`;
//!   `.../html`, `.../attachments/{index}`, `.../eml`, `DELETE .../{id}` (204).
//! - `GET /api/v1/stream` (server-sent events), `GET /api/v1/stats/series?seconds=N`.
//!
//! A page's `fetch(url, {method: "DELETE"})` passes the guard: same-origin `Origin` and
//! `Sec-Fetch-Site: same-origin`, and no body (so no content type is needed).

mod assets;
mod control;
mod guard;
mod legacy;
mod live;
mod messages;
mod metrics;
mod outage;
mod parts;
mod serve;
mod sessions;
mod settings;
mod stream;

pub(crate) use live::{Live, live};
pub use serve::serve;

use axum::Router;
use axum::extract::Query;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::State;

/// All routes of one instance, bound to its state, behind the checks of `guard.rs`.
/// [`serve`] serves it with the connection limits; served another way, the `Host` check
/// falls back to the configured address.
pub fn router(state: State) -> axum::Router {
    let api = Router::new()
        .route(
            "/messages",
            get(messages::list).delete(messages::delete_all),
        )
        .route(
            "/messages/{id}",
            get(messages::one).delete(messages::delete_one),
        )
        .route("/messages/{id}/raw", get(messages::raw))
        .route("/messages/{id}/html", get(messages::html))
        .route("/messages/{id}/eml", get(messages::eml))
        .route(
            "/messages/{id}/attachments/{index}",
            get(messages::attachment),
        )
        .route("/stream", get(stream::stream))
        .route("/wait", get(messages::wait))
        .route(
            "/faults",
            get(control::get_faults)
                .put(control::put_faults)
                .delete(control::delete_faults),
        )
        .route(
            "/faults/{name}",
            get(control::get_rule)
                .put(control::put_rule)
                .patch(control::patch_rule)
                .delete(control::delete_rule),
        )
        .route("/events", get(control::events))
        .route("/reset", axum::routing::post(control::reset))
        .route("/stats", get(metrics::stats))
        .route("/stats/series", get(metrics::series))
        .route(
            "/outage",
            get(outage::get).post(outage::post).delete(outage::delete),
        )
        .route("/settings", get(settings::get).patch(settings::patch))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::one))
        .route("/sessions/{id}/transcript", get(sessions::transcript))
        .route("/metrics", get(metrics::prometheus))
        .route("/healthz", get(metrics::healthz))
        .fallback(api_not_found)
        .method_not_allowed_fallback(api_method_not_allowed);
    Router::new()
        // The Go server registered these on a plain ServeMux, which accepts every method.
        .route("/count", any(legacy::count))
        .route("/clear", any(legacy::clear))
        .route("/mail/", any(legacy::mail))
        .route("/mail/{*number}", any(legacy::mail))
        .route("/metrics", get(metrics::prometheus))
        .route("/healthz", get(metrics::healthz))
        .route("/", get(assets::index))
        .route("/ui/{file}", get(assets::ui))
        .nest("/api/v1", api)
        .fallback(root_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            live::note_changes,
        ))
        // Last, so that it wraps every route and both fallbacks.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// An error of the JSON API: a 4xx status and `{"error": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
    fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// The query string as ordered pairs. Like Go's `url.Values.Get`, the first value of a
/// key wins, and an empty value counts as absent.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    fn parse(uri: &Uri) -> Result<Params, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A whole-number parameter in `0..=max`, or `default` when absent.
    fn number(&self, key: &str, default: u64, max: u64) -> Result<u64, ApiError> {
        let Some(text) = self.get(key) else {
            return Ok(default);
        };
        let value: u64 = text.parse().map_err(|_| {
            ApiError::bad_request(format!("bad {key} {text:?}: expected a whole number"))
        })?;
        if value > max {
            return Err(ApiError::bad_request(format!(
                "{key} {value} too large (at most {max})"
            )));
        }
        Ok(value)
    }

    /// The address filters (and `subject`, for the JSON API).
    fn filter(&self) -> crate::store::Filter {
        crate::store::Filter {
            to: self.get("to").map(str::to_owned),
            from: self.get("from").map(str::to_owned),
            subject: self.get("subject").map(str::to_owned),
        }
    }
}

/// `text/plain` as Go's `net/http` labels a text body.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

fn text(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT_PLAIN)], body.into()).into_response()
}

async fn root_not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n")
}

async fn api_not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

async fn api_method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("method {method} not allowed on {}", uri.path()),
    }
}
