//! Shared by the mailer programs' tests: an in-process mail-test-srv, certificates with
//! chosen validity, FAKECLOCK values, and the programs as commands in a scratch folder.
#![allow(dead_code)] // each test binary uses a different part

pub mod databases;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use serde_json::Value;

/// A mail-test-srv on 127.0.0.1 (ports picked by the system), running on its own runtime
/// for as long as this value lives.
pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    handle: Option<mail_test_srv::ServerHandle>,
    http: String,
}

impl TestServer {
    /// A server with these `--fault` rules (e.g. `rcpt:reply=550:to=bad@example.com`).
    pub fn start(faults: &[&str]) -> TestServer {
        TestServer::start_with(faults, mail_test_srv::Config::ephemeral())
    }

    /// Like [`TestServer::start`] on top of `base` (TLS, AUTH...).
    pub fn start_with(faults: &[&str], base: mail_test_srv::Config) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let faults = faults
            .iter()
            .map(|f| f.parse().unwrap_or_else(|e| panic!("fault {f}: {e}")))
            .collect();
        let config = mail_test_srv::Config {
            faults,
            seed: Some(7),
            ..base
        };
        let handle = runtime
            .block_on(mail_test_srv::start(config))
            .expect("mail-test-srv starts");
        let http = format!("http://{}", handle.http_addr());
        TestServer {
            runtime,
            handle: Some(handle),
            http,
        }
    }

    pub fn smtp_port(&self) -> u16 {
        self.handle.as_ref().map_or(0, |h| h.smtp_addr().port())
    }

    /// The SMTP flags pointing a mailer at this server, with fast reconnects.
    pub fn smtp_flags(&self) -> Vec<String> {
        vec![
            "--smtp-server".into(),
            "127.0.0.1".into(),
            "--smtp-port".into(),
            self.smtp_port().to_string(),
            "--from".into(),
            "Expiry Bot <bot@mailer.example>".into(),
            "--reconnect-base".into(),
            "5ms".into(),
            "--reconnect-max".into(),
            "50ms".into(),
        ]
    }

    fn get_json(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.http);
        ureq::get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// Stored messages (summaries), optionally only those to `to`.
    pub fn messages(&self, to: Option<&str>) -> Vec<Value> {
        let path = match to {
            Some(to) => format!("/api/v1/messages?limit=10000&to={}", encode(to)),
            None => "/api/v1/messages?limit=10000".to_owned(),
        };
        match self.get_json(&path).get("messages") {
            Some(Value::Array(list)) => list.clone(),
            other => panic!("unexpected message list {other:?}"),
        }
    }

    /// The decoded text body of a stored message.
    pub fn text(&self, message: &Value) -> String {
        let id = message["id"].as_u64().expect("message id");
        let detail = self.get_json(&format!("/api/v1/messages/{id}"));
        // Mail travels with CRLF line ends; the tests compare with "\n".
        detail["text"]
            .as_str()
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }

    /// How many faults the server injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.get_json("/api/v1/events")["last_seq"]
            .as_u64()
            .unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The expiry used by the scenarios: 2030-01-01T00:00:00Z.
pub const EXPIRY: u64 = 1_893_456_000;
pub const DAY: u64 = 86_400;

/// RFC 3339 for FAKECLOCK, `days_before` days before `expiry`.
pub fn fakeclock(expiry: u64, days_before: u64) -> String {
    rfc3339(expiry - days_before * DAY)
}

pub fn rfc3339(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

/// A self-signed certificate (PEM) for `names`, valid from `not_before` to `not_after`
/// (Unix seconds), with the given serial.
pub fn certificate(names: &[&str], not_before: u64, not_after: u64, serial: u64) -> String {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.not_before = time::OffsetDateTime::from_unix_timestamp(not_before as i64).expect("time");
    params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after as i64).expect("time");
    params.serial_number = Some(rcgen::SerialNumber::from(serial.to_be_bytes().to_vec()));
    let key = rcgen::KeyPair::generate().expect("key");
    params.self_signed(&key).expect("sign").pem()
}

/// A scratch folder holding the store and the input files of one test.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// The default store of the programs run in this folder.
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.path("store.sqlite").display())
    }

    /// expiration-mailer run in this folder.
    pub fn expiration_mailer(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_expiration-mailer"));
        cmd.current_dir(self.dir.path())
            .env_remove("FAKECLOCK")
            .env_remove("RUST_LOG");
        cmd
    }

    /// notify-mailer run in this folder.
    pub fn notify_mailer(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_notify-mailer"));
        cmd.current_dir(self.dir.path())
            .env_remove("FAKECLOCK")
            .env_remove("RUST_LOG");
        cmd
    }

    /// Writes a certificate to `NAME.pem` and imports it for `contact` into `db`.
    pub fn import(&self, db: &str, contact: &str, name: &str, pem: &str) {
        let path = self.write(&format!("{name}.pem"), pem);
        self.expiration_mailer()
            .args(["import", "--db", db, "--contact", contact, "--pem"])
            .arg(&path)
            .assert()
            .success();
    }

    /// Imports for `contact` a certificate for `domain` (in `DOMAIN.pem`), issued 90 days
    /// before `EXPIRY` and valid until `not_after`.
    pub fn import_until(&self, db: &str, contact: &str, domain: &str, not_after: u64, serial: u64) {
        let pem = certificate(&[domain], EXPIRY - 90 * DAY, not_after, serial);
        self.import(db, contact, domain, &pem);
    }
}

/// Runs `future` to completion on a single-threaded runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// Runs expiration-mailer once under FAKECLOCK with extra flags, whatever its exit.
pub fn run_output(
    scratch: &Scratch,
    server: &TestServer,
    db: &str,
    now: &str,
    extra: &[&str],
) -> std::process::Output {
    scratch
        .expiration_mailer()
        .env("FAKECLOCK", now)
        .args(["--db", db])
        .args(server.smtp_flags())
        .args(extra)
        .output()
        .expect("run expiration-mailer")
}

/// Runs expiration-mailer once under FAKECLOCK with extra flags; returns its stdout.
pub fn run_at(
    scratch: &Scratch,
    server: &TestServer,
    db: &str,
    now: &str,
    extra: &[&str],
) -> String {
    let output = scratch
        .expiration_mailer()
        .env("FAKECLOCK", now)
        .args(["--db", db])
        .args(server.smtp_flags())
        .args(extra)
        .output()
        .expect("run expiration-mailer");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "expiration-mailer failed ({:?})\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// The value of `key=N` in a summary line.
pub fn summary_field(stdout: &str, key: &str) -> u64 {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.contains("examined=") || l.contains("recipients="))
        .unwrap_or_else(|| panic!("no summary in {stdout:?}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read")
}

pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
