//! One dialogue per fault action and stage: what the client sees on the wire, what is
//! stored, and the event recorded.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{Client, start, start_with_faults, stored};
use mail_test_srv::fault::FaultEvent;
use mail_test_srv::{AuthMode, Config, ServerHandle};

fn events(server: &ServerHandle) -> Vec<FaultEvent> {
    server.state().faults().events().since(0).events
}

#[tokio::test]
async fn close_at_mail_gives_eof_and_no_reply() {
    let server = start_with_faults(&["mail:close:first=1"]).await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"MAIL FROM:<a@b>\r\n").await;
    assert_eq!(
        c.read_to_end().await.unwrap(),
        b"",
        "no reply before the FIN"
    );
    let ev = events(&server);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (
            ev[0].stage.as_str(),
            ev[0].action.as_str(),
            ev[0].connection
        ),
        ("mail", "close", 1)
    );
    assert!(!ev[0].stored);
    // The rule fired once; the next connection is served.
    let mut c = Client::ehlo(&server).await;
    assert_eq!(c.send_mail("a@b", &["x@y"], "hi\r\n").await.code, 250);
}

#[tokio::test]
async fn close_with_pipelined_commands_sends_nothing_more() {
    let server = start_with_faults(&["mail:close"]).await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n")
        .await;
    assert_eq!(c.read_to_end().await.unwrap(), b"");
    assert!(stored(&server).is_empty());
}

#[tokio::test]
async fn reset_at_mail_gives_connection_reset() {
    let server = start_with_faults(&["mail:reset"]).await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"MAIL FROM:<a@b>\r\n").await;
    let err = c.read_to_end().await.expect_err("RST, not a clean EOF");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(events(&server)[0].action, "reset");
}

#[tokio::test]
async fn reply_421_then_close() {
    let server = start_with_faults(&["rcpt:421"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    let reply = c.expect("RCPT TO:<x@y>", 421).await;
    assert!(reply.text().starts_with("4.3.0"), "{reply:?}");
    assert_eq!(c.read_to_end().await.unwrap(), b"");
}

#[tokio::test]
async fn reply_code_refuses_the_command_and_the_session_goes_on() {
    let server = start_with_faults(&["rcpt:reply=550:to=bad@example.com"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    let reply = c.expect("RCPT TO:<bad@example.com>", 550).await;
    assert!(reply.text().starts_with("5.1.1"), "{reply:?}");
    c.expect("RCPT TO:<good@example.com>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"hi\r\n.\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);
    assert_eq!(stored(&server)[0].recipients, ["good@example.com"]);
}

#[tokio::test]
async fn reply_at_data_end_does_not_store() {
    let server = start_with_faults(&["data-end:reply=451:first=1"]).await;
    let mut c = Client::ehlo(&server).await;
    let reply = c.send_mail("a@b", &["x@y"], "one\r\n").await;
    assert_eq!(reply.code, 451);
    assert!(reply.text().starts_with("4.3.0"), "{reply:?}");
    assert!(stored(&server).is_empty());
    assert_eq!(c.send_mail("a@b", &["x@y"], "two\r\n").await.code, 250);
    assert_eq!(&stored(&server)[0].data[..], b"two\r\n");
}

#[tokio::test(start_paused = true)]
async fn delay_then_normal_reply() {
    let server = start_with_faults(&["ehlo:delay=5s"]).await;
    let mut c = Client::connect(&server).await;
    let started = tokio::time::Instant::now();
    c.expect("EHLO me", 250).await;
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(events(&server)[0].action, "delay=5s");
}

#[tokio::test]
async fn hang_never_replies_and_others_are_served() {
    let server = start_with_faults(&["data:hang:first=1"]).await;
    let mut hung = Client::ehlo(&server).await;
    hung.expect("MAIL FROM:<a@b>", 250).await;
    hung.expect("RCPT TO:<x@y>", 250).await;
    hung.send(b"DATA\r\n").await;
    let waited = tokio::time::timeout(Duration::from_millis(300), hung.reply_untimed()).await;
    assert!(waited.is_err(), "a hung session must not reply: {waited:?}");
    // More input is read and discarded, still without a reply.
    hung.send(b"NOOP\r\n").await;
    let waited = tokio::time::timeout(Duration::from_millis(200), hung.reply_untimed()).await;
    assert!(waited.is_err());
    let mut other = Client::ehlo(&server).await;
    assert_eq!(other.send_mail("a@b", &["x@y"], "hi\r\n").await.code, 250);
    // On shutdown the hung session is closed without a reply.
    server.shutdown().await;
    assert_eq!(hung.read_to_end().await.unwrap(), b"");
}

#[tokio::test]
async fn accept_close_stores_and_closes_without_reply() {
    let server = start_with_faults(&["data-end:accept-close:first=1"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect("RCPT TO:<x@y>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"Subject: dup\r\n\r\nbody\r\n.\r\n").await;
    assert_eq!(c.read_to_end().await.unwrap(), b"", "the reply is lost");
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_eq!(&mail[0].data[..], b"Subject: dup\r\n\r\nbody\r\n");
    let ev = events(&server);
    assert_eq!(
        (ev[0].stage.as_str(), ev[0].action.as_str(), ev[0].stored),
        ("data-end", "accept-close", true)
    );
}

#[tokio::test]
async fn connect_stage_close_and_reply() {
    let server = start_with_faults(&["connect:close:first=1", "connect:reply=554:first=2"]).await;
    let mut c = Client::connect_raw(&server).await;
    assert_eq!(
        c.read_to_end().await.unwrap(),
        b"",
        "closed before the greeting"
    );
    let mut c = Client::connect_raw(&server).await;
    assert_eq!(c.reply().await.unwrap().code, 554, "refusal instead of 220");
    // RFC 5321 3.1: after a refused greeting only QUIT is served.
    c.expect("EHLO me", 503).await;
    c.expect("QUIT", 221).await;
    let mut c = Client::connect_raw(&server).await;
    assert_eq!(c.reply().await.unwrap().code, 220);
}

#[tokio::test]
async fn quit_stage_close_skips_221() {
    let server = start_with_faults(&["quit:close"]).await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"QUIT\r\n").await;
    assert_eq!(c.read_to_end().await.unwrap(), b"");
    assert_eq!(events(&server)[0].stage, "quit");
}

#[tokio::test]
async fn data_stage_reply_keeps_the_transaction() {
    let server = start_with_faults(&["data:reply=451:first=1"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect("RCPT TO:<x@y>", 250).await;
    c.expect("DATA", 451).await;
    c.expect("DATA", 354).await;
    c.send(b"x\r\n.\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);
}

#[tokio::test]
async fn auth_stage_fault() {
    let server = start(Config {
        auth: AuthMode::AcceptAny,
        faults: vec![common::rule("auth:reply=454:first=1")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("AUTH PLAIN AHUAcA==", 454).await;
    c.expect("AUTH PLAIN AHUAcA==", 235).await;
}

#[tokio::test]
async fn faults_match_sender() {
    let server = start_with_faults(&["mail:reply=550:from=blocked@example.com"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<BLOCKED@example.com>", 550).await;
    c.expect("MAIL FROM:<ok@example.com>", 250).await;
}

#[tokio::test(start_paused = true)]
async fn a_delay_longer_than_the_idle_timeout_is_not_idleness() {
    let server = start(Config {
        faults: vec![common::rule("ehlo:delay=120s")],
        limits: mail_test_srv::Limits {
            idle_timeout: Duration::from_secs(60),
            ..mail_test_srv::Limits::default()
        },
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::connect(&server).await;
    c.send(b"EHLO me\r\n").await;
    assert_eq!(c.reply_untimed().await.unwrap().code, 250);
    c.expect("NOOP", 250).await;
}
