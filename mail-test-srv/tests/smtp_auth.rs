//! AUTH PLAIN and LOGIN (RFC 4954) in each AUTH mode, as raw dialogues.

mod common;

use common::{Client, start, stored};
use mail_test_srv::{AuthMode, Config};

fn required() -> Config {
    Config {
        auth: AuthMode::Required {
            user: "u".to_owned(),
            password: "p".to_owned(),
        },
        ..Config::ephemeral()
    }
}

// base64("\0u\0p"), base64("\0u\0wrong"), base64("u"), base64("p")
const PLAIN_OK: &str = "AHUAcA==";
const PLAIN_BAD: &str = "AHUAd3Jvbmc=";
const USER: &str = "dQ==";
const PASS: &str = "cA==";

#[tokio::test]
async fn auth_off_is_not_advertised_and_refused() {
    let server = start(Config {
        auth: AuthMode::Off,
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::connect(&server).await;
    let ehlo = c.expect("EHLO me", 250).await;
    assert!(
        !ehlo.lines.iter().any(|l| l.starts_with("AUTH")),
        "{ehlo:?}"
    );
    c.expect(&format!("AUTH PLAIN {PLAIN_OK}"), 502).await;
}

#[tokio::test]
async fn by_default_any_credentials_are_accepted_and_the_user_recorded() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::connect(&server).await;
    let ehlo = c.expect("EHLO me", 250).await;
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    // AUTH PLAIN with the credentials of `--auth user:password`'s test: any pair will do.
    c.expect(&format!("AUTH PLAIN {PLAIN_BAD}"), 235).await;
    let reply = c
        .send_mail("a@b", &["c@d"], "Subject: x\r\n\r\nbody\r\n")
        .await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].auth_user.as_deref(), Some("u"));
}

#[tokio::test]
async fn required_credentials_plain_with_initial_response() {
    let server = start(required()).await;
    let mut c = Client::connect(&server).await;
    let ehlo = c.expect("EHLO me", 250).await;
    assert!(
        ehlo.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"),
        "{ehlo:?}"
    );
    let reply = c.expect("MAIL FROM:<a@b>", 530).await;
    assert!(reply.text().starts_with("5.7.0"), "{reply:?}");
    let reply = c.expect(&format!("AUTH PLAIN {PLAIN_BAD}"), 535).await;
    assert!(reply.text().starts_with("5.7.8"), "{reply:?}");
    c.expect(&format!("AUTH PLAIN {PLAIN_OK}"), 235).await;
    c.expect(&format!("AUTH PLAIN {PLAIN_OK}"), 503).await;
    assert_eq!(c.send_mail("a@b", &["x@y"], "hi\r\n").await.code, 250);
    assert_eq!(stored(&server)[0].auth_user.as_deref(), Some("u"));
}

#[tokio::test]
async fn plain_with_continuation_and_login() {
    let server = start(required()).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("AUTH PLAIN", 334).await;
    c.expect(PLAIN_OK, 235).await;

    let mut c = Client::ehlo(&server).await;
    let reply = c.expect("AUTH LOGIN", 334).await;
    assert_eq!(reply.lines[0], "VXNlcm5hbWU6");
    c.expect(USER, 334).await;
    c.expect(PASS, 235).await;

    let mut c = Client::ehlo(&server).await;
    c.expect(&format!("AUTH LOGIN {USER}"), 334).await;
    c.expect("d3Jvbmc=", 535).await;
}

#[tokio::test]
async fn cancel_bad_base64_and_unknown_mechanism() {
    let server = start(Config {
        auth: AuthMode::AcceptAny,
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("AUTH LOGIN", 334).await;
    c.expect("*", 501).await;
    c.expect("AUTH PLAIN", 334).await;
    c.expect("!!!notbase64", 501).await;
    c.expect("AUTH CRAM-MD5", 504).await;
    c.expect("AUTH PLAIN AHgAeQ==", 235).await;
    // Accept-any does not force AUTH, but records who authenticated.
    assert_eq!(c.send_mail("a@b", &["x@y"], "hi\r\n").await.code, 250);
    assert_eq!(stored(&server)[0].auth_user.as_deref(), Some("x"));
}

#[tokio::test]
async fn auth_before_ehlo_and_inside_a_transaction_is_503() {
    let server = start(Config {
        auth: AuthMode::AcceptAny,
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::connect(&server).await;
    c.expect(&format!("AUTH PLAIN {PLAIN_OK}"), 503).await;
    c.expect("EHLO me", 250).await;
    c.expect("MAIL FROM:<a@b>", 250).await;
    c.expect(&format!("AUTH PLAIN {PLAIN_OK}"), 503).await;
}
