//! `start()` says why a server did not start, typed: which listener could not be bound on
//! which address (and the OS error), or what was wrong with the TLS set-up.

use std::io::ErrorKind;
use std::net::SocketAddr;

use mail_test_srv::{CertSource, Config, Listener, StartError, TlsMode};

#[tokio::test]
async fn a_busy_smtp_address_is_a_bind_error_naming_it() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let err = start_err(Config {
        smtp_addr: addr,
        ..Config::ephemeral()
    })
    .await;
    let StartError::Bind {
        listener,
        addr: failed,
        error,
    } = &err
    else {
        panic!("want a bind error, got {err:?}");
    };
    assert_eq!((*listener, *failed), (Listener::Smtp, addr));
    assert_eq!(error.kind(), ErrorKind::AddrInUse);
    assert!(!err.is_usage());
    assert_eq!(
        err.to_string(),
        format!("cannot bind the SMTP address {addr}: {error}")
    );
}

#[tokio::test]
async fn a_busy_http_address_is_a_bind_error_naming_it() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let err = start_err(Config {
        http_addr: addr,
        ..Config::ephemeral()
    })
    .await;
    assert!(
        matches!(&err, StartError::Bind { listener: Listener::Http, addr: a, .. } if *a == addr),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_address_not_on_this_machine_is_a_bind_error() {
    // TEST-NET-1 (RFC 5737): never assigned to a local interface, so bind fails at once
    // without any packet leaving the machine.
    let addr: SocketAddr = "192.0.2.1:0".parse().unwrap();
    let err = start_err(Config {
        smtp_addr: addr,
        ..Config::ephemeral()
    })
    .await;
    let StartError::Bind { error, .. } = &err else {
        panic!("want a bind error, got {err:?}");
    };
    assert_eq!(error.kind(), ErrorKind::AddrNotAvailable, "{err}");
}

#[tokio::test]
async fn unreadable_certificate_files_are_a_tls_error_and_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = start_err(Config {
        tls: TlsMode::Implicit,
        cert: Some(CertSource::Files {
            cert: missing.clone(),
            key: missing.clone(),
        }),
        ..Config::ephemeral()
    })
    .await;
    assert!(matches!(err, StartError::Tls(_)), "{err:?}");
    assert!(err.is_usage());
    let text = err.to_string();
    assert!(
        text.starts_with("TLS set-up failed: ") && text.contains("missing.pem"),
        "{text}"
    );
    // The message holds the whole story: no source to print a second time.
    assert!(std::error::Error::source(&err).is_none());
}

async fn start_err(config: Config) -> StartError {
    match mail_test_srv::start(config).await {
        Ok(handle) => panic!(
            "started on {} / {} but should not have",
            handle.smtp_addr(),
            handle.http_addr()
        ),
        Err(err) => err,
    }
}
