//! TLS faults: the `starttls` stage (`reply=454`, `close`, `reset`, `delay`, `abort`) seen
//! from a raw client, and `--tls-cert-fault` seen from a verifying rustls client that trusts
//! the generated `ca.pem` and asks for `localhost`: each wrong certificate fails for its own
//! reason, and the right one passes.

mod cli_util;
mod common;

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Client, REPLY_TIMEOUT, start, stored};
use mail_test_srv::{CertFault, CertSource, Config, ServerHandle, TlsMode};
use rustls::CertificateError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;

fn tls_config(mode: TlsMode, dir: &Path, rules: &[&str]) -> Config {
    Config {
        tls: mode,
        cert: Some(CertSource::Generate {
            dir: dir.to_owned(),
        }),
        faults: rules.iter().map(|r| common::rule(r)).collect(),
        seed: Some(1),
        ..Config::ephemeral()
    }
}

fn connector(dir: &Path) -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(dir.join("ca.pem")).expect("ca.pem written");
    tokio_rustls::TlsConnector::from(common::trusting(&pem))
}

/// EHLO, then STARTTLS; returns the client and the STARTTLS reply.
async fn starttls(server: &ServerHandle) -> (Client<TcpStream>, io::Result<common::Reply>) {
    let mut c = Client::ehlo(server).await;
    c.send(b"STARTTLS\r\n").await;
    let reply = c.reply().await;
    (c, reply)
}

#[tokio::test]
async fn starttls_reply_454_and_the_session_goes_on_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(tls_config(
        TlsMode::StartTls,
        dir.path(),
        &["starttls:reply=454:first=1"],
    ))
    .await;
    let (mut c, reply) = starttls(&server).await;
    let reply = reply.unwrap();
    assert_eq!(reply.code, 454, "{reply:?}");
    assert!(reply.text().starts_with("4.7.0"), "{reply:?}");
    let reply = c
        .send_mail(
            "a@example.com",
            &["b@example.com"],
            "Subject: plain\r\n\r\nhi\r\n",
        )
        .await;
    assert_eq!(reply.code, 250);
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert!(!mail[0].tls, "sent in plain text");
    let events = server.state().faults().events().since(0).events;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].stage, "starttls");
    assert_eq!(events[0].action, "reply=454");
}

#[tokio::test]
async fn starttls_close_and_reset_end_the_session_without_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(tls_config(
        TlsMode::StartTls,
        dir.path(),
        &["starttls:close:first=1", "starttls:reset:first=2"],
    ))
    .await;
    let (mut c, reply) = starttls(&server).await;
    let err = reply.expect_err("no reply to STARTTLS");
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(c.read_to_end().await.unwrap(), b"");

    let (_, reply) = starttls(&server).await;
    let err = reply.expect_err("no reply to STARTTLS");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
}

#[tokio::test]
async fn starttls_delay_then_the_handshake_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(tls_config(
        TlsMode::StartTls,
        dir.path(),
        &["starttls:delay=300ms"],
    ))
    .await;
    let started = Instant::now();
    let (c, reply) = starttls(&server).await;
    assert_eq!(reply.unwrap().code, 220);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let tls = connector(dir.path())
        .connect("localhost".try_into().unwrap(), c.into_inner())
        .await
        .expect("handshake after the delay");
    let mut c = Client::new(tls);
    c.expect("EHLO test.example", 250).await;
}

#[tokio::test]
async fn starttls_abort_answers_220_then_resets_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(tls_config(
        TlsMode::StartTls,
        dir.path(),
        &["starttls:abort"],
    ))
    .await;
    let (c, reply) = starttls(&server).await;
    let reply = reply.unwrap();
    assert_eq!(reply.code, 220, "the client is told to go ahead: {reply:?}");
    let err = tokio::time::timeout(
        REPLY_TIMEOUT,
        connector(dir.path()).connect("localhost".try_into().unwrap(), c.into_inner()),
    )
    .await
    .expect("the handshake ends in time")
    .expect_err("the handshake is aborted");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");

    let record = common::ended_session(&server, 1).await;
    common::assert_lines_in_order(
        &record.text(),
        &[
            "C: STARTTLS",
            "*: fault starttls:abort (abort)",
            "S: 220 2.0.0 Ready to start TLS",
            "*: abort: ",
        ],
    );
    assert!(
        record
            .text()
            .contains("bytes of the TLS handshake read, then RST"),
        "{}",
        record.text()
    );
    assert_eq!(
        record.outcome.map(|o| o.name()).as_deref(),
        Some("server-fault (abort)")
    );
}

/// Connects over implicit TLS as a verifying client would; the handshake's error, if any.
async fn implicit_handshake(server: &ServerHandle, dir: &Path) -> Result<(), io::Error> {
    let tcp = TcpStream::connect(server.smtp_addr()).await?;
    let tls = tokio::time::timeout(
        REPLY_TIMEOUT,
        connector(dir).connect("localhost".try_into().unwrap(), tcp),
    )
    .await
    .expect("the handshake ends in time")?;
    let mut c = Client::new(tls);
    let greeting = c.reply().await?;
    assert_eq!(greeting.code, 220);
    Ok(())
}

/// The certificate error inside a failed handshake's I/O error.
fn certificate_error(err: &io::Error) -> CertificateError {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => why.clone(),
        other => panic!("not a certificate error: {err} ({other:?})"),
    }
}

async fn served_with(fault: Option<CertFault>, mode: TlsMode) -> (ServerHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        tls_cert_fault: fault,
        ..tls_config(mode, dir.path(), &[])
    })
    .await;
    (server, dir)
}

#[tokio::test]
async fn without_a_cert_fault_the_verifying_client_succeeds() {
    let (server, dir) = served_with(None, TlsMode::Implicit).await;
    implicit_handshake(&server, dir.path())
        .await
        .expect("the generated certificate verifies");
}

#[tokio::test]
async fn an_expired_certificate_fails_as_expired() {
    let (server, dir) = served_with(Some(CertFault::Expired), TlsMode::Implicit).await;
    let err = implicit_handshake(&server, dir.path()).await.unwrap_err();
    let why = certificate_error(&err);
    assert!(
        matches!(
            why,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{why:?}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_host_fails_as_a_name_mismatch() {
    let (server, dir) = served_with(Some(CertFault::WrongHost), TlsMode::Implicit).await;
    let err = implicit_handshake(&server, dir.path()).await.unwrap_err();
    let why = certificate_error(&err);
    assert!(
        matches!(
            why,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "{why:?}"
    );
    // Still signed by the CA: a client asking for the name it carries accepts it.
    let tcp = TcpStream::connect(server.smtp_addr()).await.unwrap();
    connector(dir.path())
        .connect("wrong.example".try_into().unwrap(), tcp)
        .await
        .expect("valid for wrong.example, under the generated CA");
}

#[tokio::test]
async fn a_self_signed_certificate_fails_as_an_unknown_issuer() {
    let (server, dir) = served_with(Some(CertFault::Untrusted), TlsMode::Implicit).await;
    let err = implicit_handshake(&server, dir.path()).await.unwrap_err();
    assert_eq!(certificate_error(&err), CertificateError::UnknownIssuer);
}

#[tokio::test]
async fn a_cert_fault_applies_after_starttls_too() {
    let (server, dir) = served_with(Some(CertFault::Expired), TlsMode::StartTls).await;
    let (c, reply) = starttls(&server).await;
    assert_eq!(reply.unwrap().code, 220);
    let err = connector(dir.path())
        .connect("localhost".try_into().unwrap(), c.into_inner())
        .await
        .unwrap_err();
    assert!(
        matches!(
            certificate_error(&err),
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_cert_fault_with_certificate_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = mail_test_srv::tls::generate(dir.path()).unwrap();
    let result = mail_test_srv::start(Config {
        tls: TlsMode::Implicit,
        cert: Some(CertSource::Files {
            cert: files.cert,
            key: files.key,
        }),
        tls_cert_fault: Some(CertFault::Untrusted),
        ..Config::ephemeral()
    })
    .await;
    let Err(err) = result else {
        panic!("a cert fault with --cert/--key files must be refused");
    };
    assert!(
        format!("{err:#}").contains("--tls-cert-fault needs a generated certificate"),
        "{err:#}"
    );
}

/// Runs the binary with `args`: exit 2 and one line on stderr containing `want`.
fn usage_error(args: &[&str], want: &str) {
    assert_cmd::Command::new(cli_util::BIN)
        .args(["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(args)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicates::function::function(|s: &str| {
            s.lines().count() == 1 && s.contains(want)
        }));
}

#[test]
fn cli_refuses_a_bad_cert_fault_value() {
    usage_error(
        &["--tls", "implicit", "--tls-cert-fault", "stale"],
        "--tls-cert-fault",
    );
}

#[test]
fn cli_refuses_a_cert_fault_without_tls() {
    usage_error(&["--tls-cert-fault", "expired"], "needs TLS");
    usage_error(
        &["--tls", "none", "--tls-cert-fault", "wrong-host"],
        "needs TLS",
    );
}

#[test]
fn cli_refuses_a_cert_fault_with_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = mail_test_srv::tls::generate(dir.path()).unwrap();
    usage_error(
        &[
            "--cert",
            files.cert.to_str().unwrap(),
            "--key",
            files.key.to_str().unwrap(),
            "--tls-cert-fault",
            "untrusted",
        ],
        "needs a generated certificate",
    );
}

#[test]
fn cli_serves_the_wrong_certificate_with_the_ca_written_as_usual() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let _running = cli_util::spawn(&[
        "--tls",
        "implicit",
        "--generate-cert",
        path,
        "--tls-cert-fault",
        "wrong-host",
    ]);
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    assert!(ca.contains("BEGIN CERTIFICATE"));
    // The served leaf is the one in cert.pem: for wrong.example, not localhost.
    let leaf = std::fs::read(dir.path().join("cert.pem")).unwrap();
    let leaf = CertificateDer::from_pem_slice(&leaf).unwrap();
    assert!(
        leaf.windows(b"wrong.example".len())
            .any(|w| w == b"wrong.example")
    );
    assert!(!leaf.windows(b"localhost".len()).any(|w| w == b"localhost"));
}
