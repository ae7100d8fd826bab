//! A cheap scan of a message's header section for `Subject` and `Message-ID`.
//!
//! Runs on the insert hot path, so it only walks the header lines (stopping at the first
//! empty line) and unfolds continuations; a full MIME parse (mail-parser) is reserved for
//! `GET /api/v1/messages/{id}`. Encoded words (`=?UTF-8?B?...?=`) in the subject are the one
//! case handed to mail-parser, on that header alone.

/// The two headers the list API shows, as found in the raw message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Decoded subject, if the message has one.
    pub subject: Option<String>,
    /// Message-ID without the angle brackets.
    pub message_id: Option<String>,
}

/// Scans the header section of `data` (CRLF or bare LF line ends).
pub fn scan(data: &[u8]) -> Summary {
    let mut summary = Summary::default();
    let mut current: Option<(Field, Vec<u8>)> = None;
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            // A folded continuation of the previous header (RFC 5322 2.2.3).
            if let Some((_, value)) = current.as_mut() {
                value.extend_from_slice(line);
            }
            continue;
        }
        if let Some((field, value)) = current.take() {
            field.store(&mut summary, &value);
        }
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let field = if name.eq_ignore_ascii_case(b"subject") {
            Field::Subject
        } else if name.eq_ignore_ascii_case(b"message-id") {
            Field::MessageId
        } else {
            continue;
        };
        current = Some((field, line[colon + 1..].to_vec()));
    }
    if let Some((field, value)) = current {
        field.store(&mut summary, &value);
    }
    summary
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Subject,
    MessageId,
}

impl Field {
    /// Keeps the first occurrence of each header, as mail readers do.
    fn store(self, summary: &mut Summary, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let text = text.trim();
        match self {
            Field::Subject if summary.subject.is_none() => {
                summary.subject = Some(decode_subject(text));
            }
            Field::MessageId if summary.message_id.is_none() => {
                let id = text.trim_start_matches('<').trim_end_matches('>').trim();
                summary.message_id = Some(id.to_owned());
            }
            _ => {}
        }
    }
}

/// Decodes RFC 2047 encoded words by letting mail-parser read a one-header message.
fn decode_subject(raw: &str) -> String {
    if !raw.contains("=?") {
        return raw.to_owned();
    }
    let header = format!("Subject: {raw}\r\n\r\n");
    mail_parser::MessageParser::default()
        .parse(header.as_bytes())
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_else(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_subject_and_message_id() {
        let s = scan(
            b"From: a@x\r\nSubject: Hello there\r\nMessage-ID: <abc@x>\r\n\r\nSubject: body\r\n",
        );
        assert_eq!(s.subject.as_deref(), Some("Hello there"));
        assert_eq!(s.message_id.as_deref(), Some("abc@x"));
    }

    #[test]
    fn unfolds_and_ignores_case_and_body() {
        let s = scan(b"subject: part one\r\n part two\r\nX: y\r\n\r\nMessage-ID: <no@x>\r\n");
        assert_eq!(s.subject.as_deref(), Some("part one part two"));
        assert_eq!(s.message_id, None);
    }

    #[test]
    fn decodes_encoded_words() {
        let s = scan(b"Subject: =?UTF-8?B?SMOpbGxv?=\n\nbody");
        assert_eq!(s.subject.as_deref(), Some("H\u{e9}llo"));
    }

    #[test]
    fn no_headers_no_panic() {
        assert_eq!(scan(b""), Summary::default());
        assert_eq!(scan(b"\r\n\r\n"), Summary::default());
        assert_eq!(scan(b"garbage without colon"), Summary::default());
        assert_eq!(
            scan(b"Subject:"),
            Summary {
                subject: Some(String::new()),
                message_id: None
            }
        );
    }
}
