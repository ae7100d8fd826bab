//! The server goes away: the mailer sleeps on the backoff schedule, comes back with it,
//! and gives up with a clear error when it stays away past the bound.

mod support;

use std::time::Duration;

use mailer::{Cause, Error, backoff_before_jitter};
use support::*;

/// Every recorded sleep i (0-based, zero sleeps are not recorded) is the sleep before
/// reconnect attempt i+1: base·2^i capped at max, within the ±20% jitter.
fn assert_follows_schedule(sleeps: &[Duration], base: Duration, max: Duration) {
    assert!(!sleeps.is_empty());
    for (i, slept) in sleeps.iter().enumerate() {
        let plain = backoff_before_jitter(i as u32 + 1, base, max, 2);
        assert!(
            *slept >= plain.mul_f64(0.8) && *slept <= plain.mul_f64(1.2),
            "sleep {i} was {slept:?}, schedule says {plain:?} ±20% (all: {sleeps:?})"
        );
    }
}

#[tokio::test]
async fn server_gone_for_a_minute_then_back_on_the_same_port() {
    let server = start_server(&[]).await;
    let addr = server.smtp_addr();
    let sleeper = VirtualSleeper::holding_at(Some(Duration::from_secs(60)));
    let config = mailer_config(&server);
    let (base, max) = (config.reconnect_base, config.reconnect_max);
    let mailer = mailer(config, &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    conn.send_mail(&to(&["before@example.com"]), "before", "x")
        .await
        .unwrap();

    server.shutdown().await;
    let sending = tokio::spawn(async move {
        let sent = conn
            .send_mail(&to(&["after@example.com"]), "after", "y")
            .await;
        (conn, sent)
    });

    // A minute of (virtual) backoff passes with nobody listening...
    sleeper.wait_total(Duration::from_secs(60)).await;
    let refused_meanwhile = mailer.counters().connect_failures(Cause::Refused);
    assert!(refused_meanwhile >= 5, "{}", mailer.counters());
    // ...then the server is back on the same port.
    let back = mail_test_srv::start(mail_test_srv::Config {
        smtp_addr: addr,
        ..server_config(&[])
    })
    .await
    .expect("the port can be bound again");
    sleeper.release();

    let (conn, sent) = sending.await.unwrap();
    let sent = sent.expect("delivered once the server is back");
    assert_eq!(message_ids(&back), [bare(&sent.message_id)]);
    conn.close().await.unwrap();

    let sleeps = sleeper.sleeps();
    assert_follows_schedule(&sleeps, base, max);
    let total: Duration = sleeps.iter().sum();
    assert!(total >= Duration::from_secs(60), "slept {total:?}");
    // base·(1+2+...+32) = 63 s; the jitter allows 6 to 8 non-zero sleeps to pass 60 s.
    assert!((6..=8).contains(&sleeps.len()), "{sleeps:?}");
    let counters = mailer.counters();
    assert_eq!(counters.sent, 2);
    assert_eq!(counters.reconnects, 1);
    // One attempt per sleep, plus the immediate first reconnect.
    assert_eq!(counters.reconnect_attempts, sleeps.len() as u64 + 1);
}

#[tokio::test]
async fn a_server_that_never_comes_back_gives_a_clear_error_after_the_bound() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        max_reconnects: 6,
        ..mailer_config(&server)
    };
    let (base, max) = (config.reconnect_base, config.reconnect_max);
    let mailer = mailer(config, &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    server.shutdown().await;

    let err = conn
        .send_mail(&to(&["user@example.com"]), "s", "b")
        .await
        .expect_err("nobody listens");
    match &err {
        Error::GaveUp {
            attempts,
            last_cause,
            ..
        } => {
            assert_eq!(*attempts, 6);
            assert_eq!(*last_cause, Cause::Refused);
        }
        other => panic!("expected GaveUp, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("gave up after 6 reconnect attempts"),
        "{text}"
    );
    assert_follows_schedule(&sleeper.sleeps(), base, max);
    assert_eq!(sleeper.sleeps().len(), 5, "attempt 0 does not sleep");

    // The next message does not start a whole new loop: one try, then the same error.
    let before = sleeper.sleeps().len();
    let err = conn
        .send_mail(&to(&["user@example.com"]), "s", "b")
        .await
        .expect_err("still nobody");
    assert!(matches!(err, Error::GaveUp { attempts: 1, .. }), "{err}");
    assert_eq!(sleeper.sleeps().len(), before);
}

#[tokio::test]
async fn connect_itself_retries_and_respects_a_time_bound() {
    // Nobody listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        server: "127.0.0.1".to_owned(),
        port,
        from: "mailer@example.com".to_owned(),
        max_reconnects: 1000,
        reconnect_deadline: Some(Duration::from_secs(600)),
        ..mailer::Config::default()
    };
    let mailer = mailer(config, &sleeper);
    let err = mailer.connect().await.expect_err("nobody listens");
    assert!(matches!(err, Error::GaveUp { .. }), "{err}");
    let total: Duration = sleeper.sleeps().iter().sum();
    // Sleeps are cut at the deadline, so virtual time ends right at 10 minutes.
    assert!(total <= Duration::from_secs(600), "{total:?}");
    assert!(total >= Duration::from_secs(590), "{total:?}");
    assert!(sleeper.sleeps().len() < 20, "{:?}", sleeper.sleeps());
}

/// A server that accepts every connection but closes on every MAIL: reconnecting always
/// works, sending never does; the same bound ends it.
#[tokio::test]
async fn a_server_that_always_closes_is_also_bounded() {
    let server = start_server(&["mail:close:100%"]).await;
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        max_reconnects: 4,
        ..mailer_config(&server)
    };
    let mailer = mailer(config, &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let err = conn
        .send_mail(&to(&["user@example.com"]), "s", "b")
        .await
        .expect_err("never accepted");
    assert!(
        matches!(
            err,
            Error::GaveUp {
                attempts: 4,
                last_cause: Cause::Closed,
                ..
            }
        ),
        "{err}"
    );
    assert!(stored(&server).is_empty());
    let counters = mailer.counters();
    assert_eq!(counters.failed(Cause::Closed), 5, "{counters}");
    assert_eq!(counters.reconnects, 4, "{counters}");
}

/// The backoff is for a server that cannot be reached: when the connection opens again and
/// is then dropped again (close at MAIL on three fresh connections in a row), the mailer
/// reconnects at once each time, as the original did (i starts again at 0), and the bound
/// still counts all three reconnects.
#[tokio::test]
async fn a_drop_after_a_good_reconnect_reconnects_at_once() {
    let server = start_server(&["mail:close:first=3"]).await;
    let sleeper = VirtualSleeper::new();
    let first = mailer(mailer_config(&server), &sleeper);
    let mut conn = first.connect().await.unwrap();
    let sent = conn
        .send_mail(&to(&["user@example.com"]), "s", "b")
        .await
        .expect("delivered on the fourth connection");
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    assert_eq!(sleeper.sleeps(), Vec::<Duration>::new(), "no backoff sleep");
    let counters = first.counters();
    assert_eq!(counters.reconnects, 3, "{counters}");
    assert_eq!(counters.failed(Cause::Closed), 3, "{counters}");

    // The same drops with a bound of 2 reconnects: given up, not looped.
    let server = start_server(&["mail:close:first=3"]).await;
    let config = mailer::Config {
        max_reconnects: 2,
        ..mailer_config(&server)
    };
    let bounded = mailer(config, &sleeper);
    let mut conn = bounded.connect().await.unwrap();
    let err = conn
        .send_mail(&to(&["user@example.com"]), "s", "b")
        .await
        .expect_err("bounded");
    assert!(matches!(err, Error::GaveUp { attempts: 2, .. }), "{err}");
}
