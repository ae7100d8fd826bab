//! `ReconnectingTransport` as a lettre `AsyncTransport`, against an in-process mail-test-srv:
//! lettre messages with an HTML part and an attachment through a server that closes 35% of
//! MAIL commands (each stored exactly once, byte for byte), a 421 resend keeping the
//! Message-ID, a bad address after RSET as a typed error on a kept session, and a
//! Message-ID added to a message that had none.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mailer::lettre::message::header::ContentType;
use mailer::lettre::message::{Attachment, MultiPart, SinglePart};
use mailer::lettre::{AsyncTransport, Message};
use mailer::{Cause, Error, ReconnectingTransport};
use support::*;

fn transport(server: &mail_test_srv::ServerHandle) -> ReconnectingTransport {
    ReconnectingTransport::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .hello_name(
            mailer::lettre::transport::smtp::extension::ClientId::Domain("client.test".to_owned()),
        )
        .reconnect_base(Duration::from_millis(5))
        .reconnect_max(Duration::from_millis(50))
        .step_timeout(Duration::from_secs(10))
        .pool_size(3)
        .build()
        .expect("valid settings")
}

/// A message with a text and an HTML alternative, a PDF-ish attachment and a custom header.
fn rich_message(n: usize) -> Message {
    let attachment = Attachment::new(format!("report-{n}.bin")).body(
        (0..=255u8).cycle().take(3000).collect::<Vec<u8>>(),
        ContentType::parse("application/octet-stream").unwrap(),
    );
    Message::builder()
        .from("Service <service@example.com>".parse().unwrap())
        .to(format!("user{n}@example.org").parse().unwrap())
        .subject(format!("Report {n}"))
        .message_id(Some(format!("<report-{n}@example.com>")))
        .header(XCampaign(format!("spring-{n}")))
        .multipart(
            MultiPart::mixed()
                .multipart(
                    MultiPart::alternative()
                        .singlepart(SinglePart::plain(format!("Report {n} attached.\n")))
                        .singlepart(SinglePart::html(format!(
                            "<p>Report <b>{n}</b> attached.</p>\n<p>.a line starting with a dot</p>"
                        ))),
                )
                .singlepart(attachment),
        )
        .unwrap()
}

/// A custom header, as services add them.
#[derive(Clone)]
struct XCampaign(String);

impl mailer::lettre::message::header::Header for XCampaign {
    fn name() -> mailer::lettre::message::header::HeaderName {
        mailer::lettre::message::header::HeaderName::new_from_ascii_str("X-Campaign")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(XCampaign(s.to_owned()))
    }
    fn display(&self) -> mailer::lettre::message::header::HeaderValue {
        mailer::lettre::message::header::HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[tokio::test]
async fn rich_lettre_messages_through_close_chance_35_are_stored_once_byte_for_byte() {
    let server = start_server(&["mail:close:35%"]).await;
    let transport = transport(&server);
    let messages: Vec<Message> = (0..24).map(rich_message).collect();
    let expected: HashMap<String, Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(n, m)| (format!("report-{n}@example.com"), m.formatted()))
        .collect();

    // Six tasks over a pool of three.
    let mut tasks = Vec::new();
    for chunk in messages.chunks(4) {
        let transport = transport.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for message in chunk {
                sent.push(transport.send(message).await.expect("delivered"));
            }
            sent
        }));
    }
    let mut attempts = 0;
    for task in tasks {
        for sent in task.await.unwrap() {
            assert!(sent.message_id.starts_with("<report-"), "{sent:?}");
            attempts += sent.attempts;
        }
    }

    let stored = stored(&server);
    let mut seen = HashMap::new();
    for m in &stored {
        let id = m.message_id.clone().expect("a Message-ID");
        *seen.entry(id.clone()).or_insert(0) += 1;
        // The server adds no header: the bytes are lettre's exactly.
        assert_eq!(
            m.data.as_ref(),
            expected[&id].as_slice(),
            "{id} differs from what lettre formatted"
        );
        let raw = String::from_utf8_lossy(&m.data);
        assert!(raw.contains("X-Campaign: spring-"), "{raw}");
        assert!(raw.contains("Content-Type: text/html"), "{raw}");
        assert!(raw.contains("Content-Disposition: attachment"), "{raw}");
    }
    assert_eq!(seen.len(), 24, "every message stored");
    assert!(
        seen.values().all(|&n| n == 1),
        "each exactly once: {seen:?}"
    );
    let counters = transport.counters();
    assert_eq!(counters.sent, 24);
    let closes = counters.retries(Cause::Closed);
    assert!(closes > 0, "35% of MAILs closed, yet no resend: {counters}");
    assert_eq!(u64::from(attempts), 24 + closes, "{counters}");
    transport.close().await;
}

#[tokio::test]
async fn a_421_after_the_content_is_resent_with_the_same_message_id() {
    let server = start_server(&["data-end:421:first=1"]).await;
    let transport = transport(&server);
    let message = Message::builder()
        .from("service@example.com".parse().unwrap())
        .to("user@example.org".parse().unwrap())
        .subject("once")
        .message_id(None) // lettre makes one up
        .body("hello\n".to_owned())
        .unwrap();
    let lettre_id = message
        .headers()
        .get_raw("Message-ID")
        .expect("lettre set one")
        .to_owned();

    let sent = transport.send(message).await.unwrap();
    assert_eq!(sent.attempts, 2);
    assert_eq!(sent.message_id, lettre_id);
    assert_eq!(message_ids(&server), [bare(&lettre_id)]);
    assert_eq!(transport.counters().retries(Cause::Reply421), 1);
}

#[tokio::test]
async fn a_bad_address_is_typed_after_rset_and_the_session_is_kept() {
    let server = start_server(&["rcpt:reply=550:to=gone@example.org"]).await;
    let transport = transport(&server);
    let to = |addr: &str| {
        Message::builder()
            .from("service@example.com".parse().unwrap())
            .to(addr.parse().unwrap())
            .subject("hi")
            .body("x\n".to_owned())
            .unwrap()
    };

    let err = transport.send(to("gone@example.org")).await.unwrap_err();
    match &err {
        Error::BadAddress { address, code, .. } => {
            assert_eq!(address, "gone@example.org");
            assert_eq!(*code, 550);
        }
        other => panic!("expected BadAddress, got {other:?}"),
    }
    assert!(err.is_permanent_bad_address());
    // The session was RSET and went back to the pool...
    assert_eq!(transport.idle_connections(), 1);
    let sent = transport.send(to("here@example.org")).await.unwrap();
    assert_eq!(sent.attempts, 1);
    // ...and carried the next message: one connection in all.
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        server
            .state()
            .stats()
            .connections_total
            .load(Ordering::Relaxed),
        1
    );
    let transcript = server
        .state()
        .sessions()
        .get(stored[0].connection)
        .unwrap()
        .text();
    assert!(transcript.contains("RSET"), "{transcript}");
}

#[tokio::test]
async fn a_message_without_message_id_gets_one_at_the_top_kept_across_resends() {
    // The first content is stored and the reply lost: the resend must carry the same id.
    let server = start_server(&["data-end:accept-close:first=1"]).await;
    let transport = transport(&server);
    let envelope = mailer::lettre::address::Envelope::new(
        Some("service@example.com".parse().unwrap()),
        vec!["user@example.org".parse().unwrap()],
    )
    .unwrap();
    let raw = b"From: service@example.com\r\nTo: user@example.org\r\nSubject: raw\r\n\r\nbody\r\n";

    let sent = transport.send_raw(&envelope, raw).await.unwrap();
    assert_eq!(sent.attempts, 2);
    assert!(
        sent.message_id.starts_with('<') && sent.message_id.ends_with("@example.com>"),
        "{}",
        sent.message_id
    );
    let stored = stored(&server);
    assert_eq!(stored.len(), 2, "at-least-once: stored, reply lost, resent");
    let expected = [
        format!("Message-ID: {}\r\n", sent.message_id).as_bytes(),
        raw.as_slice(),
    ]
    .concat();
    for m in &stored {
        assert_eq!(m.data.as_ref(), expected.as_slice());
    }

    // A lettre Message built without a Message-ID gets one the same way.
    let message = Message::builder()
        .from("service@example.com".parse().unwrap())
        .to("user@example.org".parse().unwrap())
        .subject("no id")
        .body("y\n".to_owned())
        .unwrap();
    assert!(message.headers().get_raw("Message-ID").is_none());
    let sent = transport.send(message).await.unwrap();
    assert_eq!(
        message_ids(&server).last().unwrap(),
        &bare(&sent.message_id)
    );
}

#[tokio::test]
async fn send_mail_stays_a_convenience_on_the_transport() {
    let server = start_server(&["mail:close:first=1"]).await;
    let transport = ReconnectingTransport::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .from("Expiry Bot <bot@example.com>")
        .clock(std::sync::Arc::new(mailer::FixedClock(now())))
        .reconnect_base(Duration::from_millis(5))
        .build()
        .unwrap();
    let sent = transport
        .send_mail(&to(&["a@example.org"]), "Subject", "Body\n")
        .await
        .unwrap();
    assert_eq!(sent.attempts, 2);
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    let raw = String::from_utf8_lossy(&stored[0].data);
    assert!(
        raw.contains("Date: Mon, 02 Jan 2006 15:04:05 +0000"),
        "{raw}"
    );

    // Without a sender, send_mail says so; lettre messages still go.
    let no_from = ReconnectingTransport::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .build()
        .unwrap();
    let err = no_from
        .send_mail(&to(&["a@example.org"]), "s", "b")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[tokio::test]
async fn bad_settings_are_refused_at_build() {
    for (builder, needle) in [
        (
            ReconnectingTransport::builder_dangerous("127.0.0.1").pool_size(0),
            "pool_size",
        ),
        (ReconnectingTransport::builder_dangerous(""), "server"),
        (
            ReconnectingTransport::builder_dangerous("127.0.0.1").port(0),
            "port",
        ),
        (
            ReconnectingTransport::builder_dangerous("127.0.0.1").step_timeout(Duration::ZERO),
            "step_timeout",
        ),
        (
            ReconnectingTransport::builder_dangerous("127.0.0.1").from("not an address"),
            "not an address",
        ),
    ] {
        let err = builder.build().unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    assert!(ReconnectingTransport::relay("").is_err());
}

#[tokio::test]
async fn a_mailer_turns_into_a_transport_for_text_messages_dated_by_its_clock() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let transport = mailer.transport(2);
    assert!(transport.test_connection().await.unwrap());
    assert_eq!(transport.idle_connections(), 1);

    let from = mailer::parse_from(&mailer.config().from).unwrap();
    let message =
        mailer::text_message(&from, &to(&["a@example.org"]), "Hi ✓", "Body\n", now()).unwrap();
    let sent = transport.send(message).await.unwrap();
    assert_eq!(sent.attempts, 1);
    assert!(sent.message_id.ends_with("@example.com>"), "{sent:?}");
    let stored = stored(&server);
    let raw = String::from_utf8_lossy(&stored[0].data);
    assert!(
        raw.contains("Date: Mon, 02 Jan 2006 15:04:05 +0000"),
        "{raw}"
    );
    assert_eq!(
        stored[0].message_id.as_deref(),
        Some(bare(&sent.message_id).as_str())
    );
    // The session test_connection opened carried it; the mailer's counters are shared.
    assert_eq!(
        server
            .state()
            .stats()
            .connections_total
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(mailer.counters().sent, 1);

    // Bad input is refused before any server sees it, as send_mail refuses it.
    let err = mailer::text_message(&from, &to(&["a b@example.org"]), "s", "b", now()).unwrap_err();
    assert!(err.is_permanent_bad_address(), "{err}");
    let err = mailer::text_message(&from, &to(&["a@example.org"]), "s\r\nBcc: x@y", "b", now())
        .unwrap_err();
    assert!(matches!(err, Error::HeaderInjection { .. }), "{err}");
}

#[tokio::test]
async fn a_dry_run_transport_sends_nothing_and_an_unreachable_server_gives_up() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let dry = mailer(
        mailer::Config {
            dry_run: true,
            ..mailer_config(&server)
        },
        &sleeper,
    )
    .transport(1);
    assert!(dry.test_connection().await.unwrap());
    let message = Message::builder()
        .from("service@example.com".parse().unwrap())
        .to("user@example.org".parse().unwrap())
        .subject("dry")
        .body("x\n".to_owned())
        .unwrap();
    let sent = dry.send(message).await.unwrap();
    assert_eq!(sent.attempts, 0);
    assert_eq!(dry.counters().dry_run, 1);
    assert_eq!(
        server
            .state()
            .stats()
            .connections_total
            .load(Ordering::Relaxed),
        0
    );

    let port = server.smtp_addr().port();
    server.shutdown().await;
    let gone = ReconnectingTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .max_reconnects(3)
        .sleeper(VirtualSleeper::new())
        .build()
        .unwrap();
    let err = gone.test_connection().await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 3, .. }), "{err}");
}
