//! Faults of round two as raw dialogues: greylisting, time windows, rate triggers and named
//! rules (the outage, TLS and reply-shape faults have files of their own).

mod common;

use std::time::Duration;

use common::{Client, start, start_with_faults, stored};
use mail_test_srv::Config;

#[tokio::test]
async fn greylisting_refuses_a_new_triple_until_its_window_has_passed() {
    let server = start_with_faults(&["rcpt:greylist=1s"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    let reply = c.expect("RCPT TO:<b@example.com>", 451).await;
    assert!(reply.text().starts_with("4.7.1"), "{reply:?}");
    // Still inside the window: refused again, and another recipient is a new triple.
    c.expect("RCPT TO:<b@example.com>", 451).await;
    c.expect("RSET", 250).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = c
        .send_mail(
            "a@example.com",
            &["b@example.com"],
            "Subject: late\r\n\r\nok\r\n",
        )
        .await;
    assert_eq!(reply.code, 250);
    assert_eq!(stored(&server).len(), 1);
    let events = server.state().faults().events().since(0).events;
    assert_eq!(
        events.len(),
        2,
        "one event per refusal, none once accepted: {events:?}"
    );
    assert!(events.iter().all(|e| e.action == "greylist=1s"));
    // A reset forgets the triples.
    server.state().faults().reset();
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 451).await;
}

#[tokio::test]
async fn greylisting_keys_on_the_sender_too() {
    let server = start(Config {
        faults: vec![common::rule("rcpt:greylist=1h:to=b@example.com")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 451).await;
    c.expect("RCPT TO:<other@example.com>", 250).await;
}
