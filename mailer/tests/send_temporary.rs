//! Temporary refusals against mail-test-srv's own faults: greylisting, a rate limit and a
//! 452 after the data make the mailer RSET, back off and retry the transaction on the same
//! connection; past the bound the refusal itself comes back, still temporary; a 4xx greeting
//! is a new connection on the reconnect schedule. Real time, in
//! short windows (greylisting counts in the server's clock, which a virtual sleeper would
//! not move); the timing checks are lower bounds or the schedule the mailer asked for.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mail_test_srv::ServerHandle;
use mailer::{BackoffKind, Cause, Config, Error, FixedClock, Mailer, Step, backoff_before_jitter};
use support::*;

/// Fast backoff in real time: 100, 200, 400, 800 ms... capped at 2 s.
fn config(server: &ServerHandle) -> Config {
    Config {
        reconnect_base: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(2),
        ..mailer_config(server)
    }
}

fn real_mailer(config: Config) -> Mailer {
    Mailer::new(config, Arc::new(FixedClock(now()))).expect("valid mailer config")
}

/// Fault events the server recorded at `stage`.
fn events_at(server: &ServerHandle, stage: &str) -> u64 {
    let page = server.state().faults().events().since(0);
    page.events.iter().filter(|e| e.stage == stage).count() as u64
}

/// Every retry sleep k (1, 2, 3... in order) asked for base·2^(k-1) capped, ±20%, and
/// lasted at least that long.
fn assert_retry_schedule(mailer: &Mailer) {
    let config = mailer.config();
    let sleeps = mailer.counters().sleeps;
    for (i, sleep) in sleeps.iter().enumerate() {
        assert_eq!(sleep.kind, BackoffKind::Retry, "{sleeps:?}");
        assert_eq!(sleep.index, i as u32 + 1, "{sleeps:?}");
        let plain =
            backoff_before_jitter(sleep.index, config.reconnect_base, config.reconnect_max, 2);
        assert!(
            sleep.planned >= plain.mul_f64(0.8) && sleep.planned <= plain.mul_f64(1.2),
            "retry {} asked {:?}, schedule {plain:?} ±20%",
            sleep.index,
            sleep.planned
        );
        // tokio's timer fires on a millisecond tick, never early by more than that.
        assert!(
            sleep.slept + Duration::from_millis(2) >= sleep.planned,
            "{sleep:?}"
        );
    }
}

#[tokio::test]
async fn a_greylisted_recipient_gets_the_message_after_the_window() {
    let server = start_server(&["rcpt:greylist=1s"]).await;
    let mailer = real_mailer(config(&server));
    let started = std::time::Instant::now();
    let mut conn = mailer.connect().await.unwrap();
    let sent = conn
        .send_mail(&to(&["grey@example.com"]), "greylisted", "later")
        .await
        .expect("delivered once the window has passed");
    let took = started.elapsed();

    assert!(took >= Duration::from_millis(950), "through after {took:?}");
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    let greylisted = events_at(&server, "rcpt");
    assert!(greylisted >= 2, "{greylisted} greylist refusals");
    let counters = mailer.counters();
    assert_eq!(counters.retries(Cause::Temporary), greylisted, "{counters}");
    assert_eq!(counters.failed(Cause::Temporary), greylisted, "{counters}");
    assert_eq!(u64::from(sent.attempts), greylisted + 1);
    assert_eq!(counters.sleeps.len() as u64, greylisted);
    // The retries used the same connection (RSET, not reconnect).
    assert_eq!(counters.reconnect_attempts, 0, "{counters}");
    assert_retry_schedule(&mailer);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_rate_limit_451_on_mail_is_retried_until_every_message_is_through() {
    let server = start_server(&["throttle=mail:reply=451:rate=2/s"]).await;
    let mailer = real_mailer(config(&server));
    let mut conn = mailer.connect().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        let address = format!("rate{i}@example.com");
        let sent = conn
            .send_mail(&to(&[&address]), "throttled", "x")
            .await
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        ids.push(bare(&sent.message_id));
    }
    // Each exactly once, in order.
    assert_eq!(message_ids(&server), ids);
    let throttled = events_at(&server, "mail");
    assert!(throttled >= 1, "six MAILs at once must pass 2/s");
    let counters = mailer.counters();
    assert_eq!(counters.retries(Cause::Temporary), throttled, "{counters}");
    assert_eq!(counters.sent, 6);
    // No assertion on reconnects: a refused pipelined MAIL makes the server answer the RCPT
    // and DATA behind it with 503, and past its `max_errors` it closes with 421; the mailer
    // then reconnects, which is fine as long as every message arrives once.
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_452_after_the_data_is_retried_once_and_stored_once() {
    let server = start_server(&["data-end:reply=452:first=1"]).await;
    let mailer = real_mailer(config(&server));
    let mut conn = mailer.connect().await.unwrap();
    let sent = conn
        .send_mail(&to(&["full@example.com"]), "queue full", "x")
        .await
        .unwrap();
    assert_eq!(sent.attempts, 2);
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    let counters = mailer.counters();
    assert_eq!(counters.retries(Cause::Temporary), 1, "{counters}");
    assert_eq!(counters.sleeps.len(), 1);
    assert_retry_schedule(&mailer);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_refusal_that_outlasts_the_bound_is_returned_as_a_temporary_error() {
    let server = start_server(&["rcpt:reply=451"]).await;
    let mailer = real_mailer(Config {
        reconnect_base: Duration::from_millis(10),
        max_reconnects: 3,
        ..config(&server)
    });
    let mut conn = mailer.connect().await.unwrap();
    let err = conn
        .send_mail(&to(&["never@example.com"]), "never", "x")
        .await
        .expect_err("always refused");
    assert!(
        matches!(
            err,
            Error::Rejected {
                step: Step::Rcpt,
                code: 451,
                ..
            }
        ),
        "{err:?}"
    );
    // The caller (expiration-mailer) leaves it for its next run.
    assert!(err.is_temporary() && !err.is_bad_address(), "{err}");
    let counters = mailer.counters();
    assert_eq!(counters.retries(Cause::Temporary), 3, "{counters}");
    assert_eq!(counters.failed(Cause::Temporary), 4, "{counters}");
    assert!(stored(&server).is_empty());
    // RSET kept the connection: the next message goes through it.
    assert!(conn.is_open());
}

/// 450 is on the original's bad-address list (some greylisting servers send it instead of
/// 451): it stays a typed bad address, not retried in the run, but temporary, so
/// expiration-mailer tries again on its next run instead of marking the address bad.
#[tokio::test]
async fn a_450_stays_a_bad_address_that_is_temporary() {
    let server = start_server(&["rcpt:reply=450"]).await;
    let mailer = real_mailer(config(&server));
    let mut conn = mailer.connect().await.unwrap();
    let err = conn
        .send_mail(&to(&["busy@example.com"]), "busy", "x")
        .await
        .expect_err("refused");
    assert!(
        matches!(err, Error::BadAddress { code: 450, .. }),
        "{err:?}"
    );
    assert!(err.is_temporary() && !err.is_permanent_bad_address());
    let counters = mailer.counters();
    assert_eq!(counters.retries_total(), 0, "{counters}");
    assert!(counters.sleeps.is_empty());
}

/// A 4xx greeting (not 421) says "later" too: the mailer drops that connection and opens
/// another on the reconnect schedule.
#[tokio::test]
async fn a_4xx_greeting_is_retried_with_a_new_connection() {
    let server = start_server(&["connect:reply=451:first=2"]).await;
    let mailer = real_mailer(config(&server));
    let mut conn = mailer.connect().await.expect("the third greeting is a 220");
    let sent = conn
        .send_mail(&to(&["hello@example.com"]), "greeted", "x")
        .await
        .unwrap();
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    let counters = mailer.counters();
    assert_eq!(counters.connect_failures(Cause::Temporary), 2, "{counters}");
    assert_eq!(counters.reconnects, 1, "{counters}");
    // Attempt 1 at once (i = 0), attempt 2 after base.
    let sleeps = counters.sleeps;
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    assert_eq!(
        (sleeps[0].kind, sleeps[0].index),
        (BackoffKind::Reconnect, 1)
    );
    conn.close().await.unwrap();
}
