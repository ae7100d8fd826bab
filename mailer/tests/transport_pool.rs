//! The transport's pool against an in-process mail-test-srv: parallel senders share at most
//! N sessions; a pooled session the server breaks is replaced and never handed out again;
//! a send dropped mid-transaction leaves no half-used session behind, while one dropped
//! between transactions (in a retry's backoff) gives its clean session back; `close` QUITs.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use mail_test_srv::fault::FaultRule;
use mail_test_srv::transcript::{Outcome, Query};
use mailer::lettre::{AsyncTransport, Message};
use mailer::{Cause, Error, ReconnectingTransport};
use support::*;

fn transport(server: &mail_test_srv::ServerHandle, pool_size: usize) -> ReconnectingTransport {
    ReconnectingTransport::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .reconnect_base(Duration::from_millis(5))
        .reconnect_max(Duration::from_millis(50))
        .step_timeout(Duration::from_secs(10))
        .pool_size(pool_size)
        .build()
        .expect("valid settings")
}

fn message(n: usize) -> Message {
    Message::builder()
        .from("service@example.com".parse().unwrap())
        .to(format!("user{n}@example.org").parse().unwrap())
        .subject(format!("message {n}"))
        .body(format!("body {n}\n"))
        .unwrap()
}

fn connections_total(server: &mail_test_srv::ServerHandle) -> u64 {
    server
        .state()
        .stats()
        .connections_total
        .load(Ordering::Relaxed)
}

fn all_sessions(server: &mail_test_srv::ServerHandle) -> Vec<mail_test_srv::transcript::Record> {
    server.state().sessions().list(&Query {
        limit: usize::MAX,
        ..Query::default()
    })
}

fn install(server: &mail_test_srv::ServerHandle, name: &str, rule: &str) {
    let rule: FaultRule = rule.parse().expect("valid rule");
    server
        .state()
        .faults()
        .put_rule(name, rule)
        .expect("rule installed");
}

#[tokio::test]
async fn parallel_senders_share_at_most_n_sessions() {
    // A slow final reply keeps sends overlapping, so the pool really fills.
    let server = start_server(&["data-end:delay=20ms"]).await;
    let transport = transport(&server, 3);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let transport = transport.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                transport.send(message(task * 5 + i)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(stored(&server).len(), 40);
    assert_eq!(connections_total(&server), 3, "three sessions, reused");
    assert_eq!(transport.idle_connections(), 3);
    transport.close().await;
}

#[tokio::test]
async fn a_broken_pooled_session_is_replaced_and_never_handed_out_again() {
    let server = start_server(&["data-end:delay=50ms"]).await;
    let transport = transport(&server, 2);
    // Two sends at once: two sessions, both back in the pool.
    let (a, b) = tokio::join!(transport.send(message(0)), transport.send(message(1)));
    a.unwrap();
    b.unwrap();
    assert_eq!(transport.idle_connections(), 2);
    assert_eq!(connections_total(&server), 2);

    // The server resets the next session that says MAIL: the one the next send leases.
    install(&server, "reset-once", "mail:reset:times=1");
    for n in 2..12 {
        let sent = transport.send(message(n)).await.unwrap();
        assert_eq!(sent.attempts, if n == 2 { 2 } else { 1 }, "message {n}");
    }

    assert_eq!(stored(&server).len(), 12);
    let counters = transport.counters();
    assert_eq!(counters.failed_total(), 1, "{counters}");
    assert_eq!(counters.retries(Cause::Reset), 1, "{counters}");
    // One replacement session, and no other: had the reset session been handed out again,
    // each use would have failed and opened yet another.
    assert_eq!(connections_total(&server), 3);
    let sessions = all_sessions(&server);
    let reset: Vec<_> = sessions
        .iter()
        .filter(|s| s.outcome == Some(Outcome::ServerFault("reset".to_owned())))
        .collect();
    assert_eq!(reset.len(), 1, "{sessions:?}");
    assert!(reset[0].messages.len() <= 1, "{:?}", reset[0]);
    // The messages after the reset all went over the healthy sessions.
    assert!(
        stored(&server)
            .iter()
            .skip(2)
            .all(|m| m.connection != reset[0].id)
    );
    assert_eq!(transport.idle_connections(), 2);
}

#[tokio::test]
async fn a_send_dropped_mid_transaction_leaves_no_half_used_session_in_the_pool() {
    let server = start_server(&[]).await;
    let transport = transport(&server, 1);
    transport.send(message(0)).await.unwrap();
    assert_eq!(transport.idle_connections(), 1);
    let first_session = stored(&server)[0].connection;

    // The server sits on the DATA reply; the caller gives up waiting and drops the send.
    install(&server, "slow-data", "data:delay=3s:times=1");
    let cancelled =
        tokio::time::timeout(Duration::from_millis(300), transport.send(message(1))).await;
    assert!(cancelled.is_err(), "the send was cut off: {cancelled:?}");
    assert_eq!(
        transport.idle_connections(),
        0,
        "the interrupted session did not go back"
    );

    // The next send through the same transport (pool of one: the slot was freed) works at
    // once, on a fresh session: reusing the old one would have met the late 354.
    let sent = tokio::time::timeout(Duration::from_secs(5), transport.send(message(2)))
        .await
        .expect("not stuck behind the cancelled send")
        .unwrap();
    assert_eq!(sent.attempts, 1);
    assert_eq!(transport.counters().failed_total(), 0);
    let stored = stored(&server);
    assert_eq!(stored.len(), 2, "the cancelled message was never completed");
    assert_eq!(stored[1].subject.as_deref(), Some("message 2"));
    assert_ne!(stored[1].connection, first_session);
    assert_eq!(connections_total(&server), 2);

    // The server sees the first session end without another command after the DATA.
    let record = server.state().sessions().get(first_session).unwrap();
    let transcript = record.text();
    let after_data = transcript
        .rsplit_once("C: DATA")
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    assert!(!after_data.contains("C: MAIL"), "{transcript}");
}

#[tokio::test]
async fn close_quits_the_idle_sessions_and_refuses_further_sends() {
    let server = start_server(&[]).await;
    let transport = transport(&server, 2);
    transport.send(message(0)).await.unwrap();
    AsyncTransport::shutdown(&transport).await;
    assert_eq!(transport.idle_connections(), 0);
    let err = transport.send(message(1)).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("shut down"), "{err}");
    // QUIT reached the server.
    let sessions = all_sessions(&server);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let sessions = all_sessions(&server);
            if sessions[0].outcome == Some(Outcome::ClientQuit) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no QUIT: {sessions:?}"));
}

#[tokio::test]
async fn a_send_dropped_between_transactions_gives_its_clean_session_back() {
    let server = start_server(&[]).await;
    let transport = ReconnectingTransport::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .reconnect_base(Duration::from_secs(5))
        .pool_size(1)
        .build()
        .unwrap();
    transport.send(message(0)).await.unwrap();

    // A 451 at MAIL: RSET, then a retry after a backoff of about 5 s, during which the
    // session is between transactions. The caller gives up during that sleep.
    install(&server, "greylist-once", "mail:reply=451:times=1");
    let cancelled =
        tokio::time::timeout(Duration::from_millis(500), transport.send(message(1))).await;
    assert!(cancelled.is_err(), "{cancelled:?}");
    assert_eq!(
        transport.idle_connections(),
        1,
        "the RSET session went back"
    );

    let sent = transport.send(message(2)).await.unwrap();
    assert_eq!(sent.attempts, 1);
    assert_eq!(connections_total(&server), 1, "the same session carried on");
    let subjects: Vec<_> = stored(&server)
        .iter()
        .map(|m| m.subject.clone().unwrap_or_default())
        .collect();
    assert_eq!(subjects, ["message 0", "message 2"]);
}
