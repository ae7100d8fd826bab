//! Who gets in: the server listens on loopback unless told otherwise; with AUTH enforced no
//! mail is accepted without it and 200 wrong credentials (PLAIN and LOGIN, wrong user,
//! wrong password, near misses) are each refused with 535 while the right pair still works;
//! with TLS required, AUTH (even with the right password) and MAIL before STARTTLS get 530.

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Client, start, stored};
use mail_test_srv::{AuthMode, CertSource, Config, ServerHandle, TlsMode};
use tokio::net::TcpStream;

const USER: &str = "mailer";
const PASSWORD: &str = "correct horse";

fn plain(user: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{password}"))
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

fn required() -> AuthMode {
    AuthMode::Required {
        user: USER.to_owned(),
        password: PASSWORD.to_owned(),
    }
}

#[test]
fn both_listeners_default_to_loopback() {
    let config = Config::default();
    assert!(config.smtp_addr.ip().is_loopback(), "{}", config.smtp_addr);
    assert!(config.http_addr.ip().is_loopback(), "{}", config.http_addr);
    let help = assert_cmd::Command::new(env!("CARGO_BIN_EXE_mail-test-srv"))
        .arg("--help")
        .output()
        .expect("--help runs");
    let help = String::from_utf8_lossy(&help.stdout);
    let defaults: Vec<&str> = help
        .match_indices("[default: ")
        .map(|(i, _)| &help[i + 10..])
        .filter_map(|rest| rest.split(']').next())
        .filter(|value| value.contains(':') && value.contains('.'))
        .collect();
    // Every default that is an address (SMTP and HTTP) is on 127.0.0.1.
    assert_eq!(
        defaults.len(),
        2,
        "address defaults in --help: {defaults:?}"
    );
    assert!(
        defaults.iter().all(|a| a.starts_with("127.0.0.1:")),
        "{defaults:?}"
    );
}

/// 200 wrong attempts over 4 connections, each refused with 535; MAIL stays refused with
/// 530 on every one of them; then the right credentials work and only that mail is stored.
#[tokio::test]
async fn many_wrong_credentials_are_refused_and_the_right_one_still_works() {
    let server = start(Config {
        auth: required(),
        ..Config::ephemeral()
    })
    .await;
    let wrong: Vec<(String, String)> = (0..50)
        .flat_map(|i| {
            [
                (USER.to_owned(), format!("guess{i}")),
                (format!("{USER}{i}"), PASSWORD.to_owned()),
                (USER.to_uppercase(), PASSWORD.to_owned()),
                (
                    USER.to_owned(),
                    format!("{PASSWORD}{}", " ".repeat(i % 3 + 1)),
                ),
            ]
        })
        .collect();
    assert_eq!(wrong.len(), 200);
    let mut attempts = 0;
    // Each guess costs two refusals (535, then 530 for MAIL): 8 guesses plus the first 530
    // stay within the default error limit of 20 per session (tests/reliability_bounds.rs
    // shows what happens past it).
    for chunk in wrong.chunks(8) {
        let mut c = Client::ehlo(&server).await;
        c.expect("MAIL FROM:<a@b.example>", 530).await;
        for (i, (user, password)) in chunk.iter().enumerate() {
            if i % 2 == 0 {
                c.expect(&format!("AUTH PLAIN {}", plain(user, password)), 535)
                    .await;
            } else {
                c.expect("AUTH LOGIN", 334).await;
                c.expect(&b64(user), 334).await;
                c.expect(&b64(password), 535).await;
            }
            attempts += 1;
            // A refused AUTH leaves the session unauthenticated.
            let reply = c.cmd("MAIL FROM:<a@b.example>").await;
            assert_eq!(
                reply.code, 530,
                "after wrong {user:?}/{password:?}: {reply:?}"
            );
        }
        c.expect("QUIT", 221).await;
    }
    assert_eq!(attempts, 200);
    assert!(stored(&server).is_empty(), "nothing accepted without AUTH");

    let mut c = Client::ehlo(&server).await;
    c.expect(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)), 235)
        .await;
    let reply = c
        .send_mail("a@b.example", &["x@y.example"], "Subject: in\r\n\r\nok\r\n")
        .await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].auth_user.as_deref(), Some(USER));
}

/// RCPT and DATA cannot sneak past a refused MAIL: without AUTH there is no transaction.
#[tokio::test]
async fn no_transaction_without_auth() {
    let server = start(Config {
        auth: required(),
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@b.example>", 530).await;
    c.expect("RCPT TO:<x@y.example>", 503).await;
    c.expect("DATA", 503).await;
    // The body a client might push anyway is read as (bad) commands, never as mail.
    c.send(b"Subject: smuggled\r\n\r\nbody\r\n.\r\n").await;
    for _ in 0..4 {
        let reply = c.reply().await.expect("reply to each line");
        assert!(reply.code >= 500, "{reply:?}");
    }
    c.expect("NOOP", 250).await;
    assert!(stored(&server).is_empty());
}

fn tls_required(dir: &Path) -> Config {
    Config {
        auth: required(),
        require_tls: true,
        tls: TlsMode::StartTls,
        cert: Some(CertSource::Generate {
            dir: dir.to_owned(),
        }),
        ..Config::ephemeral()
    }
}

fn rustls_client(dir: &Path) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(dir.join("ca.pem")).expect("ca.pem written");
    tokio_rustls::TlsConnector::from(common::trusting(&pem))
}

/// Even the right password is refused (530) in plain text, by PLAIN and by LOGIN, and so
/// is MAIL; under TLS, MAIL still needs AUTH; with both, mail goes through.
#[tokio::test]
async fn with_tls_required_auth_and_mail_before_starttls_get_530() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server: ServerHandle = start(tls_required(dir.path())).await;
    let mut c = Client::ehlo(&server).await;
    let refused = [
        "MAIL FROM:<a@b.example>".to_owned(),
        format!("AUTH PLAIN {}", plain(USER, PASSWORD)),
        "AUTH LOGIN".to_owned(),
        "AUTH PLAIN".to_owned(),
        "MAIL FROM:<>".to_owned(),
    ];
    for line in &refused {
        let reply = c.expect(line, 530).await;
        assert!(reply.text().starts_with("5.7.0"), "{line}: {reply:?}");
    }
    c.expect("RCPT TO:<x@y.example>", 503).await;
    c.expect("STARTTLS", 220).await;
    let tcp: TcpStream = c.into_inner();
    let tls = rustls_client(dir.path())
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let mut c = Client::new(tls);
    c.expect("EHLO me", 250).await;
    c.expect("MAIL FROM:<a@b.example>", 530).await;
    c.expect(&format!("AUTH PLAIN {}", plain(USER, "wrong")), 535)
        .await;
    c.expect(&format!("AUTH PLAIN {}", plain(USER, PASSWORD)), 235)
        .await;
    let reply = c
        .send_mail("a@b.example", &["x@y.example"], "Subject: s\r\n\r\nok\r\n")
        .await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls);
    assert_eq!(mail[0].auth_user.as_deref(), Some(USER));
}
