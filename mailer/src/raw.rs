//! A message handed over as lettre's `Envelope` + bytes (what `AsyncTransport::send_raw`
//! receives, and what `send` formats a `Message` into): checked envelope, the Message-ID
//! found in the header block or added at its top, and the content ready for DATA.
//!
//! Why the Message-ID matters here: delivery is at-least-once (a resend after a lost reply
//! can store the message twice), and the Message-ID is how a recipient tells the copies
//! apart. lettre's builder adds one only when asked (`.message_id(None)`), so a message
//! without one gets ours, the same on every resend.

use lettre::address::Envelope;

use crate::error::Error;
use crate::message::{Content, Outgoing, for_data, new_message_id};

/// The envelope and content of a raw message, and its Message-ID (angle brackets
/// included), added at the top of the header block when the message had none: in the
/// envelope sender's domain (RFC 5322 3.6.4), else in `fallback_domain`.
pub(crate) fn outgoing(
    envelope: &Envelope,
    email: &[u8],
    fallback_domain: &str,
) -> Result<(Outgoing, String), Error> {
    if envelope.to().is_empty() {
        return Err(Error::NoRecipients);
    }
    // Without SMTPUTF8 (not used) a non-ASCII address cannot be delivered as written.
    for address in envelope.from().into_iter().chain(envelope.to()) {
        if !AsRef::<str>::as_ref(address).is_ascii() {
            return Err(Error::NonAsciiAddress {
                address: address.to_string(),
            });
        }
    }
    let to = envelope
        .to()
        .iter()
        .map(|address| (address.to_string(), address.clone()))
        .collect();
    let (message_id, bytes) = match find_message_id(email) {
        Some(found) => (found, None),
        None => {
            let domain = envelope
                .from()
                .map_or(fallback_domain, |sender| sender.domain());
            let added = new_message_id(domain);
            let mut with_id = Vec::with_capacity(email.len() + added.len() + 14);
            with_id.extend_from_slice(b"Message-ID: ");
            with_id.extend_from_slice(added.as_bytes());
            with_id.extend_from_slice(b"\r\n");
            with_id.extend_from_slice(email);
            (added, Some(with_id))
        }
    };
    let bytes = bytes.as_deref().unwrap_or(email);
    let content = match std::str::from_utf8(bytes) {
        Ok(text) => Content::Text(for_data(text)),
        Err(_) => Content::Bytes(bytes.to_vec()),
    };
    Ok((
        Outgoing {
            from: envelope.from().cloned(),
            to,
            content,
        },
        message_id,
    ))
}

/// The value of the `Message-ID` header (unfolded, trimmed), if the header block has a
/// non-empty one. The header block ends at the first empty line.
pub(crate) fn find_message_id(email: &[u8]) -> Option<String> {
    let mut lines = email.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii_end()
            .eq_ignore_ascii_case(b"message-id")
        {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        // Folded continuation lines start with a space or a tab (RFC 5322 2.2.3).
        while let Some(next) = lines.peek() {
            if !next.starts_with(b" ") && !next.starts_with(b"\t") {
                break;
            }
            let next = lines.next().unwrap_or_default();
            value.extend_from_slice(next.strip_suffix(b"\r").unwrap_or(next));
        }
        let value = String::from_utf8_lossy(value.trim_ascii()).into_owned();
        return (!value.is_empty()).then_some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope::new(
            Some("from@example.com".parse().unwrap()),
            vec!["to@example.org".parse().unwrap()],
        )
        .unwrap()
    }

    fn text(outgoing: &Outgoing) -> &str {
        match &outgoing.content {
            Content::Text(text) => text,
            Content::Bytes(_) => panic!("expected text"),
        }
    }

    #[test]
    fn an_existing_message_id_is_kept_and_the_bytes_untouched() {
        let email = b"From: a@example.com\r\nmessage-ID:  <x@y>\r\nSubject: s\r\n\r\nbody\r\n";
        let (out, id) = outgoing(&envelope(), email, "example.com").unwrap();
        assert_eq!(id, "<x@y>");
        assert_eq!(
            text(&out),
            format!("{}.\r\n", std::str::from_utf8(email).unwrap())
        );
    }

    #[test]
    fn a_folded_message_id_is_unfolded() {
        let email = b"Message-ID:\r\n <long@example.com>\r\nSubject: s\r\n\r\nb\r\n";
        assert_eq!(
            find_message_id(email).as_deref(),
            Some("<long@example.com>")
        );
    }

    #[test]
    fn a_missing_message_id_is_added_at_the_top() {
        let email = b"Subject: s\r\n\r\nMessage-ID: <in@body> is not a header\r\n";
        let (out, id) = outgoing(&envelope(), email, "example.com").unwrap();
        assert!(id.starts_with('<') && id.ends_with("@example.com>"), "{id}");
        let expected = format!(
            "Message-ID: {id}\r\n{}.\r\n",
            std::str::from_utf8(email).unwrap()
        );
        assert_eq!(text(&out), expected);
        // An empty header counts as missing.
        assert_eq!(find_message_id(b"Message-ID:   \r\n\r\n"), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_go_as_bytes() {
        let email = b"Message-ID: <a@b>\r\n\r\n\xff\xfe\r\n";
        let (out, _) = outgoing(&envelope(), email, "example.com").unwrap();
        assert!(matches!(&out.content, Content::Bytes(b) if b == email));
        assert!(out.content.is_eight_bit());
    }

    #[test]
    fn non_ascii_envelope_addresses_are_refused() {
        let envelope = Envelope::new(None, vec!["josé@example.com".parse().unwrap()]).unwrap();
        let err = outgoing(&envelope, b"\r\n", "example.com").unwrap_err();
        assert!(matches!(err, Error::NonAsciiAddress { .. }), "{err}");
    }
}
