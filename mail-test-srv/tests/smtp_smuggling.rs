//! SMTP smuggling: only `CRLF.CRLF` ends DATA, so no marker made of bare LFs or CRs can end a
//! message early and run the rest as a second transaction with a forged sender; with
//! `--bare-lf reject` a bare LF gets 521 and the connection is closed.

mod common;

use common::{Client, start, stored};
use mail_test_srv::{BareLf, Config};

/// The false end markers a smuggling attack relies on, each one some server took.
const MARKERS: [&[u8]; 6] = [
    b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r",
];

/// A message whose body carries `marker` and then a whole forged transaction.
fn smuggling_body(marker: &[u8]) -> Vec<u8> {
    let mut body = b"Subject: real\r\n\r\nhello".to_vec();
    body.extend_from_slice(marker);
    body.extend_from_slice(
        b"MAIL FROM:<forged@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n\
          Subject: forged\r\n\r\nsmuggled\r\n",
    );
    body
}

#[tokio::test]
async fn no_false_end_marker_ends_data() {
    let server = start(Config::ephemeral()).await;
    for marker in MARKERS {
        let mut c = Client::ehlo(&server).await;
        c.expect("MAIL FROM:<real@example.com>", 250).await;
        c.expect("RCPT TO:<rcpt@example.com>", 250).await;
        c.expect("DATA", 354).await;
        c.send(&smuggling_body(marker)).await;
        c.send(b"\r\n.\r\n").await;
        let reply = c.reply().await.unwrap();
        assert_eq!(reply.code, 250, "{}: {reply:?}", marker.escape_ascii());
        // Exactly one reply for the whole message: the QUIT reply comes next.
        c.expect("QUIT", 221).await;
    }
    let mail = stored(&server);
    assert_eq!(mail.len(), MARKERS.len(), "one message per attempt");
    for message in &mail {
        assert_eq!(message.from, "real@example.com");
        assert_eq!(message.recipients, ["rcpt@example.com"]);
        let data = String::from_utf8_lossy(&message.data);
        assert!(data.contains("MAIL FROM:<forged@example.com>"), "{data:?}");
    }
    assert!(!mail.iter().any(|m| m.from.contains("forged")));
}

async fn rejecting() -> mail_test_srv::ServerHandle {
    start(Config {
        bare_lf: BareLf::Reject,
        ..Config::ephemeral()
    })
    .await
}

#[tokio::test]
async fn bare_lf_reject_refuses_data_with_521_and_closes() {
    let server = rejecting().await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<real@example.com>", 250).await;
    c.expect("RCPT TO:<rcpt@example.com>", 250).await;
    c.expect("DATA", 354).await;
    c.send(&smuggling_body(b"\n.\n")).await;
    let reply = c.reply().await.unwrap();
    assert_eq!(reply.code, 521, "{reply:?}");
    assert!(reply.lines[0].starts_with("5.5.2 "), "{reply:?}");
    assert!(c.read_to_end().await.unwrap().is_empty(), "closed");
    assert!(stored(&server).is_empty());
}

#[tokio::test]
async fn bare_lf_command_lines_are_taken_by_default_and_refused_when_asked() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"NOOP\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);

    let server = rejecting().await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"NOOP\n").await;
    assert_eq!(c.reply().await.unwrap().code, 521);
    assert!(c.read_to_end().await.unwrap().is_empty(), "closed");
    // A CRLF client is served as usual.
    let mut c = Client::ehlo(&server).await;
    let reply = c
        .send_mail(
            "a@example.com",
            &["b@example.com"],
            "Subject: ok\r\n\r\nhi\r\n",
        )
        .await;
    assert_eq!(reply.code, 250);
}
