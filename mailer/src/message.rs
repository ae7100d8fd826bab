//! Building one RFC 5322 message: checked addresses, headers free of CR/LF, the `Date:` from
//! our [`Clock`](crate::Clock) (lettre's builder would stamp the real time), a random
//! Message-ID kept across resends, and a quoted-printable UTF-8 text body.

use std::str::FromStr;
use std::time::SystemTime;

use lettre::Address;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message, SinglePart};
use rand::RngExt;

use crate::Error;

/// A message ready to send: envelope and bytes.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The envelope sender; `None` is the null sender `<>` (bounces).
    pub(crate) from: Option<Address>,
    /// The recipients as the caller wrote them (for error messages) and parsed.
    pub(crate) to: Vec<(String, Address)>,
    pub(crate) content: Content,
}

/// The message content as it goes after DATA.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// Text (7-bit, or UTF-8 under 8BITMIME), dot-stuffed and ending with the final `.`
    /// line: one write (see [`for_data`]).
    Text(String),
    /// Bytes that are not UTF-8 (a binary part under 8BITMIME): lettre's `message()`
    /// stuffs them and writes the final dot separately.
    Bytes(Vec<u8>),
}

impl Content {
    /// The content has bytes above 127: MAIL FROM needs `BODY=8BITMIME`.
    pub(crate) fn is_eight_bit(&self) -> bool {
        match self {
            Content::Text(text) => !text.is_ascii(),
            Content::Bytes(bytes) => !bytes.is_ascii(),
        }
    }
}

/// Parses the sender: `"Name <addr@example.com>"` or `"addr@example.com"`, ASCII address.
pub fn parse_from(from: &str) -> Result<Mailbox, Error> {
    if from.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::HeaderInjection { header: "From" });
    }
    let mailbox = Mailbox::from_str(from.trim()).map_err(|e| Error::InvalidAddress {
        address: from.to_owned(),
        reason: e.to_string(),
    })?;
    if !AsRef::<str>::as_ref(&mailbox.email).is_ascii() {
        return Err(Error::NonAsciiAddress {
            address: mailbox.email.to_string(),
        });
    }
    Ok(mailbox)
}

/// Parses one recipient: a bare ASCII address (`addr@example.com`), no display name.
pub fn parse_recipient(to: &str) -> Result<Address, Error> {
    if !to.is_ascii() {
        return Err(Error::NonAsciiAddress {
            address: to.to_owned(),
        });
    }
    // Checked before lettre's parser so the reason is plain; also keeps CR/LF out of
    // RCPT TO and the To header.
    if to
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || b == b'<' || b == b'>')
    {
        return Err(Error::InvalidAddress {
            address: to.to_owned(),
            reason: "an address may not contain spaces, control characters or angle brackets"
                .to_owned(),
        });
    }
    Address::from_str(to).map_err(|e| Error::InvalidAddress {
        address: to.to_owned(),
        reason: e.to_string(),
    })
}

/// A fresh `<random@domain>` Message-ID (128 random bits, hex).
pub fn new_message_id(domain: &str) -> String {
    let random: u128 = rand::rng().random();
    format!("<{random:032x}@{domain}>")
}

/// Checks a header value supplied by the caller: CR/LF would start a new header, and other
/// control characters (NUL, ESC...) have no place in one either; a tab is folding space.
fn check_header(header: &'static str, value: &str) -> Result<(), Error> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::HeaderInjection { header });
    }
    Ok(())
}

/// The library's plain-text message as a lettre [`Message`], for any lettre transport (the
/// programs send it through a [`ReconnectingTransport`](crate::ReconnectingTransport)):
/// `From` the sender, `To` every recipient, the subject, `Date` from `date` (lettre's
/// builder would stamp the real clock, wrong under `FAKECLOCK`), a fresh Message-ID in the
/// sender's domain, and the body as quoted-printable UTF-8 with CRLF line ends.
///
/// The inputs are checked as [`Connection::send_mail`](crate::Connection::send_mail)
/// checks them: [`Error::NoRecipients`], [`Error::InvalidAddress`],
/// [`Error::NonAsciiAddress`], [`Error::HeaderInjection`] for CR, LF or another control
/// character in the subject.
pub fn text_message(
    from: &Mailbox,
    to: &[String],
    subject: &str,
    body: &str,
    date: SystemTime,
) -> Result<Message, Error> {
    let message_id = new_message_id(from.email.domain());
    Ok(checked_message(from, to, subject, body, date, message_id)?.0)
}

/// Builds the message. Every caller input is checked first, so nothing malformed reaches
/// lettre's builder (whose `body` panics on an impossible encoding, which QP never is).
fn checked_message(
    from: &Mailbox,
    to: &[String],
    subject: &str,
    body: &str,
    date: SystemTime,
    message_id: String,
) -> Result<(Message, Vec<(String, Address)>), Error> {
    if to.is_empty() {
        return Err(Error::NoRecipients);
    }
    check_header("Subject", subject)?;
    let to: Vec<(String, Address)> = to
        .iter()
        .map(|raw| parse_recipient(raw).map(|addr| (raw.clone(), addr)))
        .collect::<Result<_, _>>()?;

    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .date(date)
        .message_id(Some(message_id));
    for (_, addr) in &to {
        builder = builder.to(Mailbox::new(None, addr.clone()));
    }
    let content_type = ContentType::parse("text/plain; charset=UTF-8")
        .map_err(|e| Error::Message(e.to_string()))?;
    // lettre turns bare LFs into CRLF itself, but by inserting one CR at a time into the
    // string: quadratic, seconds for a few MB. Handed CRLF text, it only scans it.
    let body = Body::new_with_encoding(
        crlf_line_endings(body),
        ContentTransferEncoding::QuotedPrintable,
    )
    .map_err(|_| Error::Message("the body cannot be quoted-printable encoded".to_owned()))?;
    let part = SinglePart::builder().header(content_type).body(body);
    let message = builder
        .singlepart(part)
        .map_err(|e| Error::Message(e.to_string()))?;
    Ok((message, to))
}

/// The message of [`text_message`] with this Message-ID, ready for DATA.
pub(crate) fn build(
    from: &Mailbox,
    to: &[String],
    subject: &str,
    body: &str,
    date: SystemTime,
    message_id: String,
) -> Result<Outgoing, Error> {
    let (message, to) = checked_message(from, to, subject, body, date, message_id)?;
    let formatted = message.formatted();
    // Every copy of a big body counts: drop each as soon as the next one exists.
    drop(message);
    let formatted = String::from_utf8(formatted)
        .map_err(|_| Error::Message("the formatted message is not 7-bit".to_owned()))?;
    Ok(Outgoing {
        from: Some(from.email.clone()),
        to,
        content: Content::Text(for_data(&formatted)),
    })
}

/// The text with every line ending as CRLF: a bare LF gets its CR, in one pass (linear
/// time). A CR that is not followed by LF is left alone, as lettre leaves it.
pub(crate) fn crlf_line_endings(text: &str) -> String {
    let lines = text.bytes().filter(|&b| b == b'\n').count();
    let mut out = String::with_capacity(text.len() + lines);
    for piece in text.split_inclusive('\n') {
        match piece.strip_suffix('\n') {
            Some(line) => {
                out.push_str(line);
                if !line.ends_with('\r') {
                    out.push('\r');
                }
                out.push('\n');
            }
            None => out.push_str(piece),
        }
    }
    out
}

/// Dot-stuffs the message (RFC 5321 4.5.2) and appends the end-of-data line, so the whole
/// content goes out in ONE write. lettre's `message()` writes the content and the final
/// `.` separately; on a connection without TCP_NODELAY (lettre does not set it) the second
/// small write waits for the server's delayed ACK, about 40 ms per message.
pub(crate) fn for_data(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + message.len() / 64 + 8);
    let mut at_line_start = true;
    for line in message.split_inclusive('\n') {
        if at_line_start && line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        at_line_start = line.ends_with('\n');
    }
    if !out.is_empty() && !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn from() -> Mailbox {
        parse_from("Expiry Bot <bot@example.com>").unwrap()
    }

    fn text(out: &Outgoing) -> String {
        match &out.content {
            Content::Text(text) => text.clone(),
            Content::Bytes(_) => panic!("a built message is text"),
        }
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated() {
        assert_eq!(
            for_data("a\r\n.b\r\n..c\r\nd.e\r\n"),
            "a\r\n..b\r\n...c\r\nd.e\r\n.\r\n"
        );
        assert_eq!(for_data(".first\r\nlast"), "..first\r\nlast\r\n.\r\n");
        assert_eq!(for_data("x\r\n.\r\n"), "x\r\n..\r\n.\r\n");
        assert_eq!(for_data(""), ".\r\n");
    }

    #[test]
    fn bare_lfs_become_crlf_and_nothing_else_changes() {
        assert_eq!(crlf_line_endings("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf_line_endings("\n\n"), "\r\n\r\n");
        assert_eq!(crlf_line_endings("no end"), "no end");
        assert_eq!(crlf_line_endings("lone\rcr\r\n"), "lone\rcr\r\n");
        assert_eq!(crlf_line_endings("é\n✓"), "é\r\n✓");
        assert_eq!(crlf_line_endings(""), "");
    }

    /// What lettre is handed has no bare LF left (so its quadratic fix-up never runs), and
    /// the message is the same as with CRLF from the start.
    #[test]
    fn a_body_with_lf_endings_gives_the_same_message_as_crlf() {
        let lf = "line one\n.dot\n\nlast\n".repeat(1000);
        let crlf = lf.replace('\n', "\r\n");
        let normalised = crlf_line_endings(&lf);
        assert!(!normalised.replace("\r\n", "").contains('\n'));
        assert_eq!(normalised, crlf);
        assert_eq!(
            text(&build_simple("s", &lf).unwrap()),
            text(&build_simple("s", &crlf).unwrap())
        );
    }

    fn build_simple(subject: &str, body: &str) -> Result<Outgoing, Error> {
        build(
            &from(),
            &["a@example.com".to_owned(), "b@example.org".to_owned()],
            subject,
            body,
            UNIX_EPOCH + Duration::from_secs(1_136_214_245),
            "<abc@example.com>".to_owned(),
        )
    }

    #[test]
    fn headers_and_body_are_as_promised() {
        let out = build_simple("Your certificate expires", "Renew soon: café ✓\n= done\n").unwrap();
        let text = text(&out);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        for needle in [
            "From: \"Expiry Bot\" <bot@example.com>",
            "To: a@example.com, b@example.org",
            "Subject: Your certificate expires",
            "Date: Mon, 02 Jan 2006 15:04:05 +0000",
            "Message-ID: <abc@example.com>",
            "MIME-Version: 1.0",
            "Content-Transfer-Encoding: quoted-printable",
        ] {
            assert!(head.contains(needle), "missing {needle:?} in\n{head}");
        }
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; charset=utf-8"),
            "{head}"
        );
        assert!(body.contains("caf=C3=A9 =E2=9C=93"), "{body}");
        assert!(body.contains("=3D done"), "{body}");
        assert!(text.is_ascii(), "QP and RFC 2047 keep the message 7-bit");
        assert_eq!(out.from.unwrap().to_string(), "bot@example.com");
        assert_eq!(out.to.len(), 2);
    }

    #[test]
    fn non_ascii_subject_is_encoded_not_refused() {
        let out = build_simple("Zertifikat läuft ab", "x").unwrap();
        let text = text(&out);
        assert!(text.contains("Subject: Zertifikat =?utf-8?b?"), "{text}");
        assert!(text.is_ascii());
    }

    #[test]
    fn cr_or_lf_never_reaches_a_header() {
        for subject in [
            "hi\r\nBcc: victim@example.com",
            "hi\nX: y",
            "hi\rX: y",
            "nul\0byte",
            "next line\u{85}",
        ] {
            let err = build_simple(subject, "body").unwrap_err();
            assert!(
                matches!(err, Error::HeaderInjection { header: "Subject" }),
                "{err}"
            );
        }
        let err = parse_from("bot@example.com\r\nBcc: victim@example.com").unwrap_err();
        assert!(
            matches!(err, Error::HeaderInjection { header: "From" }),
            "{err}"
        );
        let err = build(
            &from(),
            &["a@example.com\r\nBcc: victim@example.com".to_owned()],
            "s",
            "b",
            UNIX_EPOCH,
            "<x@y>".to_owned(),
        )
        .unwrap_err();
        assert!(err.is_bad_address(), "{err}");
        // A newline in the body is just a line break.
        assert!(build_simple("s", "line 1\r\nBcc: nobody\r\n").is_ok());
    }

    #[test]
    fn non_ascii_addresses_are_refused_clearly() {
        let err = parse_recipient("josé@example.com").unwrap_err();
        assert!(matches!(err, Error::NonAsciiAddress { .. }), "{err}");
        assert!(err.to_string().contains("josé@example.com"), "{err}");
        assert!(err.is_bad_address());
        let err = parse_recipient("user@exämple.com").unwrap_err();
        assert!(matches!(err, Error::NonAsciiAddress { .. }), "{err}");
        let err = parse_from("Bot <böt@example.com>").unwrap_err();
        assert!(matches!(err, Error::NonAsciiAddress { .. }), "{err}");
        // A non-ASCII display name is fine: it is encoded.
        assert!(parse_from("Bötchen <bot@example.com>").is_ok());
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "no-at-sign",
            "a@",
            "@b",
            "a b@example.com",
            "<a@example.com>",
        ] {
            let err = parse_recipient(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidAddress { .. }), "{bad}: {err}");
        }
        assert!(matches!(
            parse_from("not an address"),
            Err(Error::InvalidAddress { .. })
        ));
        let err = build(&from(), &[], "s", "b", UNIX_EPOCH, "<x@y>".to_owned()).unwrap_err();
        assert!(matches!(err, Error::NoRecipients));
    }

    #[test]
    fn message_ids_are_random_and_in_the_from_domain() {
        let a = new_message_id("example.com");
        let b = new_message_id("example.com");
        assert_ne!(a, b);
        assert!(a.starts_with('<') && a.ends_with("@example.com>"), "{a}");
        assert_eq!(a.len(), 1 + 32 + "@example.com>".len());
    }
}
