//! The transport's lettre-style TLS and AUTH settings against an in-process mail-test-srv
//! with a generated CA: `Tls::Wrapper` (implicit TLS) and `Tls::Required` (STARTTLS) with
//! credentials, surviving closes under TLS; `Tls::Required` refusing a server that offers
//! no STARTTLS, and `Tls::Opportunistic` going on in plain text there.

mod support;

use std::time::Duration;

use mail_test_srv::{AuthMode, CertSource, TlsMode as ServerTls};
use mailer::lettre::transport::smtp::authentication::Credentials;
use mailer::lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use mailer::lettre::{AsyncTransport, Message};
use mailer::{Cause, Error, ReconnectingTransport};
use support::*;

async fn tls_server(
    mode: ServerTls,
    faults: &[&str],
) -> (mail_test_srv::ServerHandle, TlsParameters) {
    let dir = tempfile::tempdir().unwrap();
    let server = mail_test_srv::start(mail_test_srv::Config {
        tls: mode,
        cert: Some(CertSource::Generate {
            dir: dir.path().to_owned(),
        }),
        auth: AuthMode::Required {
            user: "alice".into(),
            password: "s3cret".into(),
        },
        ..server_config(faults)
    })
    .await
    .unwrap();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let parameters = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(&ca).unwrap())
        .build_rustls()
        .unwrap();
    (server, parameters)
}

fn message() -> Message {
    Message::builder()
        .from("service@example.com".parse().unwrap())
        .to("user@example.org".parse().unwrap())
        .subject("over TLS")
        .body("secret\n".to_owned())
        .unwrap()
}

async fn send_with(server_mode: ServerTls, tls: fn(TlsParameters) -> Tls) {
    let (server, parameters) = tls_server(server_mode, &["mail:close:first=2"]).await;
    let transport = ReconnectingTransport::builder_dangerous("localhost")
        .port(server.smtp_addr().port())
        .tls(tls(parameters))
        .credentials(Credentials::new("alice".into(), "s3cret".into()))
        .reconnect_base(Duration::from_millis(5))
        .build()
        .unwrap();
    let sent = transport.send(message()).await.unwrap();
    assert_eq!(sent.attempts, 3, "two closes under TLS, then through");
    assert_eq!(transport.counters().failed(Cause::Closed), 2);
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    assert!(stored[0].tls);
    assert_eq!(stored[0].auth_user.as_deref(), Some("alice"));
}

#[tokio::test]
async fn wrapper_tls_with_credentials_survives_closes() {
    send_with(ServerTls::Implicit, Tls::Wrapper).await;
}

#[tokio::test]
async fn required_starttls_with_credentials_survives_closes() {
    send_with(ServerTls::StartTls, Tls::Required).await;
}

#[tokio::test]
async fn required_starttls_refuses_a_plain_server_and_opportunistic_goes_on() {
    let server = start_server(&[]).await;
    let parameters = TlsParameters::new("localhost".to_owned()).unwrap();
    let build = |tls| {
        ReconnectingTransport::builder_dangerous("localhost")
            .port(server.smtp_addr().port())
            .tls(tls)
            .build()
            .unwrap()
    };
    let err = build(Tls::Required(parameters.clone()))
        .send(message())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("does not offer STARTTLS"), "{err}");
    assert!(stored(&server).is_empty());

    let sent = build(Tls::Opportunistic(parameters))
        .send(message())
        .await
        .unwrap();
    assert_eq!(sent.attempts, 1);
    let stored = stored(&server);
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].tls);
}
