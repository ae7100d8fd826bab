//! The original server's text routes, byte for byte (letsencrypt/boulder
//! `test/mail-test-srv/http.go`), so existing test suites keep working unchanged.
//!
//! Records are one per recipient. Bodies and status codes follow the Go handlers: empty
//! bodies on 400/404/405, `N\n` for a count, `FROM ..\nTO ..\n\n<message>.\r\n\n` for a mail (the
//! Go server's record kept the terminating dot line).
//! The store holds the message without that SMTP framing; only this route adds it back.

use axum::extract::State as AxumState;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;

use super::{Params, text};
use crate::State;

/// `/count[?to=][&from=]`: how many records match.
pub(super) async fn count(AxumState(state): AxumState<State>, uri: Uri) -> Response {
    let Ok(params) = Params::parse(&uri) else {
        return text(StatusCode::BAD_REQUEST, "");
    };
    let n = state.store().count_records(&address_filter(&params));
    text(StatusCode::OK, format!("{n}\n"))
}

/// `/clear`: POST empties the mailbox; any other method is 405.
pub(super) async fn clear(AxumState(state): AxumState<State>, method: Method) -> Response {
    if method == Method::POST {
        state.store().clear();
        text(StatusCode::OK, "")
    } else {
        text(StatusCode::METHOD_NOT_ALLOWED, "")
    }
}

/// `/mail/N[?to=][&from=]`: the N-th matching record (0-based).
pub(super) async fn mail(AxumState(state): AxumState<State>, uri: Uri) -> Response {
    let Ok(params) = Params::parse(&uri) else {
        return text(StatusCode::BAD_REQUEST, "");
    };
    // Go: strconv.Atoi(strings.Trim(path-after-"/mail/", "/")), so "3/" is 3, "-1" is
    // simply not found, and anything else (empty, "x", "1/2", overflow) is 400.
    let rest = uri.path().strip_prefix("/mail/").unwrap_or_default();
    let Ok(number) = rest.trim_matches('/').parse::<i64>() else {
        return text(StatusCode::BAD_REQUEST, "");
    };
    let Ok(index) = usize::try_from(number) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    match state.store().nth_record(&address_filter(&params), index) {
        Some((message, to)) => {
            let mut body =
                Vec::with_capacity(message.data.len() + message.from.len() + to.len() + 16);
            body.extend_from_slice(format!("FROM {}\nTO {to}\n\n", message.from).as_bytes());
            body.extend_from_slice(&message.data);
            // The Go server kept every DATA line up to and including the terminating dot
            // line, so its record ended in `.\r\n`; keep those bytes for byte-compatibility.
            body.extend_from_slice(b".\r\n\n");
            text(StatusCode::OK, body)
        }
        None => text(StatusCode::NOT_FOUND, ""),
    }
}

/// The original routes filter on addresses only.
fn address_filter(params: &Params) -> crate::store::Filter {
    crate::store::Filter {
        subject: None,
        ..params.filter()
    }
}
