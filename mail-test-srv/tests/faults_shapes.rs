//! Reply-shape faults on the wire: `truncate`, `garbage`, `bare-lf` and `slow=BYTES/s` each
//! reshape the reply the command would normally get, read here byte for byte from a raw
//! socket.

mod common;

use std::time::{Duration, Instant};

use common::{REPLY_TIMEOUT, assert_lines_in_order, ended_session, start_with_faults, stored};
use mail_test_srv::ServerHandle;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A raw connection whose reads return the bytes exactly as sent, line endings included.
struct Raw(BufReader<TcpStream>);

impl Raw {
    /// Connects and reads the greeting.
    async fn connect(server: &ServerHandle) -> Raw {
        let tcp = TcpStream::connect(server.smtp_addr()).await.unwrap();
        let mut raw = Raw(BufReader::new(tcp));
        let greeting = raw.line().await;
        assert!(
            greeting.starts_with(b"220 "),
            "{:?}",
            greeting.escape_ascii()
        );
        raw
    }

    async fn send(&mut self, line: &str) {
        let tcp = self.0.get_mut();
        tcp.write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    /// One line up to and including its LF.
    async fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        tokio::time::timeout(REPLY_TIMEOUT, self.0.read_until(b'\n', &mut line))
            .await
            .expect("a reply line in time")
            .unwrap();
        line
    }

    /// Sends `line` and returns its one-line reply as sent.
    async fn cmd(&mut self, line: &str) -> Vec<u8> {
        self.send(line).await;
        self.line().await
    }

    /// Everything until the server closes.
    async fn read_to_eof(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(REPLY_TIMEOUT, self.0.read_to_end(&mut rest))
            .await
            .expect("EOF in time")
            .unwrap();
        rest
    }
}

#[tokio::test]
async fn truncate_sends_half_the_reply_without_its_crlf_then_closes() {
    let server = start_with_faults(&["mail:truncate"]).await;
    let mut c = Raw::connect(&server).await;
    assert_eq!(c.cmd("HELO test.example").await, b"250 2.0.0 localhost\r\n");
    c.send("MAIL FROM:<a@example.com>").await;
    // "250 2.1.0 Ok\r\n" is 14 bytes: the first 7, then EOF.
    assert_eq!(c.read_to_eof().await, b"250 2.1");
    // The server waits for the client's FIN before it ends the session.
    drop(c);

    let record = ended_session(&server, 1).await;
    let text = record.text();
    assert_lines_in_order(
        &text,
        &[
            "C: MAIL FROM:<a@example.com>",
            "*: fault mail:truncate (truncate)",
            "*: truncate: 7 of the reply's 14 bytes sent, then close",
            "S: 250 2.1",
        ],
    );
    assert_eq!(
        record.outcome.map(|o| o.name()).as_deref(),
        Some("server-fault (truncate)")
    );
}

#[tokio::test]
async fn truncate_of_a_short_reply_never_sends_its_crlf() {
    // The greeting cut in half, at the connect stage.
    let server = start_with_faults(&["connect:truncate"]).await;
    let mut tcp = TcpStream::connect(server.smtp_addr()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(REPLY_TIMEOUT, tcp.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    let greeting = b"220 localhost ESMTP mail-test-srv\r\n";
    assert_eq!(got, &greeting[..greeting.len() / 2]);
}

#[tokio::test]
async fn garbage_replaces_the_reply_then_closes_and_the_command_still_ran() {
    let server = start_with_faults(&["data-end:garbage"]).await;
    let mut c = Raw::connect(&server).await;
    c.cmd("HELO test.example").await;
    assert_eq!(
        c.cmd("MAIL FROM:<a@example.com>").await,
        b"250 2.1.0 Ok\r\n"
    );
    assert_eq!(c.cmd("RCPT TO:<b@example.com>").await, b"250 2.1.5 Ok\r\n");
    assert!(c.cmd("DATA").await.starts_with(b"354 "));
    c.0.get_mut()
        .write_all(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        .await
        .unwrap();
    let got = c.read_to_eof().await;
    assert!(!got.is_empty());
    assert!(
        !got[..3].iter().all(u8::is_ascii_digit),
        "garbage must not look like a reply: {:?}",
        got.escape_ascii().to_string()
    );
    assert!(
        got.iter()
            .any(|b| !b.is_ascii() || b.is_ascii_control() && *b != b'\r' && *b != b'\n'),
        "non-SMTP bytes: {:?}",
        got.escape_ascii().to_string()
    );
    // The fault reshapes the reply, not the command: the message was stored.
    assert_eq!(stored(&server).len(), 1);
    drop(c);
    let record = ended_session(&server, 1).await;
    assert_lines_in_order(
        &record.text(),
        &[
            "*: fault data-end:garbage (garbage)",
            "*: garbage: sent instead of the reply",
            "S: \\x00\\xff",
        ],
    );
}

#[tokio::test]
async fn bare_lf_ends_the_reply_in_lf_only_and_the_session_goes_on() {
    let server = start_with_faults(&["mail:bare-lf"]).await;
    let mut c = Raw::connect(&server).await;
    c.cmd("HELO test.example").await;
    assert_eq!(c.cmd("MAIL FROM:<a@example.com>").await, b"250 2.1.0 Ok\n");
    assert_eq!(c.cmd("RCPT TO:<b@example.com>").await, b"250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("RSET").await, b"250 2.0.0 Ok\r\n");
    let record = ended_session_after_quit(&server, c).await;
    assert_lines_in_order(
        &record,
        &[
            "*: bare-lf: the reply's lines end in LF only",
            "S: 250 2.1.0 Ok",
            "C: RCPT TO:<b@example.com>",
        ],
    );
    // A multi-line reply: every line loses its CR.
    let server = start_with_faults(&["ehlo:bare-lf"]).await;
    let mut c = Raw::connect(&server).await;
    c.send("EHLO test.example").await;
    loop {
        let line = c.line().await;
        assert!(!line.ends_with(b"\r\n"), "{:?}", line.escape_ascii());
        if line.get(3) == Some(&b' ') {
            break;
        }
    }
    assert_eq!(c.cmd("NOOP").await, b"250 2.0.0 Ok\r\n");
}

#[tokio::test]
async fn slow_trickles_the_whole_reply_at_its_rate_and_the_session_goes_on() {
    let server = start_with_faults(&["mail:slow=10/s"]).await;
    let mut c = Raw::connect(&server).await;
    c.cmd("HELO test.example").await;
    let started = Instant::now();
    c.send("MAIL FROM:<a@example.com>").await;
    // The first byte comes after about 1/10 s, well before the whole line.
    let mut first = [0u8; 1];
    c.0.read_exact(&mut first).await.unwrap();
    let first_after = started.elapsed();
    let mut reply = first.to_vec();
    reply.extend(c.line().await);
    let took = started.elapsed();
    // 14 bytes at 10 bytes a second: 1.4 s.
    assert_eq!(reply, b"250 2.1.0 Ok\r\n");
    assert!(first_after < Duration::from_millis(700), "{first_after:?}");
    assert!(
        (Duration::from_millis(1300)..Duration::from_secs(4)).contains(&took),
        "took {took:?}"
    );
    // Only that reply: the next one comes at once.
    let started = Instant::now();
    assert_eq!(c.cmd("RCPT TO:<b@example.com>").await, b"250 2.1.5 Ok\r\n");
    assert!(started.elapsed() < Duration::from_millis(500));
    let record = ended_session_after_quit(&server, c).await;
    assert_lines_in_order(
        &record,
        &[
            "*: fault mail:slow=10/s (slow=10/s)",
            "*: slow: the reply's 14 bytes trickled at 10 B/s",
            "S: 250 2.1.0 Ok",
        ],
    );
}

#[tokio::test]
async fn slow_ends_with_the_session_lifetime() {
    let server = common::start(mail_test_srv::Config {
        faults: vec![common::rule("mail:slow=1/s")],
        limits: mail_test_srv::Limits {
            max_session_time: Duration::from_secs(2),
            ..mail_test_srv::Limits::default()
        },
        ..mail_test_srv::Config::ephemeral()
    })
    .await;
    let mut c = Raw::connect(&server).await;
    c.cmd("HELO test.example").await;
    let started = Instant::now();
    c.send("MAIL FROM:<a@example.com>").await;
    // 14 bytes at 1 a second would take 14 s; the session ends at 2 s, mid-reply.
    let got = c.read_to_eof().await;
    assert!(got.len() < 14, "{:?}", got.escape_ascii().to_string());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// QUITs and returns the session's text transcript.
async fn ended_session_after_quit(server: &ServerHandle, mut c: Raw) -> String {
    assert!(c.cmd("QUIT").await.starts_with(b"221 "));
    // The server waits for the client's FIN before it ends the session.
    drop(c);
    ended_session(server, 1).await.text()
}
