//! Lenient envelope paths by default, RFC 5321 syntax with `--strict` (at start or switched at
//! runtime through `PATCH /api/v1/settings`), as raw dialogues: what Go's `net/smtp` sends
//! for a mailbox with a display name is taken, faults fire on it, and the line as received
//! is shown with the message.

mod common;
mod http_util;

use common::{Client, start, stored};
use mail_test_srv::{Config, ServerHandle};
use serde_json::json;

/// The two MAIL lines the original Go mailer puts on the wire through `net/smtp`.
const GO_MAIL_LINES: [(&str, &str); 2] = [
    (
        "MAIL FROM:<<bot@example.com>> BODY=8BITMIME SMTPUTF8",
        "bot@example.com",
    ),
    (
        "MAIL FROM:<\"Expiry bot\" <test@example.com>> BODY=8BITMIME SMTPUTF8",
        "test@example.com",
    ),
];

fn api(server: &ServerHandle) -> http_util::Api {
    http_util::Api {
        addr: server.http_addr(),
        state: server.state().clone(),
    }
}

/// One transaction with `mail_line` and `rcpt_line` as written; the reply to the final dot.
async fn transaction(c: &mut Client<tokio::net::TcpStream>, mail_line: &str, rcpt_line: &str) {
    c.expect(mail_line, 250).await;
    c.expect(rcpt_line, 250).await;
    c.expect("DATA", 354).await;
    c.send(b"Subject: go\r\n\r\nhello\r\n.\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);
}

#[tokio::test]
async fn go_net_smtp_lines_are_accepted_by_default_with_the_inner_address_stored() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    for (line, _) in GO_MAIL_LINES {
        transaction(&mut c, line, "RCPT TO:<<rcpt@example.com>>").await;
    }
    let mail = stored(&server);
    for (message, (line, inner)) in mail.iter().zip(GO_MAIL_LINES) {
        assert_eq!(message.from, inner);
        assert_eq!(message.recipients, ["rcpt@example.com"]);
        assert_eq!(
            message.lenient_lines,
            [line, "RCPT TO:<<rcpt@example.com>>"]
        );
    }
    // The JSON API shows what was received beside the envelope.
    let one = api(&server).get_json("/api/v1/messages?limit=1", 200).await;
    let shown = &one["messages"][0];
    assert_eq!(shown["from"], "bot@example.com");
    assert_eq!(shown["lenient_lines"][0], GO_MAIL_LINES[0].0);
}

#[tokio::test]
async fn a_plain_path_keeps_no_received_line() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    transaction(
        &mut c,
        "MAIL FROM:<a@example.com>",
        "RCPT TO:<b@example.com>",
    )
    .await;
    assert!(stored(&server)[0].lenient_lines.is_empty());
    let list = api(&server).get_json("/api/v1/messages", 200).await;
    assert!(list["messages"][0].get("lenient_lines").is_none(), "{list}");
}

#[tokio::test]
async fn mail_faults_fire_on_leniently_read_lines() {
    let server = start(Config {
        faults: vec![common::rule("mail:close")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.send(format!("{}\r\n", GO_MAIL_LINES[1].0).as_bytes())
        .await;
    assert!(
        c.read_to_end().await.unwrap().is_empty(),
        "closed, no reply"
    );
    assert_eq!(server.state().faults().events().since(0).events.len(), 1);
}

#[tokio::test]
async fn strict_refuses_them_with_the_codes_of_a_bad_path() {
    let server = start(Config {
        strict: true,
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    for (line, _) in GO_MAIL_LINES {
        let reply = c.expect(line, 501).await;
        assert!(reply.lines[0].starts_with("5.1.7 "), "{reply:?}");
    }
    c.expect("MAIL FROM:a@example.com", 501).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    let reply = c.expect("RCPT TO:<\"B\" <b@example.com>>", 501).await;
    assert!(reply.lines[0].starts_with("5.1.3 "), "{reply:?}");
    c.expect("RCPT TO:<b@example.com>", 250).await;
}

#[tokio::test]
async fn strict_is_switched_at_runtime_for_open_sessions() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    assert_eq!(
        api.get_json("/api/v1/settings", 200).await,
        json!({"strict": false})
    );
    let mut c = Client::ehlo(&server).await;
    let (line, _) = GO_MAIL_LINES[0];
    c.expect(line, 250).await;
    c.expect("RSET", 250).await;

    let r = api
        .request("PATCH", "/api/v1/settings", br#"{"strict": true}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"strict": true}));
    c.expect(line, 501).await;

    let r = api.request("PATCH", "/api/v1/settings", b"{}").await;
    assert_eq!(r.json(), json!({"strict": true}), "absent fields stay");
    api.request("PATCH", "/api/v1/settings", br#"{"strict": false}"#)
        .await;
    c.expect(line, 250).await;
}

#[tokio::test]
async fn bad_settings_are_refused_and_change_nothing() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    for (body, want) in [
        (&br#"{"strict": "yes"}"#[..], "invalid type"),
        (br#"{"strcit": true}"#, "unknown field"),
        (b"not json", "bad settings"),
    ] {
        api.request("PATCH", "/api/v1/settings", body)
            .await
            .assert_error(400, want);
    }
    assert!(!server.state().strict());
    api.request("PUT", "/api/v1/settings", b"{}")
        .await
        .assert_error(405, "not allowed");
}
