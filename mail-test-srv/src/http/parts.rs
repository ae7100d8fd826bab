//! A stored message's MIME parts for the web page: the part list of
//! `GET /api/v1/messages/{id}`, the HTML part (`.../html`) with its `cid:` images inlined,
//! one attachment's bytes (`.../attachments/{index}`) and the whole message as a file
//! (`.../eml`).
//!
//! Everything here comes from whoever sent the mail, so it is served to be looked at, never
//! run: the HTML under a CSP that allows no script and no remote load (`sandbox` makes it
//! an opaque origin even when opened directly), attachments always as
//! `application/octet-stream` downloads with a file name reduced to safe characters.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mail_parser::{Message, MessagePart, MimeHeaders};
use serde::Serialize;

use super::ApiError;

/// The HTML part's own policy: no script, nothing remote; inline styles, and images and
/// fonts only from `data:` (which the `cid:` rewrite produces).
pub(super) const HTML_CSP: &str =
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:";

/// Largest inline part turned into a `data:` URI; a bigger one stays a dead `cid:` link.
const MAX_INLINE_PART: usize = 2 * 1024 * 1024;
/// Most bytes of parts inlined into one HTML response, all `cid:` references together.
const MAX_INLINE_TOTAL: usize = 8 * 1024 * 1024;

/// `"parts"` of the message detail.
#[derive(Debug, Serialize)]
pub(super) struct Parts {
    /// The first text part, decoded; `null` without one.
    text: Option<String>,
    /// Whether a real `text/html` part exists (`.../html` serves it).
    html: bool,
    attachments: Vec<Attachment>,
}

/// One attachment (inline images included), by its index in `.../attachments/{index}`.
#[derive(Debug, Serialize)]
pub(super) struct Attachment {
    index: usize,
    filename: Option<String>,
    content_type: String,
    /// Decoded size in bytes.
    size: usize,
    /// Shown in the message body (an inline disposition, or a `Content-ID` without one).
    inline: bool,
    /// Without the angle brackets.
    content_id: Option<String>,
}

impl Parts {
    pub(super) fn of(message: Option<&Message<'_>>) -> Parts {
        let Some(message) = message else {
            return Parts {
                text: None,
                html: false,
                attachments: Vec::new(),
            };
        };
        Parts {
            text: first_text(message),
            html: html_part(message).is_some(),
            attachments: message
                .attachments()
                .enumerate()
                .map(|(index, part)| Attachment {
                    index,
                    filename: part.attachment_name().map(str::to_owned),
                    content_type: content_type(part),
                    size: part.len(),
                    inline: is_inline(part),
                    content_id: content_id(part).map(str::to_owned),
                })
                .collect(),
        }
    }
}

/// The first text body, decoded. Only a real text part: mail-parser would turn an HTML
/// body into text, which the page shows separately.
fn first_text(message: &Message<'_>) -> Option<String> {
    message
        .text_part(0)
        .filter(|part| part.is_text() && !part.is_text_html())
        .and_then(|_| message.body_text(0))
        .map(Cow::into_owned)
}

/// The first real `text/html` part (mail-parser would render a text part as HTML).
fn html_part<'a>(message: &'a Message<'_>) -> Option<&'a str> {
    let part = message.html_part(0).filter(|part| part.is_text_html())?;
    part.text_contents()
}

/// `type/subtype`, lower-cased; `application/octet-stream` when unknown.
fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None if part.is_text_html() => "text/html".to_owned(),
        None if part.is_text() => "text/plain".to_owned(),
        None => "application/octet-stream".to_owned(),
    }
}

fn content_id<'a>(part: &'a MessagePart<'_>) -> Option<&'a str> {
    let id = part.content_id()?.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    (!id.is_empty()).then_some(id)
}

fn is_inline(part: &MessagePart<'_>) -> bool {
    match part.content_disposition() {
        Some(cd) => cd.is_inline(),
        None => content_id(part).is_some(),
    }
}

/// `GET /messages/{id}/html`: the HTML part under [`HTML_CSP`], `cid:` images inlined.
pub(super) fn html(message: Option<&Message<'_>>) -> Result<Response, ApiError> {
    let html = message
        .and_then(|m| html_part(m).map(|h| (m, h)))
        .map(|(m, h)| inline_cids(h, m))
        .ok_or_else(|| ApiError::not_found("this message has no HTML part"))?;
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, HTML_CSP),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    // Some browsers honour the legacy header where they ignore `sandbox` in a CSP.
    response
        .headers_mut()
        .insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    Ok(response)
}

/// Replaces each `cid:ID` (RFC 2392) whose part is found with that part as a `data:` URI,
/// within [`MAX_INLINE_PART`] and [`MAX_INLINE_TOTAL`]; the rest stays as written.
fn inline_cids(html: &str, message: &Message<'_>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut budget = MAX_INLINE_TOTAL;
    let mut rest = html;
    while let Some(at) = find_ascii_nocase(rest, "cid:") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 4..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '<'))
            .unwrap_or(after.len());
        let id = percent_decode(&after[..end]);
        match data_uri(message, &id, &mut budget) {
            Some(uri) => out.push_str(&uri),
            None => out.push_str(&rest[at..at + 4 + end]),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The part with Content-ID `id` as `data:TYPE;base64,...`, if it fits the budget.
fn data_uri(message: &Message<'_>, id: &str, budget: &mut usize) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    let part = message
        .attachments()
        .find(|part| content_id(part).is_some_and(|cid| cid.eq_ignore_ascii_case(id)))?;
    let bytes = part.contents();
    if bytes.len() > MAX_INLINE_PART || bytes.len() > *budget {
        return None;
    }
    *budget -= bytes.len();
    // The type goes inside an HTML attribute: only characters that cannot end it.
    let kind: String = content_type(part)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '+' | '-'))
        .collect();
    Some(format!(
        "data:{kind};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

fn find_ascii_nocase(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `%XX` sequences decoded (RFC 2392 URLs are URL-encoded); anything else kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /messages/{id}/attachments/{index}`: the decoded bytes as a download.
pub(super) fn attachment(message: Option<&Message<'_>>, index: &str) -> Result<Response, ApiError> {
    let number: usize = index.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "bad attachment index {index:?}: expected a whole number"
        ))
    })?;
    let part = message
        .and_then(|m| m.attachments().nth(number))
        .ok_or_else(|| ApiError::not_found(format!("no attachment {number}")))?;
    let fallback = format!("attachment-{number}");
    let name = part.attachment_name().unwrap_or(&fallback);
    Ok(download(
        "application/octet-stream",
        name,
        &fallback,
        part.contents().to_vec(),
    ))
}

/// A body served as a file download named `name` (`fallback` when nothing of it is safe).
pub(super) fn download(
    content_type: &'static str,
    name: &str,
    fallback: &str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let disposition = content_disposition(name, fallback);
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.into(),
    )
        .into_response();
    // Built only from safe ASCII characters and percent escapes: always a valid value.
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266): the last
/// path segment of `name`, so `../x` or `C:\x` cannot name a place, with quotes, control
/// characters and anything else outside a small safe set replaced or escaped.
pub(super) fn content_disposition(name: &str, fallback: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base: String = base.chars().filter(|c| !c.is_control()).collect();
    let base = base.trim().trim_start_matches('.').trim();
    let base = if base.is_empty() { fallback } else { base };
    let ascii: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric()
                || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')' | '+' | ',')
            {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(base.len() * 3);
    for byte in base.bytes() {
        // RFC 8187 attr-char.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_file_names_become_safe() {
        assert_eq!(
            content_disposition("report.pdf", "x"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let d = content_disposition("../../etc/pa\"ss\r\nwd\".sh", "x");
        assert_eq!(
            d,
            "attachment; filename=\"pa_sswd_.sh\"; filename*=UTF-8''pa%22sswd%22.sh"
        );
        assert_eq!(
            content_disposition("..", "attachment-3"),
            "attachment; filename=\"attachment-3\"; filename*=UTF-8''attachment-3"
        );
        assert_eq!(
            content_disposition("C:\\Users\\x\\évé.txt", "x"),
            "attachment; filename=\"_v_.txt\"; filename*=UTF-8''%C3%A9v%C3%A9.txt"
        );
    }

    #[test]
    fn an_inlined_part_cannot_break_out_of_its_attribute() {
        let raw = "Content-Type: multipart/related; boundary=b\r\n\r\n--b\r\n\
            Content-Type: text/html\r\n\r\n<img src=\"cid:a%40x\"><img src=cid:big@x>\r\n--b\r\n\
            Content-Type: image/png\"><script>x()</script\r\nContent-ID: <a@x>\r\n\
            Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n";
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let html = inline_cids(html_part(&message).unwrap(), &message);
        assert!(html.starts_with("<img src=\"data:"), "{html}");
        assert!(html.contains(";base64,aGk=\">"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("<img src=cid:big@x>"),
            "unknown id kept: {html}"
        );
    }

    #[test]
    fn cid_urls_are_percent_decoded() {
        assert_eq!(percent_decode("a%40b%2"), "a@b%2");
        assert_eq!(find_ascii_nocase("x CID:y", "cid:"), Some(2));
    }
}
