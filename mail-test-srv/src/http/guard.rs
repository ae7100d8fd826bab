//! What every request passes before a handler sees it, so that a web page the user happens
//! to visit cannot read or change the server through their browser:
//!
//! - DNS rebinding: `Host` must name this server: the address the connection came in on
//!   (IP and port), `localhost` (with that port), or a name from `--http-allowed-host`.
//!   A rebound name (`attacker.example` resolving to 127.0.0.1) is refused with 403.
//!   A request without `Host` (HTTP/1.0 tools) passes: browsers always send one.
//! - CSRF: a state-changing method (POST, PUT, PATCH, DELETE) whose `Origin` names another
//!   host (or `null`), or with `Sec-Fetch-Site: cross-site`, is refused with 403. Under
//!   `/api/v1` such a request must also have no body or a JSON one (`415` otherwise): a
//!   form or a `text/plain` fetch, which a browser sends cross-site without asking, never
//!   reaches a handler. `curl -X POST .../clear` (no Origin, no body) works as before.
//! - `X-Content-Type-Options: nosniff` on every response, refusals included, so a browser
//!   never renders a stored message (`text/plain`, `message/rfc822`) as HTML.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, text};
use crate::State;

/// The address a connection was accepted on, put on each request by `http/serve.rs`.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// The middleware: refuse, or run the handler; then mark the response `nosniff`.
pub(super) async fn guard(
    AxumState(state): AxumState<State>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err((status, message)) => refusal(request.uri().path(), status, message),
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A refusal in the shape of the route: JSON under `/api/v1`, text elsewhere.
fn refusal(path: &str, status: StatusCode, message: String) -> Response {
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        ApiError { status, message }.into_response()
    } else {
        text(status, format!("{message}\n"))
    }
}

type Refused = (StatusCode, String);

fn check(state: &State, request: &Request) -> Result<(), Refused> {
    let config = &state.config().http;
    // Served by `http::serve`, the real address of the connection; served some other way
    // (`axum::serve(router)`), the configured one.
    let local = request
        .extensions()
        .get::<LocalAddr>()
        .map_or(state.config().http_addr, |l| l.0);
    let allowed = Allowed {
        local,
        names: &config.allowed_hosts,
    };
    let headers = request.headers();
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or("(not ASCII)");
        if !allowed.authority(host) {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not allowed (DNS rebinding protection): use {local} or \
                     localhost:{port}, or start the server with --http-allowed-host NAME",
                    port = local.port()
                ),
            ));
        }
    }
    if !changes_state(request.method()) {
        return Ok(());
    }
    cross_site(&allowed, headers).map_or(Ok(()), |why| {
        Err((
            StatusCode::FORBIDDEN,
            format!(
                "cross-site {} refused (CSRF protection): {why}",
                request.method()
            ),
        ))
    })?;
    let path = request.uri().path();
    if path.starts_with("/api/v1/") && !json_or_no_body(headers) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a request body here must be JSON: send it with Content-Type: application/json \
             (curl -H 'content-type: application/json' -d ...)"
                .to_owned(),
        ));
    }
    Ok(())
}

fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Why this request comes from another site, if it does.
fn cross_site(allowed: &Allowed<'_>, headers: &HeaderMap) -> Option<String> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Some("Sec-Fetch-Site: cross-site".to_owned());
    }
    let origin = headers.get(header::ORIGIN)?;
    let text = origin.to_str().unwrap_or("(not ASCII)");
    let authority = text
        .strip_prefix("http://")
        .map(|a| (a, 80))
        .or_else(|| text.strip_prefix("https://").map(|a| (a, 443)));
    match authority {
        Some((authority, default_port)) if allowed.origin(authority, default_port) => None,
        _ => Some(format!(
            "Origin {text:?} is not this server (add it with --http-allowed-host)"
        )),
    }
}

/// No body at all, or one labelled JSON.
fn json_or_no_body(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
        None => {
            let empty_length = headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|v| v.as_bytes() == b"0");
            empty_length && !headers.contains_key(header::TRANSFER_ENCODING)
        }
    }
}

/// The names this server answers to.
struct Allowed<'a> {
    local: SocketAddr,
    names: &'a [String],
}

impl Allowed<'_> {
    /// A `Host` value: `name`, `name:port`, `[v6]:port`.
    fn authority(&self, authority: &str) -> bool {
        match split_authority(authority) {
            Some((name, port)) => self.name(&name, port),
            None => false,
        }
    }

    /// The `host[:port]` part of an `Origin`, whose port defaults to the scheme's.
    fn origin(&self, authority: &str, default_port: u16) -> bool {
        match split_authority(authority) {
            Some((name, port)) => self.name(&name, Some(port.unwrap_or(default_port))),
            None => false,
        }
    }

    fn name(&self, name: &str, port: Option<u16>) -> bool {
        // Port 0 when served through `axum::serve` with a configured `:0`: the real port
        // is unknown, so any port goes (the name still has to match).
        let our_port =
            |p: Option<u16>| p.is_none_or(|p| p == self.local.port() || self.local.port() == 0);
        let ours = match name.parse::<IpAddr>() {
            Ok(ip) => ip == self.local.ip() || self.local.ip().is_unspecified(),
            Err(_) => name == "localhost",
        };
        if ours && our_port(port) {
            return true;
        }
        self.names
            .iter()
            .any(|allowed| match split_authority(allowed) {
                Some((allowed_name, allowed_port)) => {
                    allowed_name == name && allowed_port.is_none_or(|p| Some(p) == port)
                }
                None => false,
            })
    }
}

/// `name[:port]` lower-cased, without a trailing dot; IPv6 without its brackets.
/// `None` when the port is not a number or the brackets do not close.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    Some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(local: &str, names: &[&str], host: &str) -> bool {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        Allowed {
            local: local.parse().unwrap(),
            names: &names,
        }
        .authority(host)
    }

    #[test]
    fn host_names_the_listening_address_or_localhost() {
        let local = "127.0.0.1:9381";
        for host in [
            "127.0.0.1:9381",
            "127.0.0.1",
            "localhost:9381",
            "LOCALHOST",
            "localhost.",
        ] {
            assert!(allowed(local, &[], host), "{host}");
        }
        for host in [
            "attacker.example",
            "attacker.example:9381",
            "127.0.0.1:80",
            "localhost:80",
            "127.0.0.2:9381",
            "localhost.attacker.example",
            "127.0.0.1.attacker.example:9381",
            ":9381",
            "localhost:x",
            "",
        ] {
            assert!(!allowed(local, &[], host), "{host}");
        }
        assert!(allowed("[::1]:9381", &[], "[::1]:9381"));
        assert!(!allowed("[::1]:9381", &[], "[::2]:9381"));
        assert!(!allowed("[::1]:9381", &[], "[::1"));
    }

    #[test]
    fn allowed_hosts_with_or_without_a_port() {
        let local = "127.0.0.1:9381";
        assert!(allowed(local, &["mail.test"], "mail.test:8080"));
        assert!(allowed(local, &["mail.test"], "Mail.Test"));
        assert!(allowed(local, &["mail.test:8080"], "mail.test:8080"));
        assert!(!allowed(local, &["mail.test:8080"], "mail.test:9381"));
        assert!(!allowed(local, &["mail.test"], "evil.test"));
    }

    #[test]
    fn json_or_nothing() {
        let mut h = HeaderMap::new();
        assert!(json_or_no_body(&h));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert!(!json_or_no_body(&h), "a body without a type");
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(json_or_no_body(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!json_or_no_body(&h));
    }
}
