//! Shared test helpers: an in-process server on `127.0.0.1:0` and a raw SMTP client that
//! speaks bytes, so each test sees exactly what a client on the wire would see.
#![allow(dead_code)]

use std::io;
use std::time::Duration;

use mail_test_srv::fault::FaultRule;
use mail_test_srv::store::{Filter, StoredMessage};
use mail_test_srv::{Config, ServerHandle};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a test waits for a reply before failing instead of hanging.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a server with `config` (addresses forced to `127.0.0.1:0`).
pub async fn start(config: Config) -> ServerHandle {
    let config = Config {
        smtp_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..config
    };
    mail_test_srv::start(config).await.expect("server starts")
}

/// A server with these fault rules (text form, as `--fault` takes them) and seed 1.
pub async fn start_with_faults(rules: &[&str]) -> ServerHandle {
    start(Config {
        faults: rules.iter().map(|r| rule(r)).collect(),
        seed: Some(1),
        ..Config::ephemeral()
    })
    .await
}

pub fn rule(text: &str) -> FaultRule {
    text.parse()
        .unwrap_or_else(|e| panic!("rule {text:?}: {e}"))
}

/// Every stored message, oldest first.
pub fn stored(handle: &ServerHandle) -> Vec<std::sync::Arc<StoredMessage>> {
    handle
        .state()
        .store()
        .messages(&Filter::default(), 0, usize::MAX)
}

/// One SMTP reply: the code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A raw SMTP client over any byte stream.
pub struct Client<S> {
    stream: BufReader<S>,
}

impl Client<TcpStream> {
    /// Connects without reading the greeting.
    pub async fn connect_raw(handle: &ServerHandle) -> Self {
        let tcp = TcpStream::connect(handle.smtp_addr())
            .await
            .expect("connect");
        Client::new(tcp)
    }

    /// Connects and expects the 220 greeting.
    pub async fn connect(handle: &ServerHandle) -> Self {
        let mut client = Self::connect_raw(handle).await;
        let greeting = client.reply().await.expect("greeting");
        assert_eq!(greeting.code, 220, "{greeting:?}");
        client
    }

    /// Connects and says EHLO.
    pub async fn ehlo(handle: &ServerHandle) -> Self {
        let mut client = Self::connect(handle).await;
        client.expect("EHLO test.example", 250).await;
        client
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Self {
        Client {
            stream: BufReader::new(stream),
        }
    }

    pub fn into_inner(self) -> S {
        self.stream.into_inner()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.expect("write");
        self.stream.get_mut().flush().await.expect("flush");
    }

    /// Reads one (possibly multi-line) reply; EOF is `UnexpectedEof`.
    pub async fn reply(&mut self) -> io::Result<Reply> {
        tokio::time::timeout(REPLY_TIMEOUT, self.reply_untimed())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply"))?
    }

    pub async fn reply_untimed(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {lines:?}"),
                ));
            }
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad reply line {line:?}"),
                )
            })?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if last {
                return Ok(Reply { code, lines });
            }
        }
    }

    /// Sends a command line and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply()
            .await
            .unwrap_or_else(|e| panic!("reply to {line:?}: {e}"))
    }

    /// Sends a command and asserts the reply code.
    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line).await;
        assert_eq!(reply.code, code, "reply to {line:?}: {reply:?}");
        reply
    }

    /// A whole transaction; returns the reply after the final dot.
    pub async fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> Reply {
        self.expect(&format!("MAIL FROM:<{from}>"), 250).await;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        self.expect("DATA", 354).await;
        self.send(body.as_bytes()).await;
        self.send(b".\r\n").await;
        self.reply().await.expect("reply after DATA")
    }

    /// Reads until EOF or error and returns what arrived (or the error).
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        tokio::time::timeout(REPLY_TIMEOUT, self.stream.read_to_end(&mut rest))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no EOF"))??;
        Ok(rest)
    }
}

/// Path of a client program, or `None` after printing why the test is skipped.
/// With `CI` set a missing program is a failure: CI installs it (`.ci/install-deps`).
pub fn program(path: &str) -> Option<&str> {
    if std::path::Path::new(path).exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{path} is missing; run .ci/install-deps");
    }
    eprintln!("skipped: {path} is not installed (run .ci/install-deps; with CI set this fails)");
    None
}

/// Whether this run is CI's (`CI` set, as `.ci/run` and CI services do): there a missing tool
/// or limit is a failure, because a skipped test would pass without having checked anything.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Call where a test cannot run for `reason` and returns at once: outside CI it prints why
/// and the caller returns (skips); under CI it panics with `reason`, as [`program`] does.
#[track_caller]
pub fn skip_or_fail(reason: &str) {
    if under_ci() {
        panic!("{reason} (CI is set, so this is a failure rather than a skip)");
    }
    eprintln!("skipped: {reason} (with CI set this fails)");
}

/// Makes sure this process may open `needed` files: raises the soft `RLIMIT_NOFILE` up to
/// `needed` (never above the hard limit, which only root may raise) when it is lower, as
/// servers do at start. Returns the soft limit now in force when it is still too low, so the
/// caller can [`skip_or_fail`] with a reason that names it.
pub fn ensure_open_files(needed: u64) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` means unlimited.
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(());
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let raised = needed.min(hard);
    if raised > soft {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        )
        .map_err(|e| format!("cannot raise the open-files limit from {soft} to {raised}: {e}"))?;
    }
    if raised >= needed {
        return Ok(());
    }
    Err(format!(
        "this test needs {needed} open files, and the hard limit is {hard} (the soft limit was \
         {soft}); raise it before the test, as root: `ulimit -Hn {needed}`"
    ))
}

/// A TLS client configuration that trusts only the CA certificates in `ca_pem` (the
/// server's generated `ca.pem`).
pub fn trusting(ca_pem: &[u8]) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.expect("a PEM certificate"))
            .expect("the CA is usable");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS 1.2 and 1.3 with ring")
    .with_root_certificates(roots)
    .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// Session `id`'s transcript record once the session has ended (waits up to 5 s).
pub async fn ended_session(handle: &ServerHandle, id: u64) -> mail_test_srv::transcript::Record {
    for _ in 0..500 {
        if let Some(record) = handle.state().sessions().get(id)
            && record.ended.is_some()
        {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("session {id} has not ended");
}

/// Asserts that the text transcript holds lines starting with each of `want`, in this order
/// (other lines may come between). The time prefix (`+0.012s `) is ignored.
pub fn assert_lines_in_order(transcript: &str, want: &[&str]) {
    let lines: Vec<&str> = transcript
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    let mut at = 0;
    for wanted in want {
        match lines[at..].iter().position(|l| l.starts_with(wanted)) {
            Some(i) => at += i + 1,
            None => panic!("no line {wanted:?} after line {at} in:\n{transcript}"),
        }
    }
}
