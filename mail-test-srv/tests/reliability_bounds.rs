//! Bounds that keep a session from holding its slot, or memory, forever: the error limit
//! (421 after `max_errors` refused commands, AUTH guessing included), the session lifetime
//! (`max_session_time`), a `delay` fault that ends when its client leaves, a `hang` that ends
//! when its client goes quiet, and the in-flight DATA budget (`max_inflight_bytes`).
//!
//! Wall-clock time with short limits (1-2 s): what is tested is what the real sockets see.

mod common;

use std::time::{Duration, Instant};

use common::{Client, start, stored};
use mail_test_srv::{AuthMode, Config, Limits, ServerHandle};

fn limits(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::ephemeral()
    }
}

/// Waits until the server has no open session (or panics after 5 s).
async fn all_sessions_end(server: &ServerHandle) -> Duration {
    let start = Instant::now();
    while server
        .state()
        .stats()
        .connections_open
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a session still holds its slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

async fn expect_421_and_close(c: &mut Client<tokio::net::TcpStream>, enhanced: &str) {
    let reply = c.reply().await.expect("a 421");
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with(enhanced), "{reply:?}");
    assert!(
        c.read_to_end().await.unwrap().is_empty(),
        "closed after the 421"
    );
}

#[tokio::test]
async fn garbage_past_the_error_limit_gets_421_and_a_close() {
    let server = start(limits(Limits {
        max_errors: 5,
        ..Limits::default()
    }))
    .await;
    let mut c = Client::ehlo(&server).await;
    for _ in 0..5 {
        c.expect("GARBAGE", 500).await;
    }
    c.send(b"GARBAGE\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 500, "the sixth is answered");
    expect_421_and_close(&mut c, "4.7.0").await;
}

#[tokio::test]
async fn auth_guessing_ends_at_the_error_limit() {
    let server = start(Config {
        auth: AuthMode::Required {
            user: "u".into(),
            password: "right".into(),
        },
        ..limits(Limits {
            max_errors: 20,
            ..Limits::default()
        })
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    // base64("\0u\0wrong")
    for _ in 0..20 {
        c.expect("AUTH PLAIN AHUAd3Jvbmc=", 535).await;
    }
    c.send(b"AUTH PLAIN AHUAd3Jvbmc=\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 535);
    expect_421_and_close(&mut c, "4.7.0").await;
    // A fresh connection with the right password still gets in.
    let mut c = Client::ehlo(&server).await;
    c.expect("AUTH PLAIN AHUAcmlnaHQ=", 235).await;
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime_however_busy() {
    let server = start(limits(Limits {
        max_session_time: Duration::from_secs(1),
        ..Limits::default()
    }))
    .await;
    let mut c = Client::ehlo(&server).await;
    let started = Instant::now();
    // Busy all along: a NOOP every 100 ms never lets the idle timeout fire.
    let reply = loop {
        let reply = c.cmd("NOOP").await;
        if reply.code != 250 {
            break reply;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never cut");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reply.code, 421, "{reply:?}");
    assert!(reply.text().starts_with("4.4.2"), "{reply:?}");
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(
        server
            .state()
            .stats()
            .session_time_limits
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_delay_ends_when_its_client_leaves() {
    let server = start(Config {
        faults: vec![common::rule("mail:delay=1h")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"MAIL FROM:<a@example.com>\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(c);
    let took = all_sessions_end(&server).await;
    assert!(
        took < Duration::from_secs(2),
        "slot held {took:?} after the client left"
    );
}

#[tokio::test]
async fn a_delay_keeps_what_the_client_pipelined_meanwhile() {
    let server = start(Config {
        faults: vec![common::rule("ehlo:delay=300ms")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::connect(&server).await;
    c.send(b"EHLO me\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Sent while the EHLO reply is delayed: read by the watcher, then handled in order.
    c.send(b"NOOP\r\nQUIT\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);
    assert_eq!(c.reply().await.unwrap().code, 250);
    assert_eq!(c.reply().await.unwrap().code, 221);
}

#[tokio::test]
async fn a_hang_ends_when_its_client_goes_quiet_for_the_idle_timeout() {
    let server = start(Config {
        faults: vec![common::rule("mail:hang")],
        ..limits(Limits {
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        })
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"MAIL FROM:<a@example.com>\r\n").await;
    let started = Instant::now();
    // A hung server never answers: no reply at all, then the connection is dropped.
    assert!(c.read_to_end().await.unwrap_or_default().is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "{took:?}"
    );
    all_sessions_end(&server).await;
}

/// Starts a transaction and sends `kib` KiB of message lines without the final dot.
async fn upload(server: &ServerHandle, kib: usize) -> Client<tokio::net::TcpStream> {
    let mut c = Client::ehlo(server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 250).await;
    c.expect("DATA", 354).await;
    let line = format!("{}\r\n", "x".repeat(1022));
    c.send(line.repeat(kib).as_bytes()).await;
    c
}

async fn wait_in_flight(server: &ServerHandle, at_least: usize) {
    let start = Instant::now();
    while server.state().inflight_bytes() < at_least {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "in flight: {}",
            server.state().inflight_bytes()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn data_past_the_in_flight_budget_gets_452_then_451() {
    let server = start(limits(Limits {
        max_inflight_bytes: 64 * 1024,
        ..Limits::default()
    }))
    .await;
    // Two unfinished uploads of 30 KiB: each buffer has doubled to 32 KiB, 64 KiB in all.
    let mut a = upload(&server, 30).await;
    wait_in_flight(&server, 32 * 1024).await;
    let mut b = upload(&server, 30).await;
    wait_in_flight(&server, 64 * 1024).await;
    // A third finds the budget spent: 452 before 354, and the session goes on.
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 250).await;
    let reply = c.expect("DATA", 452).await;
    assert!(reply.text().starts_with("4.3.1"), "{reply:?}");
    // The first two finish and are stored; their bytes are given back.
    for upload in [&mut a, &mut b] {
        upload.send(b".\r\n").await;
        assert_eq!(upload.reply().await.unwrap().code, 250);
    }
    assert_eq!(server.state().inflight_bytes(), 0);
    c.expect("DATA", 354).await;
    c.send(b"Subject: now\r\n\r\nok\r\n.\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);
    assert_eq!(stored(&server).len(), 3);
}

#[tokio::test]
async fn an_upload_that_outgrows_the_budget_is_read_to_its_end_and_gets_451() {
    let server = start(limits(Limits {
        max_inflight_bytes: 64 * 1024,
        ..Limits::default()
    }))
    .await;
    let mut big = upload(&server, 200).await;
    big.send(b".\r\n").await;
    let reply = big.reply().await.unwrap();
    assert_eq!(reply.code, 451, "{reply:?}");
    assert!(reply.text().starts_with("4.3.1"), "{reply:?}");
    assert!(stored(&server).is_empty());
    assert_eq!(server.state().inflight_bytes(), 0);
    // The session goes on, and a message that fits is taken.
    let reply = big
        .send_mail(
            "a@example.com",
            &["b@example.com"],
            "Subject: small\r\n\r\nok\r\n",
        )
        .await;
    assert_eq!(reply.code, 250);
}
