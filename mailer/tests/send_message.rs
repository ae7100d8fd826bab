//! What reaches the server: the headers and body as stored by mail-test-srv, over plain
//! text, implicit TLS and STARTTLS (with the server's generated CA as extra root), with
//! AUTH; and nothing at all in dry-run mode.

mod support;

use std::sync::atomic::Ordering;

use mail_parser::MessageParser;
use mail_test_srv::{AuthMode, CertSource, TlsMode as ServerTls};
use mailer::{Cause, Error, Step, TlsMode};
use support::*;

#[tokio::test]
async fn stored_message_has_every_promised_header_and_the_clock_date() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(mailer_config(&server), &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let body = "Hello café,\n.leading dot and = sign\nline three\n";
    let sent = conn
        .send_mail(
            &to(&["one@example.com", "two@example.org"]),
            "Your certificate ⏰ expires",
            body,
        )
        .await
        .unwrap();
    conn.close().await.unwrap();

    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(m.from, "mailer@example.com");
    assert_eq!(m.recipients, ["one@example.com", "two@example.org"]);
    let raw = String::from_utf8(m.data.to_vec()).unwrap();
    assert!(raw.is_ascii(), "7-bit on the wire:\n{raw}");
    assert!(
        raw.contains("Date: Mon, 02 Jan 2006 15:04:05 +0000"),
        "{raw}"
    );
    assert!(raw.contains("MIME-Version: 1.0"), "{raw}");
    assert!(
        raw.contains("Content-Transfer-Encoding: quoted-printable"),
        "{raw}"
    );
    assert!(
        raw.to_ascii_lowercase()
            .contains("content-type: text/plain; charset=utf-8"),
        "{raw}"
    );

    let parsed = MessageParser::default().parse(m.data.as_ref()).unwrap();
    assert_eq!(parsed.subject(), Some("Your certificate ⏰ expires"));
    assert_eq!(parsed.message_id(), Some(bare(&sent.message_id).as_str()));
    assert!(
        sent.message_id.ends_with("@example.com>"),
        "{}",
        sent.message_id
    );
    let from = parsed.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.name(), Some("Mailer Test"));
    assert_eq!(from.address(), Some("mailer@example.com"));
    let to: Vec<_> = parsed
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["one@example.com", "two@example.org"]);
    assert_eq!(
        parsed.date().map(|d| d.to_timestamp()),
        Some(NOW_SECS as i64)
    );
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert_eq!(
        text.trim_end(),
        body.trim_end(),
        "dot-stuffing and QP undone"
    );
}

#[tokio::test]
async fn dry_run_sends_nothing_and_counts() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        dry_run: true,
        ..mailer_config(&server)
    };
    let mailer = mailer(config, &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    assert!(!conn.is_open());
    let sent = conn
        .send_mail(&to(&["user@example.com"]), "s", "b")
        .await
        .unwrap();
    assert_eq!(sent.attempts, 0);
    // Bad input is still refused in a dry run: it previews what a real run would do.
    let err = conn
        .send_mail(&to(&["josé@example.com"]), "s", "b")
        .await
        .unwrap_err();
    assert!(err.is_bad_address());
    conn.close().await.unwrap();
    assert_eq!(mailer.counters().dry_run, 1);
    assert_eq!(mailer.counters().sent, 0);
    let stats = server.state().stats();
    assert_eq!(stats.connections_total.load(Ordering::Relaxed), 0);
}

/// A TLS server with a generated CA; returns it and the CA file.
async fn tls_server(
    mode: ServerTls,
    faults: &[&str],
    auth: AuthMode,
) -> (mail_test_srv::ServerHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = mail_test_srv::start(mail_test_srv::Config {
        tls: mode,
        cert: Some(CertSource::Generate {
            dir: dir.path().to_owned(),
        }),
        auth,
        ..server_config(faults)
    })
    .await
    .unwrap();
    (server, dir)
}

async fn send_over_tls(server_mode: ServerTls, mode: TlsMode) {
    let auth = AuthMode::Required {
        user: "alice".into(),
        password: "s3cret".into(),
    };
    // The close under TLS shows as UnexpectedEof; it must be retried like a plain close.
    let (server, dir) = tls_server(server_mode, &["mail:close:first=2"], auth).await;
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        server: "localhost".to_owned(),
        tls: mode,
        root_ca: Some(dir.path().join("ca.pem")),
        credentials: Some(("alice".into(), "s3cret".into())),
        ..mailer_config(&server)
    };
    let mailer = mailer(config, &sleeper);
    let mut conn = mailer.connect().await.expect("TLS + AUTH");
    let sent = conn
        .send_mail(&to(&["user@example.com"]), "over TLS", "secret body")
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(sent.attempts, 3);
    assert_eq!(mailer.counters().failed(Cause::Closed), 2);
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].tls);
    assert_eq!(stored[0].auth_user.as_deref(), Some("alice"));
}

#[tokio::test]
async fn implicit_tls_with_auth_and_a_close_under_tls() {
    send_over_tls(ServerTls::Implicit, TlsMode::Implicit).await;
}

#[tokio::test]
async fn starttls_with_auth_and_a_close_under_tls() {
    send_over_tls(ServerTls::StartTls, TlsMode::StartTls).await;
}

#[tokio::test]
async fn untrusted_certificate_and_wrong_password_fail_at_once() {
    let auth = AuthMode::Required {
        user: "alice".into(),
        password: "s3cret".into(),
    };
    let (server, dir) = tls_server(ServerTls::Implicit, &[], auth).await;
    let sleeper = VirtualSleeper::new();
    // No root CA: the generated certificate is not trusted, and that is not retried.
    let config = mailer::Config {
        server: "localhost".to_owned(),
        tls: TlsMode::Implicit,
        ..mailer_config(&server)
    };
    let err = mailer(config.clone(), &sleeper)
        .connect()
        .await
        .expect_err("untrusted");
    assert!(
        matches!(
            err,
            Error::Smtp {
                step: Step::Connect,
                ..
            }
        ),
        "{err}"
    );
    // Trusted, but the wrong password: 535, not retried either.
    let config = mailer::Config {
        root_ca: Some(dir.path().join("ca.pem")),
        credentials: Some(("alice".into(), "wrong".into())),
        ..config
    };
    let err = mailer(config, &sleeper)
        .connect()
        .await
        .expect_err("wrong password");
    assert!(
        matches!(
            err,
            Error::Rejected {
                step: Step::Auth,
                code: 535,
                ..
            }
        ),
        "{err}"
    );
    assert!(sleeper.sleeps().is_empty(), "no retry loop for either");
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_refused() {
    let server = start_server(&[]).await;
    let sleeper = VirtualSleeper::new();
    let config = mailer::Config {
        tls: TlsMode::StartTls,
        ..mailer_config(&server)
    };
    let err = mailer(config, &sleeper).connect().await.unwrap_err();
    assert!(err.to_string().contains("does not offer STARTTLS"), "{err}");
}

#[tokio::test]
async fn bad_configuration_is_refused_by_new() {
    let clock = std::sync::Arc::new(mailer::SystemClock);
    let base = mailer::Config {
        from: "mailer@example.com".into(),
        ..mailer::Config::default()
    };
    let cases = [
        mailer::Config {
            from: String::new(),
            ..base.clone()
        },
        mailer::Config {
            from: "not an address".into(),
            ..base.clone()
        },
        mailer::Config {
            from: "bøt@example.com".into(),
            ..base.clone()
        },
        mailer::Config {
            tls: TlsMode::Implicit,
            root_ca: Some("/nonexistent/ca.pem".into()),
            ..base.clone()
        },
        mailer::Config {
            step_timeout: std::time::Duration::ZERO,
            ..base.clone()
        },
    ];
    for config in cases {
        let shown = format!("{config:?}");
        assert!(
            mailer::Mailer::new(config, clock.clone()).is_err(),
            "accepted {shown}"
        );
    }
    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "hello").unwrap();
    let err = mailer::Mailer::new(
        mailer::Config {
            tls: TlsMode::StartTls,
            root_ca: Some(not_pem.path().to_owned()),
            ..base
        },
        clock,
    )
    .unwrap_err();
    assert!(matches!(err, Error::RootCa { .. }), "{err}");
}
