//! The server gone away, for real (mail-test-srv's outages): refused connects and a
//! blackhole (accepted, never greeted) follow the reconnect backoff, and the message arrives
//! once when the server is back. Real time, one-second outages; the timing checks are the
//! schedule the mailer asked for and lower bounds.

mod support;

use std::sync::Arc;
use std::time::Duration;

use mail_test_srv::ServerHandle;
use mail_test_srv::outage::Mode;
use mailer::{BackoffKind, Cause, Config, FixedClock, Mailer, backoff_before_jitter};
use support::*;

const OUTAGE: Duration = Duration::from_secs(1);

fn real_mailer(server: &ServerHandle, step_timeout: Duration) -> Mailer {
    let config = Config {
        reconnect_base: Duration::from_millis(100),
        reconnect_max: Duration::from_secs(2),
        step_timeout,
        ..mailer_config(server)
    };
    Mailer::new(config, Arc::new(FixedClock(now()))).expect("valid mailer config")
}

/// Every sleep was a reconnect sleep asked for as base·2^(i-1) capped, ±20%, and lasted
/// at least that long; returns their total.
fn assert_reconnect_schedule(mailer: &Mailer) -> Duration {
    let config = mailer.config();
    let sleeps = mailer.counters().sleeps;
    assert!(!sleeps.is_empty());
    for sleep in &sleeps {
        assert_eq!(sleep.kind, BackoffKind::Reconnect, "{sleeps:?}");
        let plain =
            backoff_before_jitter(sleep.index, config.reconnect_base, config.reconnect_max, 2);
        assert!(
            sleep.planned >= plain.mul_f64(0.8) && sleep.planned <= plain.mul_f64(1.2),
            "reconnect {} asked {:?}, schedule {plain:?} ±20% (all: {sleeps:?})",
            sleep.index,
            sleep.planned
        );
        assert!(
            sleep.slept + Duration::from_millis(2) >= sleep.planned,
            "{sleep:?}"
        );
    }
    sleeps.iter().map(|s| s.slept).sum()
}

/// The server's outage events: (action, definition) in order.
fn outage_events(server: &ServerHandle) -> Vec<String> {
    let page = server.state().faults().events().since(0);
    page.events
        .iter()
        .filter(|e| e.stage == "outage")
        .map(|e| e.action.clone())
        .collect()
}

/// Starts an outage of `mode` on a fresh server, then connects and sends one message to
/// `rcpt` through it with a mailer of this step timeout. Checks that the message is stored
/// exactly once; returns the server, the mailer and how long the delivery took.
async fn deliver_through_outage(
    mode: Mode,
    step_timeout: Duration,
    rcpt: &str,
) -> (ServerHandle, Mailer, Duration) {
    let server = start_server(&[]).await;
    let mailer = real_mailer(&server, step_timeout);
    server.state().outages().begin(mode, OUTAGE);
    let started = std::time::Instant::now();
    let mut conn = mailer
        .connect()
        .await
        .expect("connects once the outage ends");
    let sent = conn
        .send_mail(&to(&[rcpt]), "after the outage", "x")
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(message_ids(&server), [bare(&sent.message_id)]);
    conn.close().await.unwrap();
    (server, mailer, took)
}

#[tokio::test]
async fn refused_connects_back_off_until_the_listener_is_back() {
    let (server, mailer, took) =
        deliver_through_outage(Mode::Refuse, Duration::from_secs(10), "back@example.com").await;
    let counters = mailer.counters();
    assert!(counters.connect_failures(Cause::Refused) >= 2, "{counters}");
    assert_eq!(counters.reconnects, 1, "{counters}");
    let slept = assert_reconnect_schedule(&mailer);
    // Nothing listened for a second: the mailer waited it out by sleeping, not spinning.
    assert!(
        took >= Duration::from_millis(950),
        "connected after {took:?}"
    );
    assert!(slept >= Duration::from_millis(500), "slept {slept:?}");
    assert_eq!(outage_events(&server), ["start", "end"]);
}

#[tokio::test]
async fn an_open_session_cut_by_an_outage_is_resent_after_reconnecting() {
    let server = start_server(&[]).await;
    let mailer = real_mailer(&server, Duration::from_secs(10));
    let mut conn = mailer.connect().await.unwrap();
    let before = conn
        .send_mail(&to(&["before@example.com"]), "before", "x")
        .await
        .unwrap();
    server.state().outages().begin(Mode::Refuse, OUTAGE);
    // The cut (an RST) reaches the idle session first, so the next MAIL meets a dead socket.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = conn
        .send_mail(&to(&["after@example.com"]), "after", "y")
        .await
        .expect("resent once the server is back");
    assert_eq!(
        message_ids(&server),
        [bare(&before.message_id), bare(&after.message_id)]
    );
    let counters = mailer.counters();
    assert!(counters.connect_failures(Cause::Refused) >= 1, "{counters}");
    assert!(counters.retries_total() >= 1, "{counters}");
    assert_reconnect_schedule(&mailer);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_blackhole_times_out_the_greeting_and_reconnects() {
    // A short step timeout: the greeting that never comes is given up after 300 ms.
    let (server, mailer, took) = deliver_through_outage(
        Mode::Blackhole,
        Duration::from_millis(300),
        "hole@example.com",
    )
    .await;
    assert!(took >= Duration::from_millis(950));
    let counters = mailer.counters();
    assert!(counters.connect_failures(Cause::Timeout) >= 1, "{counters}");
    assert_reconnect_schedule(&mailer);
    assert_eq!(outage_events(&server), ["start", "end"]);
}
