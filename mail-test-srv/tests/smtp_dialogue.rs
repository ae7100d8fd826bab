//! One dialogue per verb and per protocol error, spoken as raw bytes to a live server.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Client, start, stored};
use mail_test_srv::{Config, Limits, ServerHandle};

/// A server with these limits, otherwise as `Config::ephemeral()`.
async fn start_with(limits: Limits) -> ServerHandle {
    start(Config {
        limits,
        ..Config::ephemeral()
    })
    .await
}

#[tokio::test]
async fn greeting_and_ehlo_advertise_extensions() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::connect(&server).await;
    let ehlo = c.expect("EHLO client.example", 250).await;
    assert_eq!(ehlo.lines[0], "localhost");
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE 10485760",
        "ENHANCEDSTATUSCODES",
        // Accepted by default, as clients that always authenticate need.
        "AUTH PLAIN LOGIN",
    ] {
        assert!(
            ehlo.lines.iter().any(|l| l == ext),
            "{ext} missing in {ehlo:?}"
        );
    }
    assert!(!ehlo.lines.iter().any(|l| l.starts_with("STARTTLS")));
    let helo = c.expect("HELO client.example", 250).await;
    assert_eq!(helo.lines.len(), 1);
    c.expect("QUIT", 221).await;
    assert!(
        c.read_to_end().await.unwrap().is_empty(),
        "closed after 221"
    );
}

#[tokio::test]
async fn mail_rcpt_data_stores_unstuffed_message() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    let reply = c
        .send_mail(
            "a@b.example",
            &["x@y.example", "z@y.example"],
            "Subject: t\r\n\r\n..dot\r\nbody\r\n",
        )
        .await;
    assert_eq!(reply.code, 250, "{reply:?}");
    assert!(
        reply.text().starts_with("2.0.0"),
        "enhanced code: {reply:?}"
    );
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].from, "a@b.example");
    assert_eq!(mail[0].recipients, ["x@y.example", "z@y.example"]);
    assert_eq!(&mail[0].data[..], b"Subject: t\r\n\r\n.dot\r\nbody\r\n");
    assert!(!mail[0].tls);
    assert_eq!(mail[0].connection, 1);
}

#[tokio::test]
async fn null_sender_and_mail_parameters() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<> BODY=8BITMIME SIZE=100 SMTPUTF8", 250)
        .await;
    c.expect("RCPT TO:<postmaster>", 250).await;
    c.expect("DATA", 354).await;
    c.send("Subject: ünïcode\r\n\r\nhé\r\n.\r\n".as_bytes())
        .await;
    assert_eq!(c.reply().await.unwrap().code, 250);
    assert_eq!(stored(&server)[0].from, "");
    c.expect("MAIL FROM:<a@b> RET=FULL", 555).await;
}

#[tokio::test]
async fn rset_noop_vrfy_help() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect("RSET", 250).await;
    // The transaction is gone: RCPT is out of sequence, a new MAIL is fine.
    c.expect("RCPT TO:<x@y>", 503).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect("NOOP", 250).await;
    c.expect("NOOP anything", 250).await;
    c.expect("VRFY someone", 252).await;
    c.expect("VRFY", 501).await;
    c.expect("HELP", 214).await;
}

#[tokio::test]
async fn unknown_verb_and_bad_arguments() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    let reply = c.expect("FOO bar", 500).await;
    assert!(reply.text().starts_with("5.5.1"), "{reply:?}");
    c.expect("MAIL TO:<a@b>", 501).await;
    let reply = c.expect("MAIL FROM:<a@b", 501).await;
    assert!(
        reply.text().starts_with("5.1.7"),
        "bad sender syntax: {reply:?}"
    );
    c.expect("MAIL FROM:<a@b> SIZE=abc", 501).await;
    c.expect("EHLO", 501).await;
    c.expect("DATA now", 501).await;
    // Still serving normally.
    c.expect("MAIL FROM:<a@b>", 250).await;
    let reply = c.expect("RCPT TO:<no-domain>", 501).await;
    assert!(
        reply.text().starts_with("5.1.3"),
        "bad recipient syntax: {reply:?}"
    );
}

#[tokio::test]
async fn bad_sequence_gets_503() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::connect(&server).await;
    c.expect("MAIL FROM:<a@b>", 503).await;
    c.expect("RCPT TO:<x@y>", 503).await;
    c.expect("DATA", 503).await;
    c.expect("EHLO me", 250).await;
    c.expect("DATA", 503).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect("MAIL FROM:<a@b>", 503).await;
    c.expect("DATA", 503).await;
    let stats = server.state().stats();
    assert_eq!(stats.command_errors.load(Ordering::Relaxed), 6);
}

#[tokio::test]
async fn over_long_line_gets_500_and_session_goes_on() {
    let server = start_with(Limits {
        max_line_length: 512,
        ..Limits::default()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    let long = format!("NOOP {}\r\n", "x".repeat(600));
    c.send(long.as_bytes()).await;
    assert_eq!(c.reply().await.unwrap().code, 500);
    // A line far past the limit arriving in pieces is skipped up to its CRLF, answered once.
    c.send(&vec![b'y'; 5000]).await;
    c.send(&vec![b'z'; 5000]).await;
    c.send(b"\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 500);
    assert_eq!(c.reply().await.unwrap().code, 250);
}

#[tokio::test]
async fn too_many_recipients_gets_452() {
    let server = start_with(Limits {
        max_recipients: 2,
        ..Limits::default()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect("RCPT TO:<1@y>", 250).await;
    c.expect("RCPT TO:<2@y>", 250).await;
    let reply = c.expect("RCPT TO:<3@y>", 452).await;
    assert!(reply.text().starts_with("4.5.3"), "{reply:?}");
    c.expect("DATA", 354).await;
    c.send(b"x\r\n.\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 250);
    assert_eq!(stored(&server)[0].recipients.len(), 2);
}

#[tokio::test]
async fn oversized_message_is_read_then_refused_with_552() {
    let server = start_with(Limits {
        max_message_size: 1000,
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let ehlo = c.expect("EHLO me", 250).await;
    assert!(ehlo.lines.iter().any(|l| l == "SIZE 1000"));
    c.expect("MAIL FROM:<a@b> SIZE=1001", 552).await;
    c.expect("MAIL FROM:<a@b> SIZE=1000", 250).await;
    c.expect("RCPT TO:<x@y>", 250).await;
    c.expect("DATA", 354).await;
    for _ in 0..30 {
        c.send(&[b"0123456789".repeat(10).as_slice(), b"\r\n"].concat())
            .await;
    }
    c.send(b".\r\n").await;
    let reply = c.reply().await.unwrap();
    assert_eq!(reply.code, 552, "{reply:?}");
    assert!(stored(&server).is_empty());
    // The session is usable afterwards.
    c.expect("MAIL FROM:<a@b>", 250).await;
}

#[tokio::test(start_paused = true)]
async fn silent_client_gets_421_after_idle_timeout() {
    let server = start_with(Limits {
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let started = tokio::time::Instant::now();
    // Untimed: under paused time the client's own timeout would fire first.
    let reply = c.reply_untimed().await.unwrap();
    assert_eq!(reply.code, 421);
    assert!(reply.text().starts_with("4.4.2"), "{reply:?}");
    assert!(started.elapsed() >= Duration::from_secs(60));
    assert!(c.read_to_end().await.unwrap().is_empty());
    let stats = server.state().stats();
    assert_eq!(stats.idle_timeouts.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn connection_over_the_limit_gets_421() {
    let server = start_with(Limits {
        max_connections: 1,
        ..Limits::default()
    })
    .await;
    let mut first = Client::connect(&server).await;
    let mut second = Client::connect_raw(&server).await;
    let reply = second.reply().await.unwrap();
    assert_eq!(reply.code, 421);
    assert!(reply.text().starts_with("4.7.0"), "{reply:?}");
    first.expect("NOOP", 250).await;
    first.expect("QUIT", 221).await;
    drop(first);
    // Once the first is gone a new one is served (the count drops when the session ends).
    let mut third = None;
    for _ in 0..50 {
        let mut c = Client::connect_raw(&server).await;
        if c.reply().await.unwrap().code == 220 {
            third = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    third
        .expect("served after the first left")
        .expect("NOOP", 250)
        .await;
}

#[tokio::test]
async fn shutdown_sends_421_to_open_sessions() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    let shutdown = tokio::spawn(server.shutdown());
    let reply = c.reply().await.unwrap();
    assert_eq!(reply.code, 421);
    assert!(reply.text().starts_with("4.3.0"), "{reply:?}");
    shutdown.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_counts_from_the_last_reply() {
    let server = start_with(Limits {
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let mut c = Client::connect(&server).await;
    // Activity at 40 s pushes the deadline to 100 s; the first timer (60 s) must not end it,
    // and the re-armed one must.
    tokio::time::sleep(Duration::from_secs(40)).await;
    c.expect("NOOP", 250).await;
    let started = tokio::time::Instant::now();
    let reply = c.reply_untimed().await.unwrap();
    assert_eq!(reply.code, 421, "{reply:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(59) && waited <= Duration::from_secs(61),
        "{waited:?}"
    );
}
