//! Real SMTP clients against a live server: Python's smtplib, swaks, and Postfix's
//! smtp-source. A missing program (or Perl's Net::SSLeay, which swaks needs for STARTTLS) is
//! skipped with a printed reason, unless `CI` is set: then it is a failure.

mod common;

use common::{program, start, stored};
use mail_test_srv::{AuthMode, CertSource, Config, TlsMode};
use tokio::process::Command;

async fn run(command: &mut Command) -> String {
    let output = command.output().await.expect("the program starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed: {text}");
    text
}

const PYTHON: &str = r#"
import smtplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.login("u", "p")
    s.sendmail("a@b.example", ["x@y.example", "z@y.example"], "Subject: py\r\n\r\n.leading dot\r\n")
    try:
        s.sendmail("a@b.example", ["bad@example.com"], "Subject: no\r\n\r\nx\r\n")
        sys.exit("refused recipient was accepted")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["bad@example.com"][0] == 550, e.recipients
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_starttls_login_and_refused_recipient() {
    let Some(python) = program("/usr/bin/python3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        tls: TlsMode::StartTls,
        cert: Some(CertSource::Generate {
            dir: dir.path().to_owned(),
        }),
        auth: AuthMode::Required {
            user: "u".to_owned(),
            password: "p".to_owned(),
        },
        faults: vec![common::rule("rcpt:reply=550:to=bad@example.com")],
        ..Config::ephemeral()
    })
    .await;
    let ca = dir.path().join("ca.pem");
    run(Command::new(python)
        .args(["-c", PYTHON])
        .arg(server.smtp_addr().port().to_string())
        .arg(&ca))
    .await;
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].recipients, ["x@y.example", "z@y.example"]);
    assert!(mail[0].tls);
    assert_eq!(mail[0].auth_user.as_deref(), Some("u"));
    assert!(mail[0].data.ends_with(b"\r\n.leading dot\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_pipelined_auth_login_and_starttls() {
    let Some(swaks) = program("/usr/bin/swaks") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        tls: TlsMode::StartTls,
        cert: Some(CertSource::Generate {
            dir: dir.path().to_owned(),
        }),
        auth: AuthMode::AcceptAny,
        ..Config::ephemeral()
    })
    .await;
    let target = server.smtp_addr().to_string();
    run(Command::new(swaks).args([
        "--server",
        &target,
        "--from",
        "a@b.example",
        "--to",
        "x@y.example",
        "--header",
        "Subject: swaks plain",
        "--pipeline",
    ]))
    .await;
    // AUTH LOGIN over the plain channel (accept-any mode does not require TLS).
    run(Command::new(swaks).args([
        "--server",
        &target,
        "--from",
        "a@b.example",
        "--to",
        "x@y.example",
        "--header",
        "Subject: swaks auth",
        "--auth",
        "LOGIN",
        "--auth-user",
        "someone",
        "--auth-password",
        "secret",
    ]))
    .await;
    let mail = stored(&server);
    assert_eq!(mail.len(), 2);
    assert_eq!(mail[1].auth_user.as_deref(), Some("someone"));
    assert_eq!(mail[1].subject.as_deref(), Some("swaks auth"));

    // swaks speaks TLS only with Perl's Net::SSLeay, which its Debian package merely recommends.
    let ssleay = std::process::Command::new("perl")
        .args(["-MNet::SSLeay", "-e1"])
        .stderr(std::process::Stdio::null())
        .status();
    if !ssleay.is_ok_and(|s| s.success()) {
        common::skip_or_fail(
            "swaks STARTTLS: Perl's Net::SSLeay is missing (apt install libnet-ssleay-perl, \
             or run .ci/install-deps)",
        );
        return;
    }
    let ca = dir.path().join("ca.pem");
    run(Command::new(swaks)
        .args([
            "--server",
            &target,
            "--from",
            "a@b.example",
            "--to",
            "x@y.example",
            "--header",
            "Subject: swaks tls",
            "--tls",
            "--tls-verify",
            "--tls-ca-path",
        ])
        .arg(&ca))
    .await;
    let mail = stored(&server);
    assert_eq!(mail.len(), 3);
    assert!(!mail[0].tls);
    assert!(mail[2].tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_smtp_source_sessions() {
    let Some(smtp_source) = program("/usr/sbin/smtp-source") else {
        return;
    };
    let server = start(Config::ephemeral()).await;
    run(Command::new(smtp_source)
        .args([
            "-s",
            "4",
            "-m",
            "200",
            "-l",
            "2000",
            "-f",
            "a@b.example",
            "-t",
            "x@y.example",
        ])
        .arg(server.smtp_addr().to_string()))
    .await;
    let mail = stored(&server);
    assert_eq!(mail.len(), 200);
    assert!(mail.iter().all(|m| m.recipients == ["x@y.example"]));
    // -d: many messages over one connection, with RSET-free back-to-back transactions.
    run(Command::new(smtp_source)
        .args([
            "-d",
            "-s",
            "2",
            "-m",
            "50",
            "-f",
            "a@b.example",
            "-t",
            "x@y.example",
        ])
        .arg(server.smtp_addr().to_string()))
    .await;
    assert_eq!(stored(&server).len(), 250);
}
