//! [`ReconnectingTransportBuilder`]: the settings of a [`ReconnectingTransport`], set the
//! way lettre's `AsyncSmtpTransportBuilder` sets them (`relay`, `starttls_relay`,
//! `builder_dangerous`, then `.port()`, `.credentials()`, `.tls()`, `.hello_name()`...),
//! plus the reconnect bounds, the step timeout and the pool size.

use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::backoff::{Sleeper, TokioSleeper};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, TlsMode};
use crate::error::Error;
use crate::mailer::{Mailer, Parts, check_config};
use crate::message::parse_from;
use crate::transport::ReconnectingTransport;

/// Port of SMTP submission over implicit TLS (RFC 8314).
pub const SUBMISSIONS_PORT: u16 = 465;
/// Port of SMTP submission with STARTTLS (RFC 6409).
pub const SUBMISSION_PORT: u16 = 587;
/// Port of plain SMTP.
pub const SMTP_PORT: u16 = 25;

/// Sessions in the pool unless [`ReconnectingTransportBuilder::pool_size`] says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// Builds a [`ReconnectingTransport`]. Start from [`ReconnectingTransport::relay`],
/// [`ReconnectingTransport::starttls_relay`] or [`ReconnectingTransport::builder_dangerous`].
///
/// Defaults besides the port and TLS: EHLO name from lettre (the host name), no
/// credentials, reconnect sleeps from 1 s doubling to at most 5 min, at most 30 reconnects
/// per message and no deadline, 60 s per SMTP step, a pool of [`DEFAULT_POOL_SIZE`].
#[must_use]
pub struct ReconnectingTransportBuilder {
    config: Config,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    pool_size: usize,
    from: Option<String>,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
}

impl std::fmt::Debug for ReconnectingTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingTransportBuilder")
            .field("server", &self.config.server)
            .field("port", &self.config.port)
            .field("tls", &self.tls)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .field("hello", &self.hello)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl ReconnectingTransportBuilder {
    pub(crate) fn new(host: &str, port: u16, tls: Tls) -> ReconnectingTransportBuilder {
        ReconnectingTransportBuilder {
            config: Config {
                server: host.to_owned(),
                port,
                hello_name: String::new(),
                ..Config::default()
            },
            tls,
            credentials: None,
            hello: ClientId::default(),
            pool_size: DEFAULT_POOL_SIZE,
            from: None,
            clock: Arc::new(SystemClock),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// The server's port.
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// User and secret for AUTH PLAIN or LOGIN.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// How the connection is secured, as in lettre: `Tls::None`, `Tls::Opportunistic`
    /// (STARTTLS when offered, else plain: discouraged), `Tls::Required` (STARTTLS or
    /// refuse to send), `Tls::Wrapper` (TLS from the first byte).
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Our name in EHLO.
    pub fn hello_name(mut self, name: ClientId) -> Self {
        self.hello = name;
        self
    }

    /// lettre's name for the timeout: `Some(d)` bounds every SMTP step (connect, greeting,
    /// EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, the content, RSET, QUIT) at `d`, where
    /// lettre bounds only the TCP connect. `None` keeps the default (60 s): an unbounded
    /// step would make the send unbounded.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        if let Some(timeout) = timeout {
            self.config.step_timeout = timeout;
        }
        self
    }

    /// The bound of every SMTP step (see [`ReconnectingTransportBuilder::timeout`]).
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.config.step_timeout = timeout;
        self
    }

    /// The first non-zero sleep before a reconnect; it doubles on each further attempt.
    pub fn reconnect_base(mut self, base: Duration) -> Self {
        self.config.reconnect_base = base;
        self
    }

    /// The cap of one sleep before a reconnect.
    pub fn reconnect_max(mut self, max: Duration) -> Self {
        self.config.reconnect_max = max;
        self
    }

    /// Reconnects (and retries after temporary refusals) per message before giving up.
    pub fn max_reconnects(mut self, max: u32) -> Self {
        self.config.max_reconnects = max;
        self
    }

    /// Time per message spent reconnecting before giving up, if any.
    pub fn reconnect_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.config.reconnect_deadline = deadline;
        self
    }

    /// Sessions open at most at a time, for parallel senders (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The sender of [`ReconnectingTransport::send_mail`] (`"Name <addr@example.com>"` or
    /// `"addr@example.com"`); lettre messages carry their own.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// The clock that dates [`ReconnectingTransport::send_mail`]'s messages.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// What the reconnect loop sleeps through (tests record the schedule with their own).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Checks the settings and makes the transport. Nothing connects until the first send.
    pub fn build(self) -> Result<ReconnectingTransport, Error> {
        if self.pool_size == 0 {
            return Err(Error::Config("`pool_size` is 0".to_owned()));
        }
        let mut config = self.config;
        if let ClientId::Domain(name) = &self.hello {
            config.hello_name.clone_from(name);
        }
        check_config(&config)?;
        let from = self.from.as_deref().map(parse_from).transpose()?;
        if let Some(from) = &self.from {
            config.from.clone_from(from);
        }
        let (tls_mode, tls_parameters, opportunistic) = tls_settings(self.tls);
        config.tls = tls_mode;
        let parts = Parts {
            tls_parameters,
            opportunistic,
            credentials: self.credentials,
            hello: self.hello,
        };
        let mailer = Mailer::assemble(config, self.clock, self.sleeper, from, parts);
        Ok(ReconnectingTransport::from_mailer(mailer, self.pool_size))
    }
}

/// lettre's TLS setting in our terms: the mode, its parameters, and whether a missing
/// STARTTLS may fall back to plain text.
fn tls_settings(tls: Tls) -> (TlsMode, Option<TlsParameters>, bool) {
    match tls {
        Tls::None => (TlsMode::None, None, false),
        Tls::Opportunistic(parameters) => (TlsMode::StartTls, Some(parameters), true),
        Tls::Required(parameters) => (TlsMode::StartTls, Some(parameters), false),
        Tls::Wrapper(parameters) => (TlsMode::Implicit, Some(parameters), false),
    }
}

/// TLS parameters for `host` with the built-in (webpki) roots.
pub(crate) fn default_tls_parameters(host: &str) -> Result<TlsParameters, Error> {
    if host.trim().is_empty() {
        return Err(Error::Config("the host is empty".to_owned()));
    }
    TlsParameters::new(host.to_owned())
        .map_err(|e| Error::Config(format!("TLS setup for {host}: {e}")))
}
