//! A server whose replies are not SMTP: a bare LF ends a line, a line has no reply code.
//! The mailer fails at once with a protocol error naming what it received, instead of
//! waiting out the step timeout ("connect timed out") or quoting its parser (`error Tag`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailer::{Config, Error, Mailer, Step, SystemClock};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A server on 127.0.0.1 that sends `greeting`, answers EHLO properly and MAIL with
/// `mail_reply`, and anything else with 250, on every connection.
async fn fake(greeting: &'static [u8], mail_reply: &'static [u8]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(greeting).await?;
                while let Some(line) = lines.next_line().await? {
                    let reply: &[u8] = match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                        Some("EHLO") => b"250-fake\r\n250 8BITMIME\r\n",
                        Some("MAIL") => mail_reply,
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await?;
                }
                Ok::<(), std::io::Error>(())
            });
        }
    });
    addr
}

/// A mailer for `addr` that would wait 20 s for a reply and does not reconnect, so a
/// mailer that waits for the timeout makes the test fail (slowly) rather than hang.
fn mailer(addr: SocketAddr) -> Mailer {
    let config = Config {
        server: "127.0.0.1".to_owned(),
        port: addr.port(),
        from: "mailer@example.com".to_owned(),
        step_timeout: Duration::from_secs(20),
        max_reconnects: 0,
        ..Config::default()
    };
    Mailer::new(config, Arc::new(SystemClock)).expect("config")
}

fn assert_protocol(err: &Error, step: Step, pieces: &[&str]) {
    let text = err.to_string();
    assert!(
        matches!(err, Error::Protocol { step: s, .. } if *s == step),
        "a protocol error at {step}, got {err:?}"
    );
    for piece in pieces {
        assert!(text.contains(piece), "{piece:?} not in {text:?}");
    }
    assert!(!text.contains("error Tag"), "{text}");
}

#[tokio::test]
async fn a_greeting_ending_in_a_bare_lf_fails_at_once() {
    let addr = fake(b"220 hi\n", b"250 ok\r\n").await;
    let err = mailer(addr).connect().await.expect_err("not SMTP");
    assert_protocol(&err, Step::Connect, &["bare LF", r#"received "220 hi\n""#]);
}

#[tokio::test]
async fn a_reply_without_a_code_says_what_was_received() {
    let addr = fake(b"xyz\r\n", b"250 ok\r\n").await;
    let err = mailer(addr).connect().await.expect_err("not SMTP");
    assert_protocol(
        &err,
        Step::Connect,
        &["three-digit reply code", r#"received "xyz\r\n""#],
    );
}

#[tokio::test]
async fn a_bare_lf_in_the_middle_of_a_session_fails_that_send_at_once() {
    let addr = fake(b"220 fine\r\n", b"250 ok\n").await;
    let mailer = mailer(addr);
    let mut conn = mailer.connect().await.expect("a good greeting");
    let err = conn
        .send_mail(&["a@example.com".to_owned()], "s", "b")
        .await
        .expect_err("not SMTP");
    assert_protocol(&err, Step::Mail, &["bare LF", r#"received "250 ok\n""#]);
    assert!(!conn.is_open(), "a session out of step is not reused");
}
