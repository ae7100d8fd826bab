//! Every setting of one server instance, with the defaults the CLI shows.
//!
//! `Config` is plain data: the binary fills it from flags, tests build it with
//! `Config::default()` plus struct update syntax. Nothing here does I/O.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::fault::FaultRule;

/// How the SMTP listener speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text only; STARTTLS is not advertised.
    #[default]
    None,
    /// Plain text greeting; STARTTLS advertised and accepted.
    StartTls,
    /// TLS from the first byte (the original mail-test-srv's mode, "SMTPS").
    Implicit,
}

/// Where the server's certificate comes from when TLS is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// Certificate chain and private key read from PEM files.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed CA and a `localhost` / `127.0.0.1` leaf generated at start;
    /// `ca.pem`, `cert.pem` and `key.pem` are written to this folder so clients can trust the CA.
    Generate { dir: PathBuf },
}

/// A deliberately wrong certificate (`--tls-cert-fault`), so a client's certificate checks
/// can be tested; only with a generated certificate (`CertSource::Generate`), whose `ca.pem`
/// is written as usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFault {
    /// Signed by the generated CA, for localhost, but expired years ago.
    Expired,
    /// Signed by the generated CA, valid, but for `wrong.example` only.
    WrongHost,
    /// For localhost and valid, but self-signed: no chain to the generated CA.
    Untrusted,
}

/// Which AUTH the server offers and enforces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// AUTH is not advertised; MAIL needs no authentication.
    Off,
    /// `AUTH PLAIN LOGIN` advertised; any credentials succeed; MAIL needs no authentication.
    /// The default, as in most test servers: clients that always authenticate (the original
    /// Go mailer does) just work, and the user name is recorded with each message.
    #[default]
    AcceptAny,
    /// Exactly this user and password succeed (535 otherwise); MAIL without AUTH gets 530.
    Required { user: String, password: String },
}

/// What a line ending in LF without CR gets (RFC 5321 2.3.8: lines end with CRLF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLf {
    /// Kept as data inside DATA (it never ends a line there, so it cannot end the message:
    /// no SMTP smuggling); a command line ending in a bare LF is taken, as most clients expect.
    #[default]
    Keep,
    /// `521 5.5.2` and close, in a command or in DATA (Postfix's
    /// `smtpd_forbid_bare_newline`), for testing that a client sends CRLF.
    Reject,
}

/// Bounds that keep one instance's resource use finite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent SMTP connections; one more is greeted with 421 and closed.
    pub max_connections: usize,
    /// A session that sends nothing for this long gets 421 and is closed.
    pub idle_timeout: Duration,
    /// Largest message accepted (advertised as `SIZE n`); bigger gets 552.
    pub max_message_size: usize,
    /// Recipients per transaction; one more gets 452.
    pub max_recipients: usize,
    /// Longest command line in bytes, CRLF included (RFC 5321 4.5.3.1.4 says 512 at least).
    pub max_line_length: usize,
    /// Messages kept; past it the oldest are evicted (counted in stats).
    pub max_messages: usize,
    /// Bytes kept over all messages, everything a record holds counted (envelope, header
    /// index, body); past it the oldest are evicted.
    pub max_stored_bytes: usize,
    /// Bytes of message data being received at once over all sessions; a DATA past it gets
    /// 452 before 354, or 451 after the final dot when the budget ran out while receiving.
    pub max_inflight_bytes: usize,
    /// The longest a session may last, whatever it does (a delay, a hang, a trickle): then
    /// 421 4.4.2 and close.
    pub max_session_time: Duration,
    /// Refused commands per session (5xx replies: syntax, sequence, failed AUTH); one more
    /// and the session gets 421 4.7.0 and is closed, as Postfix's `smtpd_hard_error_limit`.
    pub max_errors: usize,
    /// Closed sessions whose transcripts are kept; past it the oldest are dropped.
    pub max_sessions: usize,
    /// Bytes of transcripts kept over open and closed sessions; past it the oldest closed
    /// sessions are dropped.
    pub max_transcript_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1000,
            idle_timeout: Duration::from_secs(300),
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 100,
            max_line_length: 4096,
            max_messages: 1_000_000,
            max_stored_bytes: 1024 * 1024 * 1024,
            max_inflight_bytes: 256 * 1024 * 1024,
            max_session_time: Duration::from_secs(600),
            max_errors: 20,
            max_sessions: 10_000,
            max_transcript_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Bounds and checks of the HTTP report API, apart from SMTP's: a stuck browser tab or a
/// flood of idle HTTP connections must not take the file descriptors SMTP clients need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Concurrent HTTP connections; past it a new one is answered 503 and closed at once
    /// rather than left waiting in the listen backlog.
    pub max_connections: usize,
    /// Time a connection has to send a whole request header, counted from when it is
    /// ready for a request (accepted, or done with the previous one).
    pub header_timeout: Duration,
    /// A connection that moves no byte for this long is closed, unless it waits on a long
    /// poll (`/api/v1/wait`, bounded by its own timeout): a stalled body, or a client
    /// that stopped reading its response.
    pub idle_timeout: Duration,
    /// Host names (`name` or `name:port`) accepted in `Host` and `Origin` besides the
    /// listening address and `localhost` (`--http-allowed-host`), against DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            allowed_hosts: Vec::new(),
        }
    }
}

/// The whole configuration of one server instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// SMTP listen address (`--smtp`); port 0 picks a free port.
    pub smtp_addr: SocketAddr,
    /// HTTP listen address (`--http`); port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Name used in the greeting and the EHLO reply.
    pub hostname: String,
    pub tls: TlsMode,
    /// Required when `tls` is not `None`.
    pub cert: Option<CertSource>,
    pub auth: AuthMode,
    /// Refuse AUTH and MAIL before STARTTLS with 530, as a submission server would.
    pub require_tls: bool,
    /// Serve a wrong certificate (`--tls-cert-fault`); needs a generated certificate.
    pub tls_cert_fault: Option<CertFault>,
    /// RFC 5321 path syntax for MAIL and RCPT (`--strict`); the default reads paths leniently,
    /// as real clients send them (`MAIL FROM:<"Name" <a@b>>`). Changeable at runtime.
    pub strict: bool,
    /// What a bare LF gets (`--bare-lf`).
    pub bare_lf: BareLf,
    /// Record a transcript of every session (`--transcripts on|off`).
    pub transcripts: bool,
    pub limits: Limits,
    /// The HTTP API's connection limits and request checks.
    pub http: HttpConfig,
    /// Bytes the fault event log may hold; past it the oldest events are dropped (counted).
    pub max_event_bytes: usize,
    /// The fault plan in force at start (`--fault`, `--close-chance`, `--close-first`).
    pub faults: Vec<FaultRule>,
    /// Seed of every random fault decision; `None` picks one at random (always reported).
    pub seed: Option<u64>,
    /// Outages planned at start (`--outage-at`), counted from when the server is up.
    pub outages: Vec<crate::outage::Scheduled>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 9380)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9381)),
            hostname: "localhost".to_owned(),
            tls: TlsMode::None,
            cert: None,
            auth: AuthMode::AcceptAny,
            require_tls: false,
            tls_cert_fault: None,
            strict: false,
            bare_lf: BareLf::Keep,
            transcripts: true,
            limits: Limits::default(),
            http: HttpConfig::default(),
            max_event_bytes: crate::fault::EventLog::DEFAULT_MAX_BYTES,
            faults: Vec::new(),
            seed: None,
            outages: Vec::new(),
        }
    }
}

impl Config {
    /// A configuration for tests and embedding: both listeners on `127.0.0.1:0`.
    pub fn ephemeral() -> Self {
        Config {
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }
}
