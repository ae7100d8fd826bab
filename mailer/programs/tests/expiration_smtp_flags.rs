//! The SMTP flags reach the server: STARTTLS verified against --smtp-root-ca, implicit TLS,
//! and AUTH with --smtp-user / --smtp-password-file.

mod common;

use common::{DAY, EXPIRY, Scratch, TestServer, certificate, fakeclock};
use mail_test_srv::{AuthMode, CertSource, Config, TlsMode};

fn tls_server(scratch: &Scratch, tls: TlsMode) -> TestServer {
    TestServer::start_with(
        &[],
        Config {
            tls,
            cert: Some(CertSource::Generate {
                dir: scratch.path("tls"),
            }),
            auth: AuthMode::Required {
                user: "mailer".into(),
                password: "s3cret".into(),
            },
            ..Config::ephemeral()
        },
    )
}

fn run(
    scratch: &Scratch,
    server: &TestServer,
    mode: &str,
    password_file: &str,
) -> std::process::Output {
    let db = scratch.db_url();
    scratch
        .expiration_mailer()
        .env("FAKECLOCK", fakeclock(EXPIRY, 5))
        .args([
            "--db",
            &db,
            "--smtp-server",
            "127.0.0.1",
            "--smtp-port",
            &server.smtp_port().to_string(),
        ])
        .args(["--smtp-tls", mode, "--smtp-root-ca"])
        .arg(scratch.path("tls/ca.pem"))
        .args([
            "--smtp-user",
            "mailer",
            "--smtp-password-file",
            password_file,
        ])
        .args([
            "--from",
            "bot@example.com",
            "--reconnect-base",
            "1ms",
            "--reconnect-max",
            "5ms",
        ])
        .output()
        .unwrap()
}

#[test]
fn starttls_and_implicit_tls_with_auth() {
    for (mode, tls) in [
        ("starttls", TlsMode::StartTls),
        ("implicit", TlsMode::Implicit),
    ] {
        let scratch = Scratch::new();
        let server = tls_server(&scratch, tls);
        scratch.import(
            &scratch.db_url(),
            "mailto:tls@example.com",
            "t",
            &certificate(&["tls.example.com"], EXPIRY - 90 * DAY, EXPIRY, 1),
        );
        scratch.write("password", "s3cret\n");
        let output = run(&scratch, &server, mode, "password");
        assert!(output.status.success(), "{mode}: {output:?}");
        let mail = server.messages(Some("tls@example.com"));
        assert_eq!(mail.len(), 1, "{mode}");
        assert_eq!(mail[0]["tls"], true, "{mode}");
        assert_eq!(mail[0]["auth_user"], "mailer", "{mode}");
    }
}

/// A wrong password is the server refusing us: the run fails (exit 1), nothing is marked.
#[test]
fn wrong_password_fails_the_run() {
    let scratch = Scratch::new();
    let server = tls_server(&scratch, TlsMode::StartTls);
    scratch.import(
        &scratch.db_url(),
        "mailto:tls@example.com",
        "t",
        &certificate(&["tls.example.com"], EXPIRY - 90 * DAY, EXPIRY, 1),
    );
    scratch.write("wrong", "guess\n");
    let output = run(&scratch, &server, "starttls", "wrong");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(server.messages(None).is_empty());
    // With the right password the reminder is still due.
    scratch.write("right", "s3cret");
    assert!(run(&scratch, &server, "starttls", "right").status.success());
    assert_eq!(server.messages(Some("tls@example.com")).len(), 1);
}
