//! TLS in each mode with lettre as the client, trusting the generated `ca.pem`; and the
//! STARTTLS rules (RFC 3207) checked byte by byte with a raw rustls client.

mod common;

use std::path::Path;

use common::{Client, start, stored};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mail_test_srv::{AuthMode, CertSource, Config, ServerHandle, TlsMode};
use tokio::net::TcpStream;

fn message(subject: &str) -> Message {
    Message::builder()
        .from("Sender <a@b.example>".parse().unwrap())
        .to("x@y.example".parse().unwrap())
        .subject(subject)
        .body(String::from("hello over TLS"))
        .unwrap()
}

fn tls_config(mode: TlsMode, dir: &Path) -> Config {
    Config {
        tls: mode,
        cert: Some(CertSource::Generate {
            dir: dir.to_owned(),
        }),
        ..Config::ephemeral()
    }
}

fn lettre_tls(dir: &Path) -> TlsParameters {
    let pem = std::fs::read(dir.join("ca.pem")).expect("ca.pem written");
    TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(&pem).unwrap())
        .build_rustls()
        .unwrap()
}

fn transport(
    server: &ServerHandle,
    tls: Tls,
) -> lettre::transport::smtp::AsyncSmtpTransportBuilder {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .tls(tls)
}

#[tokio::test]
async fn lettre_plain() {
    let server = start(Config::ephemeral()).await;
    let mailer = transport(&server, Tls::None).build();
    mailer.send(message("plain")).await.expect("sent");
    let mail = stored(&server);
    assert_eq!(mail[0].recipients, ["x@y.example"]);
    assert!(!mail[0].tls);
}

#[tokio::test]
async fn lettre_starttls_with_required_auth_and_require_tls() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        auth: AuthMode::Required {
            user: "u".to_owned(),
            password: "p".to_owned(),
        },
        require_tls: true,
        ..tls_config(TlsMode::StartTls, dir.path())
    })
    .await;
    let mailer = transport(&server, Tls::Required(lettre_tls(dir.path())))
        .credentials(Credentials::new("u".to_owned(), "p".to_owned()))
        .build();
    mailer.send(message("starttls")).await.expect("sent");
    let mail = stored(&server);
    assert!(mail[0].tls);
    assert_eq!(mail[0].auth_user.as_deref(), Some("u"));
    // The transcript shows the STARTTLS session line by line, and what was negotiated.
    let session = common::ended_session(&server, mail[0].connection).await;
    common::assert_lines_in_order(
        &session.text(),
        &[
            "S: 220 localhost ESMTP",
            "C: EHLO ",
            "S: 250 STARTTLS",
            "C: STARTTLS",
            "S: 220 2.0.0 Ready to start TLS",
            "*: TLS TLSv1_3 TLS13_",
            "C: EHLO ",
            "S: 250 AUTH PLAIN LOGIN",
            "C: AUTH PLAIN ",
            "S: 235 2.7.0 authentication successful",
            "C: MAIL FROM:<a@b.example>",
            "S: 250 2.1.0 Ok",
            "C: RCPT TO:<x@y.example>",
            "S: 250 2.1.5 Ok",
            "C: DATA",
            "S: 354 ",
            "C: <",
            "S: 250 2.0.0 Ok: queued as 1",
            "C: QUIT",
            "S: 221 2.0.0 Bye",
        ],
    );
    let tls = session.tls.as_ref().expect("TLS recorded");
    assert_eq!(tls.version, "TLSv1_3");
    assert_eq!(tls.sni.as_deref(), Some("localhost"));
    assert_eq!(session.auth_user.as_deref(), Some("u"));
    assert_eq!(
        session.outcome,
        Some(mail_test_srv::transcript::Outcome::ClientQuit)
    );

    let wrong = transport(&server, Tls::Required(lettre_tls(dir.path())))
        .credentials(Credentials::new("u".to_owned(), "bad".to_owned()))
        .build();
    let err = wrong.send(message("refused")).await.expect_err("535");
    assert_eq!(err.status().map(u16::from), Some(535), "{err}");
}

#[tokio::test]
async fn lettre_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(tls_config(TlsMode::Implicit, dir.path())).await;
    let mailer = transport(&server, Tls::Wrapper(lettre_tls(dir.path()))).build();
    mailer.send(message("implicit")).await.expect("sent");
    assert!(stored(&server)[0].tls);
}

#[tokio::test]
async fn certificate_from_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = mail_test_srv::tls::generate(dir.path()).unwrap();
    let server = start(Config {
        tls: TlsMode::Implicit,
        cert: Some(CertSource::Files {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        ..Config::ephemeral()
    })
    .await;
    let mailer = transport(&server, Tls::Wrapper(lettre_tls(dir.path()))).build();
    mailer.send(message("files")).await.expect("sent");
}

#[tokio::test]
async fn unreadable_certificate_is_a_clear_error() {
    let result = mail_test_srv::start(Config {
        tls: TlsMode::StartTls,
        cert: Some(CertSource::Files {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        }),
        ..Config::ephemeral()
    })
    .await;
    let err = result.expect_err("no such file");
    assert!(
        format!("{err:#}").contains("/nonexistent/cert.pem"),
        "{err:#}"
    );
}

fn rustls_client(dir: &Path) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(dir.join("ca.pem")).expect("ca.pem written");
    tokio_rustls::TlsConnector::from(common::trusting(&pem))
}

#[tokio::test]
async fn starttls_drops_pipelined_plaintext_and_resets_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        auth: AuthMode::AcceptAny,
        require_tls: true,
        ..tls_config(TlsMode::StartTls, dir.path())
    })
    .await;
    let mut c = Client::connect(&server).await;
    let ehlo = c.expect("EHLO me", 250).await;
    assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "AUTH hidden before TLS: {ehlo:?}"
    );
    c.expect("MAIL FROM:<a@b>", 530).await;
    c.expect("AUTH PLAIN AHUAcA==", 530).await;
    // An attacker's command injected after STARTTLS must not be executed under TLS.
    c.send(b"STARTTLS\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await.unwrap().code, 220);
    let tcp: TcpStream = c.into_inner();
    let tls = rustls_client(dir.path())
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("handshake");
    let mut c = Client::new(tls);
    // Session reset: MAIL needs a new EHLO; the first reply we get is for our command, not the NOOP.
    c.expect("MAIL FROM:<a@b>", 503).await;
    let ehlo = c.expect("EHLO me", 250).await;
    assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    c.expect("STARTTLS", 503).await;
    c.expect("AUTH PLAIN AHUAcA==", 235).await;
    assert_eq!(c.send_mail("a@b", &["x@y"], "secret\r\n").await.code, 250);
    assert!(stored(&server)[0].tls);
}

#[tokio::test]
async fn starttls_not_offered_without_tls() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("STARTTLS", 502).await;
}
