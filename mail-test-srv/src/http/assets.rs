//! The web page (`GET /`) and its assets (`GET /ui/...`), compiled into the binary from
//! `mail-test-srv/web/`: nothing is read from disk at run time and nothing is fetched from
//! elsewhere.
//!
//! Every asset response carries the page's Content-Security-Policy (scripts, styles and
//! requests only from this server; frames only from here, for the sandboxed HTML part),
//! `Cache-Control: no-cache` and an ETag: a browser revalidates each load and gets `304`
//! while the binary is the same. The ETag is a hash of the bytes computed at compile time
//! (`const`), so there is no run-time state at all.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The page's policy: see the module doc.
pub(super) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    etag: &'static str,
}

/// Builds an [`Asset`] whose ETag is computed by the compiler.
macro_rules! asset {
    ($content_type:expr, $path:literal) => {{
        const BODY: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path));
        const TAG: [u8; 18] = etag_of(BODY);
        Asset {
            content_type: $content_type,
            body: BODY,
            etag: match std::str::from_utf8(&TAG) {
                Ok(tag) => tag,
                Err(_) => "\"0\"",
            },
        }
    }};
}

const INDEX: Asset = asset!("text/html; charset=utf-8", "index.html");
const APP_JS: Asset = asset!("text/javascript; charset=utf-8", "app.js");
const APP_CSS: Asset = asset!("text/css; charset=utf-8", "app.css");
const FAVICON: Asset = asset!("image/svg+xml", "favicon.svg");

/// `"` + 16 hex digits of the FNV-1a hash of `bytes` + `"`: a strong ETag.
const fn etag_of(bytes: &[u8]) -> [u8; 18] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut tag = [b'"'; 18];
    let mut d = 0;
    while d < 16 {
        tag[1 + d] = digits[((hash >> (60 - 4 * d)) & 0xf) as usize];
        d += 1;
    }
    tag
}

/// `GET /`.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// `GET /ui/{file}`; an unknown file gets the Go server's `404 page not found`.
pub(super) async fn ui(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let asset = match file.as_str() {
        "app.js" => &APP_JS,
        "app.css" => &APP_CSS,
        "favicon.svg" => &FAVICON,
        _ => return super::root_not_found().await,
    };
    serve(asset, &headers)
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == asset.etag || t == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, asset.content_type)],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_by_content_and_are_quoted() {
        let a = etag_of(b"a");
        let b = etag_of(b"b");
        assert_ne!(a, b);
        assert_eq!(a[0], b'"');
        assert_eq!(a[17], b'"');
        assert!(INDEX.etag.len() == 18 && INDEX.etag != APP_JS.etag);
    }
}
