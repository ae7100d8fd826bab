//! Sending through mail-test-srv's own fault engine: the connection is closed, answered
//! with 421, reset, hung or its reply lost, and every message still arrives.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use mail_test_srv::fault::{Action, Stage};
use mailer::Cause;
use support::*;

/// One message through a server with `faults`; returns the server, the mailer's counters
/// and what `send_mail` returned.
async fn send_one(
    faults: &[&str],
) -> (
    mail_test_srv::ServerHandle,
    mailer::CountersSnapshot,
    mailer::Sent,
) {
    let server = start_server(faults).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.expect("connect");
    let sent = conn
        .send_mail(&to(&["user@example.com"]), "Hello", "Body\n")
        .await
        .expect("delivered in the end");
    conn.close().await.expect("QUIT");
    (server, mailer.counters(), sent)
}

#[tokio::test]
async fn close_on_mail_for_the_first_five_connections_delivers_once() {
    let (server, counters, sent) = send_one(&["mail:close:first=5"]).await;
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    assert_eq!(sent.attempts, 6);
    assert_eq!(counters.failed(Cause::Closed), 5, "{counters}");
    assert_eq!(counters.failed_total(), 5, "{counters}");
    assert_eq!(counters.sent, 1);
    assert_eq!(counters.reconnects, 5);
    assert_eq!(server.state().faults().events().len(), 5);
}

#[tokio::test]
async fn reply_421_then_close_delivers_once() {
    let (server, counters, sent) = send_one(&["mail:421:first=3"]).await;
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    assert_eq!(sent.attempts, 4);
    assert_eq!(counters.failed(Cause::Reply421), 3, "{counters}");
    assert_eq!(counters.failed_total(), 3, "{counters}");
}

#[tokio::test]
async fn tcp_reset_delivers_once() {
    let (server, counters, sent) = send_one(&["mail:reset:first=3"]).await;
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    assert_eq!(sent.attempts, 4);
    // The RST shows as a reset when reading the reply; had our write raced it, as EPIPE.
    assert_eq!(
        counters.failed(Cause::Reset) + counters.failed(Cause::BrokenPipe),
        3,
        "{counters}"
    );
    assert_eq!(counters.failed_total(), 3, "{counters}");
}

#[tokio::test]
async fn close_at_data_and_at_rcpt_delivers_once() {
    let (server, counters, sent) = send_one(&["rcpt:close:first=1", "data:close:first=1"]).await;
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    assert_eq!(sent.attempts, 3);
    assert_eq!(counters.failed(Cause::Closed), 2, "{counters}");
}

/// The lost-reply case: the server stored the message, then closed without replying.
/// The mailer cannot know, resends, and the recipient sees the same Message-ID twice:
/// delivery is at-least-once, and the duplicate is recognisable.
#[tokio::test]
async fn accept_close_at_data_end_gives_a_visible_duplicate() {
    let (server, counters, sent) = send_one(&["data-end:accept-close:first=1"]).await;
    let id = bare(&sent.message_id);
    assert_eq!(message_ids(&server), [id.clone(), id]);
    assert_eq!(sent.attempts, 2);
    assert_eq!(counters.failed(Cause::Closed), 1, "{counters}");
}

/// A hung server: the step timeout fires, the mailer reconnects and resends.
#[tokio::test]
async fn a_hung_reply_times_out_and_is_resent() {
    let server = start_server(&["mail:hang:first=1"]).await;
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        step_timeout: Duration::from_secs(1),
        ..mailer_config(&server)
    };
    let mailer = mailer(config, &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let sent = conn
        .send_mail(&to(&["user@example.com"]), "Hello", "Body")
        .await
        .unwrap();
    assert_eq!(sent.attempts, 2);
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    assert_eq!(mailer.counters().failed(Cause::Timeout), 1);
}

/// 1,000 messages on one connection while a third of the MAIL commands are answered by a
/// closed connection: each arrives exactly once.
#[tokio::test]
async fn a_thousand_messages_at_close_chance_35_arrive_exactly_once() {
    let server = start_server(&["mail:close:35%"]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let mut sent_ids = HashSet::new();
    for i in 0..1000 {
        let sent = conn
            .send_mail(
                &to(&[&format!("user{i}@example.com")]),
                &format!("Message {i}"),
                "Body\n",
            )
            .await
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert!(sent_ids.insert(bare(&sent.message_id)), "ids are unique");
    }
    conn.close().await.unwrap();

    let stored_ids = message_ids(&server);
    assert_eq!(stored_ids.len(), 1000);
    let unique: HashSet<String> = stored_ids.into_iter().collect();
    assert_eq!(unique, sent_ids, "each Message-ID stored once");

    let faults = server.state().faults();
    let injected = faults.injected(Stage::Mail, Action::Close.kind_index());
    assert!(injected > 0, "the fault engine injected closes");
    assert_eq!(
        faults.events().len() as u64,
        injected,
        "one event per fault"
    );
    let counters = mailer.counters();
    assert_eq!(counters.sent, 1000);
    assert_eq!(counters.failed(Cause::Closed), injected, "{counters}");
    assert_eq!(counters.failed_total(), injected, "{counters}");
    assert_eq!(counters.reconnects, injected, "{counters}");
}

/// A caller that gives up on a send (its own timeout, a shutdown) drops the future half-way;
/// the session it was using must not be reused out of step with the server.
#[tokio::test]
async fn a_send_cancelled_half_way_does_not_poison_the_connection() {
    let server = start_server(&["mail:hang:first=1"]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        conn.send_mail(&to(&["user@example.com"]), "first", "x"),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the hung MAIL outlives the caller's patience"
    );
    assert!(
        !conn.is_open(),
        "the half-used session was dropped with the future"
    );
    let sent = conn
        .send_mail(&to(&["user@example.com"]), "second", "y")
        .await
        .expect("a fresh session");
    assert_eq!(sent.attempts, 1);
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].subject.as_deref(), Some("second"));
}
