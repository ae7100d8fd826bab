//! No header or command injection through what a caller hands the mailer. CR, LF and other
//! control characters in the Subject, in a recipient and in the From (display name or
//! address) are refused before anything reaches the server; look-alike line breaks that
//! are not control characters (U+2028, U+2029) are refused in the From and encoded in the
//! Subject, so the stored raw message still
//! has exactly one From, To and Subject and no extra header. A body that tries SMTP
//! smuggling (a lone `.` line followed by commands, with CRLF or bare LF) is delivered as
//! one message, whole: it never ends DATA early and never starts a second transaction.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mailer::{Error, FixedClock, Mailer};
use support::*;

/// Header names in the raw message's header section (before the first empty line),
/// lower-cased, one entry per header field (continuation lines skipped).
fn header_names(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n")
        .filter(|line| !line.starts_with([' ', '\t']))
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.to_ascii_lowercase())
        .collect()
}

fn assert_one_of_each(raw: &[u8]) {
    let names = header_names(raw);
    for header in ["from", "to", "subject", "message-id", "date"] {
        assert_eq!(
            names.iter().filter(|n| *n == header).count(),
            1,
            "{header} in {names:?}\n{}",
            String::from_utf8_lossy(raw)
        );
    }
    for injected in ["bcc", "cc", "x-injected", "reply-to"] {
        assert!(
            !names.iter().any(|n| n == injected),
            "{injected} in {names:?}"
        );
    }
    // Every line of the stored message ends in CRLF: no bare CR or LF slipped through.
    let text = String::from_utf8_lossy(raw);
    assert!(
        !text.replace("\r\n", "").contains(['\r', '\n']),
        "bare CR or LF:\n{text}"
    );
}

#[tokio::test]
async fn control_characters_in_subject_and_recipients_are_refused_before_the_server() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.expect("connect");
    let commands_after_connect = server.state().stats().commands.load(Ordering::Relaxed);

    for subject in [
        "hi\r\nBcc: victim@example.com",
        "hi\nBcc: victim@example.com",
        "hi\rBcc: victim@example.com",
        "hi\r\n\r\nfake body",
        "hi\r\n.\r\nMAIL FROM:<evil@example.com>",
        "nul\0byte",
        "esc\x1b[31m",
        "next line\u{85}X-Injected: 1",
    ] {
        let err = conn
            .send_mail(&to(&["user@example.com"]), subject, "body")
            .await
            .expect_err(subject);
        assert!(
            matches!(err, Error::HeaderInjection { header: "Subject" }),
            "{subject:?}: {err}"
        );
    }
    for recipient in [
        "user@example.com\r\nBcc: victim@example.com",
        "user@example.com\nX-Injected: 1",
        "user@example.com\r",
        "user@example.com>\r\nRCPT TO:<victim@example.com",
        "user@example.com\r\nDATA",
        "\r\nuser@example.com",
        "user@exam\0ple.com",
    ] {
        let err = conn
            .send_mail(&to(&[recipient]), "subject", "body")
            .await
            .expect_err(recipient);
        assert!(
            matches!(err, Error::InvalidAddress { .. }),
            "{recipient:?}: {err}"
        );
    }
    // A bad recipient among good ones stops the whole message, not just that address.
    let err = conn
        .send_mail(
            &to(&[
                "ok@example.com",
                "bad@example.com\r\nBcc: victim@example.com",
            ]),
            "subject",
            "body",
        )
        .await
        .expect_err("second recipient");
    assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");

    assert_eq!(
        server.state().stats().commands.load(Ordering::Relaxed),
        commands_after_connect,
        "no refused message sent a single command"
    );
    assert!(stored(&server).is_empty());
    // The connection is still good for an honest message.
    conn.send_mail(&to(&["user@example.com"]), "honest", "body")
        .await
        .expect("honest message");
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_one_of_each(&mail[0].data);
}

#[tokio::test]
async fn control_characters_in_from_are_refused() {
    let server = start_server(&[]).await;
    for from in [
        "Evil\r\nBcc: victim@example.com <evil@example.com>",
        "Evil <evil@example.com>\r\nX-Injected: 1",
        "evil@example.com\nBcc: victim@example.com",
        "Evil\0 <evil@example.com>",
        "Evil <evil@example.com\r\n>",
        // Not a control character, but lettre's address parser refuses it in a display name.
        "Evil\u{2028}Bcc: victim@example.com <evil@example.com>",
    ] {
        let config = mailer::Config {
            from: from.to_owned(),
            ..mailer_config(&server)
        };
        // Refused when the mailer is made, or at the latest when a message is built.
        let refused = match Mailer::new(config, Arc::new(FixedClock(now()))) {
            Err(err) => err,
            Ok(mailer) => {
                let mut conn = mailer.connect().await.expect("connect");
                conn.send_mail(&to(&["user@example.com"]), "s", "b")
                    .await
                    .expect_err(from)
            }
        };
        assert!(
            matches!(
                refused,
                Error::HeaderInjection { header: "From" }
                    | Error::InvalidAddress { .. }
                    | Error::Config(_)
            ),
            "{from:?}: {refused}"
        );
    }
    assert!(stored(&server).is_empty());
}

#[tokio::test]
async fn unicode_line_separators_are_encoded_not_line_breaks() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.expect("connect");
    conn.send_mail(
        &to(&["user@example.com"]),
        "line\u{2028}Bcc: victim@example.com\u{2029}X-Injected: 1",
        "body",
    )
    .await
    .expect("sent, encoded");
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_one_of_each(&mail[0].data);
    assert_eq!(mail[0].recipients, ["user@example.com"]);
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail[0].data[..])
        .expect("parses");
    assert_eq!(
        parsed.subject(),
        Some("line\u{2028}Bcc: victim@example.com\u{2029}X-Injected: 1"),
        "the subject survives as text"
    );
}

#[tokio::test]
async fn smtp_smuggling_in_the_body_stays_one_message() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.expect("connect");
    let smuggled = "MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nowned\r\n.\r\n";
    for (n, body) in [
        format!("before\r\n.\r\n{smuggled}after\r\n"),
        format!("before\n.\n{}after\n", smuggled.replace("\r\n", "\n")),
        format!("before\r.\r{smuggled}after"),
        format!("before\n.\r\n{smuggled}after"),
        format!(".\r\n{smuggled}"),
    ]
    .iter()
    .enumerate()
    {
        conn.send_mail(&to(&["user@example.com"]), &format!("smuggling {n}"), body)
            .await
            .unwrap_or_else(|e| panic!("body {n}: {e}"));
        let mail = stored(&server);
        assert_eq!(
            mail.len(),
            n + 1,
            "body {n} became {} messages",
            mail.len() - n
        );
        let last = mail.last().expect("stored");
        assert_eq!(
            last.from, "mailer@example.com",
            "envelope sender of body {n}"
        );
        assert_eq!(last.recipients, ["user@example.com"]);
        assert_one_of_each(&last.data);
        let parsed = mail_parser::MessageParser::default()
            .parse(&last.data[..])
            .expect("parses");
        let text = parsed.body_text(0).expect("text body");
        assert!(
            text.contains("owned") && text.contains("after") || n == 4,
            "body {n}: {text:?}"
        );
        assert!(
            text.contains("MAIL FROM:<evil@example.com>"),
            "body {n}: {text:?}"
        );
    }
    assert!(
        stored(&server)
            .iter()
            .all(|m| !m.recipients.iter().any(|r| r == "victim@example.com"))
    );
}
