//! A refused recipient costs an RSET, not the connection: typed error, then the next
//! message goes through on the same connection.

mod support;

use std::sync::atomic::Ordering;

use mail_test_srv::ServerHandle;
use mailer::{Connection, Error, Mailer, Sent};
use support::*;

/// A server with these fault rules, a mailer pointed at it and one open connection.
async fn connected(faults: &[&str]) -> (ServerHandle, Mailer, Connection) {
    let server = start_server(faults).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let conn = mailer.connect().await.unwrap();
    (server, mailer, conn)
}

/// Sends subject "s", body "b" to `recipients` on `conn`.
async fn send(conn: &mut Connection, recipients: &[&str]) -> Result<Sent, Error> {
    conn.send_mail(&to(recipients), "s", "b").await
}

#[tokio::test]
async fn a_550_recipient_is_a_typed_error_and_the_connection_stays_usable() {
    let (server, mailer, mut conn) = connected(&["rcpt:reply=550:to=bad@example.com"]).await;

    let err = send(&mut conn, &["bad@example.com"])
        .await
        .expect_err("refused");
    assert!(err.is_bad_address(), "{err}");
    match &err {
        Error::BadAddress { address, code, .. } => {
            assert_eq!(address, "bad@example.com");
            assert_eq!(*code, 550);
        }
        other => panic!("expected BadAddress, got {other}"),
    }
    assert!(conn.is_open());

    // Without the RSET the server would still hold the first MAIL and answer the next
    // MAIL with 503 (RFC 5321 4.1.4): success here proves the transaction was reset
    // (`send_scripted.rs` also sees the RSET itself).
    let sent = send(&mut conn, &["good@example.com"])
        .await
        .expect("next message on the same connection");
    assert_eq!(sent.attempts, 1);
    conn.close().await.unwrap();

    let stats = server.state().stats();
    assert_eq!(stats.connections_total.load(Ordering::Relaxed), 1);
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].recipients, ["good@example.com"]);
    let counters = mailer.counters();
    assert_eq!(counters.bad_address, 1);
    assert_eq!(counters.sent, 1);
    assert_eq!(counters.failed_total(), 0);
}

#[tokio::test]
async fn the_bad_recipient_among_several_is_named() {
    let (server, _mailer, mut conn) = connected(&["rcpt:reply=550:to=bad@example.com"]).await;
    let err = send(&mut conn, &["ok@example.com", "bad@example.com"])
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::BadAddress { address, code: 550, .. } if address == "bad@example.com"),
        "{err}"
    );
    assert!(stored(&server).is_empty(), "nothing half-sent");
    send(&mut conn, &["ok@example.com"]).await.unwrap();
}

#[tokio::test]
async fn another_refusal_is_an_error_after_rset_without_retry() {
    let (server, mailer, mut conn) = connected(&["mail:reply=552:first=1"]).await;
    let err = send(&mut conn, &["user@example.com"])
        .await
        .expect_err("refused");
    assert!(!err.is_bad_address(), "{err}");
    assert_eq!(err.code(), Some(552), "{err}");
    assert!(conn.is_open());
    send(&mut conn, &["user@example.com"]).await.unwrap();
    assert_eq!(stored(&server).len(), 1);
    assert_eq!(mailer.counters().reconnect_attempts, 0);
}

#[tokio::test]
async fn invalid_and_non_ascii_addresses_never_reach_the_server() {
    let (server, _mailer, mut conn) = connected(&[]).await;
    let err = send(&mut conn, &["josé@example.com"])
        .await
        .expect_err("non-ASCII");
    assert!(matches!(err, Error::NonAsciiAddress { .. }), "{err}");
    let err = send(&mut conn, &["x@example.com\r\nRCPT TO:<y@example.com>"])
        .await
        .expect_err("injection");
    assert!(err.is_bad_address(), "{err}");
    let err = conn
        .send_mail(&to(&["x@example.com"]), "s\r\nBcc: y@example.com", "b")
        .await
        .expect_err("header injection");
    assert!(matches!(err, Error::HeaderInjection { .. }), "{err}");
    let commands = server.state().stats().commands.load(Ordering::Relaxed);
    // The two EHLOs of opening the session (the second learns about PIPELINING).
    assert_eq!(commands, 2, "only EHLO reached the server");
}

#[tokio::test]
async fn a_550_to_mail_from_concerns_the_sender_not_the_recipient() {
    let (_server, _mailer, mut conn) = connected(&["mail:reply=550:first=1"]).await;
    let err = send(&mut conn, &["user@example.com"])
        .await
        .expect_err("refused");
    assert!(!err.is_bad_address(), "{err}");
    assert!(
        matches!(
            err,
            Error::Rejected {
                step: mailer::Step::Mail,
                code: 550,
                ..
            }
        ),
        "{err}"
    );
    send(&mut conn, &["user@example.com"]).await.unwrap();
}
