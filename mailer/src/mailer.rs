//! [`Mailer`] (shared settings, counters, the reconnect loop) and [`Connection`] (one SMTP
//! session that survives a flaky server: `send_mail` reconnects and resends on its own, and
//! retries a transaction the server refused for now).

use std::sync::Arc;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tracing::{debug, info, warn};

use crate::backoff::{Sleeper, TokioSleeper};
use crate::clock::Clock;
use crate::config::{Config, TlsMode};
use crate::counters::{Counters, CountersSnapshot};
use crate::disposition::Disposition;
use crate::error::Error;
use crate::message::{self, Outgoing, parse_from};
use crate::reconnect::Outage;
use crate::session::{self, Dialer, Session, StepFailure, reply_text};
use crate::sleeps::BackoffKind;
use crate::transaction;

/// Sends mail; cheap to clone (an `Arc` inside), so tasks can share one and each open its
/// own [`Connection`]. Counters are shared by all clones.
#[derive(Clone, Debug)]
pub struct Mailer {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) sleeper: Arc<dyn Sleeper>,
    /// The sender of `send_mail`; a transport built without `.from()` has none.
    pub(crate) from: Option<Mailbox>,
    /// Right-hand side of Message-IDs: the sender's domain, as RFC 5322 3.6.4 suggests.
    pub(crate) id_domain: String,
    pub(crate) dialer: Dialer,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// What a mailer takes besides its [`Config`] once the configuration is read: lettre's TLS
/// parameters, credentials and EHLO name.
pub(crate) struct Parts {
    pub(crate) tls_parameters: Option<TlsParameters>,
    pub(crate) opportunistic: bool,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) hello: ClientId,
}

/// Checks what both [`Mailer::new`] and the transport's builder need: a server and port
/// (unless in dry-run mode), a non-zero step timeout, an EHLO name without whitespace.
pub(crate) fn check_config(config: &Config) -> Result<(), Error> {
    if !config.dry_run {
        if config.server.trim().is_empty() {
            return Err(Error::Config("`server` is empty".to_owned()));
        }
        if config.port == 0 {
            return Err(Error::Config("`port` is 0".to_owned()));
        }
    }
    if config.step_timeout.is_zero() {
        return Err(Error::Config("`step_timeout` is zero".to_owned()));
    }
    if config
        .hello_name
        .contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return Err(Error::Config(format!(
            "`hello_name` {:?} contains whitespace",
            config.hello_name
        )));
    }
    Ok(())
}

/// A message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The `Message-ID` header, angle brackets included; the same on every attempt.
    pub message_id: String,
    /// Transactions tried (1 when nothing failed; 0 in dry-run mode).
    pub attempts: u32,
}

impl Mailer {
    /// Checks the configuration (sender address, server, timeouts) and reads the root CA.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Result<Mailer, Error> {
        Mailer::with_sleeper(config, clock, Arc::new(TokioSleeper))
    }

    /// Like [`Mailer::new`], with the reconnect loop sleeping through `sleeper` (tests
    /// record the schedule this way without waiting for it).
    pub fn with_sleeper(
        config: Config,
        clock: Arc<dyn Clock>,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Mailer, Error> {
        if config.from.trim().is_empty() {
            return Err(Error::Config("`from` is empty".to_owned()));
        }
        let from = parse_from(&config.from)?;
        check_config(&config)?;
        let tls_parameters = match config.tls {
            TlsMode::None => None,
            TlsMode::StartTls | TlsMode::Implicit => Some(tls_parameters(&config)?),
        };
        let hello = if config.hello_name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(config.hello_name.clone())
        };
        let parts = Parts {
            tls_parameters,
            opportunistic: false,
            credentials: config
                .credentials
                .clone()
                .map(|(user, password)| Credentials::new(user, password)),
            hello,
        };
        Ok(Mailer::assemble(config, clock, sleeper, Some(from), parts))
    }

    /// A mailer from checked settings; the transport's builder comes here too, with lettre's
    /// own TLS parameters, credentials and EHLO name, and maybe no sender.
    pub(crate) fn assemble(
        config: Config,
        clock: Arc<dyn Clock>,
        sleeper: Arc<dyn Sleeper>,
        from: Option<Mailbox>,
        parts: Parts,
    ) -> Mailer {
        // Right-hand side of the Message-IDs we make: the sender's domain, else our EHLO
        // name when it is a domain.
        let id_domain = match (&from, &parts.hello) {
            (Some(from), _) => from.email.domain().to_owned(),
            (None, ClientId::Domain(domain)) if !domain.is_empty() => domain.clone(),
            _ => "localhost".to_owned(),
        };
        let dialer = Dialer {
            server: config.server.clone(),
            port: config.port,
            tls: config.tls,
            tls_parameters: parts.tls_parameters,
            opportunistic: parts.opportunistic,
            hello: parts.hello,
            credentials: parts.credentials,
            step_timeout: config.step_timeout,
            pipelining: std::sync::OnceLock::new(),
        };
        Mailer {
            inner: Arc::new(Inner {
                config,
                clock,
                sleeper,
                from,
                id_domain,
                dialer,
                counters: Counters::default(),
            }),
        }
    }

    /// A [`ReconnectingTransport`](crate::ReconnectingTransport) over this mailer's
    /// settings (TLS, root CA, credentials, bounds, dry run) with a pool of `pool_size`
    /// sessions (at least 1); it shares this mailer's counters.
    pub fn transport(&self, pool_size: usize) -> crate::ReconnectingTransport {
        crate::ReconnectingTransport::from_mailer(self.clone(), pool_size.max(1))
    }

    /// The clock this mailer dates its messages by (`FAKECLOCK` in the programs' tests).
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Counters of every connection of this mailer (and its clones) so far.
    pub fn counters(&self) -> CountersSnapshot {
        self.inner.counters.snapshot()
    }

    /// Opens a session, retrying with backoff while the server is unreachable, closes on
    /// us, resets or answers 421, within the configured bound. In dry-run mode it opens
    /// nothing.
    pub async fn connect(&self) -> Result<Connection, Error> {
        let smtp = if self.inner.config.dry_run {
            None
        } else {
            let mut outage = None;
            Some(self.open(&mut outage).await?)
        };
        Ok(Connection {
            mailer: self.clone(),
            smtp,
            gave_up: false,
        })
    }
}

/// One SMTP session. Not shared: a task owns it and sends one message at a time.
pub struct Connection {
    mailer: Mailer,
    /// `None` in dry-run mode, and after the session died until the next send reconnects.
    smtp: Option<Session>,
    /// The last send gave up reconnecting: the next one tries once instead of a whole
    /// bounded loop again, so a caller working through a list against a dead server
    /// fails fast (and recovers as soon as the server is back).
    gave_up: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("open", &self.smtp.is_some())
            .field("gave_up", &self.gave_up)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection over a session from the transport's pool (or none yet: the first send
    /// opens one).
    pub(crate) fn pooled(mailer: Mailer, smtp: Option<Session>, gave_up: bool) -> Connection {
        Connection {
            mailer,
            smtp,
            gave_up,
        }
    }

    /// Takes the session out, to go back to the pool. Only a session in a clean state is
    /// ever held here (see `send_outgoing`).
    pub(crate) fn take_session(&mut self) -> Option<Session> {
        self.smtp.take()
    }

    /// Opens a session (with the bounded reconnect loop) unless one is open or in dry-run
    /// mode: what [`Mailer::connect`] does, for a pooled connection.
    pub(crate) async fn open_if_needed(&mut self) -> Result<(), Error> {
        if self.smtp.is_none() && !self.mailer.inner.config.dry_run {
            let mut outage = None;
            let opened = self.mailer.open(&mut outage).await;
            self.gave_up = matches!(opened, Err(Error::GaveUp { .. }));
            self.smtp = Some(opened?);
        }
        Ok(())
    }

    /// Whether the last send gave up reconnecting (see the field).
    pub(crate) fn gave_up(&self) -> bool {
        self.gave_up
    }

    /// Sends one message to `to` (all in one transaction, all in the `To:` header).
    ///
    /// When the server closes the connection, resets it, the pipe breaks, a step times out
    /// or it answers 421, reconnects with backoff and sends the same message (same
    /// Message-ID) again. If the server had stored the message but its reply was lost, the
    /// recipient gets it twice, told apart by the Message-ID: at-least-once delivery.
    ///
    /// A temporary refusal (a 4xx other than 421 and the bad-address codes: greylisting's
    /// 451, a rate limit, 452) at MAIL, RCPT, DATA or after the message: RSET, sleep
    /// `retry_backoff(k)` before the k-th retry, and try the whole transaction again, within
    /// the bound of reconnects (`max_reconnects`, `reconnect_deadline`, counted together);
    /// past it, the refusal is returned (a [`Error::Rejected`] whose `is_temporary()` holds).
    ///
    /// A bad-address reply to RCPT, DATA or the message gives [`Error::BadAddress`] after
    /// RSET (on MAIL FROM the code concerns our sender, so it is [`Error::Rejected`]); any
    /// other reply gives an error after RSET; the connection stays usable in both cases.
    ///
    /// Cancel by dropping the future (e.g. in `tokio::select!` with a shutdown signal): every
    /// wait in here, backoff sleeps included, is a cancellation point.
    pub async fn send_mail(
        &mut self,
        to: &[String],
        subject: &str,
        body: &str,
    ) -> Result<Sent, Error> {
        let inner = Arc::clone(&self.mailer.inner);
        let Some(from) = &inner.from else {
            return Err(Error::Config(
                "no sender for send_mail: set one (the transport builder's `.from()`)".to_owned(),
            ));
        };
        let message_id = message::new_message_id(&inner.id_domain);
        let outgoing = message::build(
            from,
            to,
            subject,
            body,
            inner.clock.now(),
            message_id.clone(),
        )?;
        if inner.config.dry_run {
            inner.counters.dry_run();
            info!(
                to = %to.join(", "),
                subject,
                message_id,
                "dry run: not sending\n{body}"
            );
            return Ok(Sent {
                message_id,
                attempts: 0,
            });
        }
        self.send_outgoing(&outgoing, message_id).await
    }

    /// Sends a built message (envelope + content) with the semantics of
    /// [`Connection::send_mail`]; `message_id` is what the content carries, for logs and
    /// [`Sent`]. The one send loop of the crate: `send_mail` and the transport's sends all
    /// come here.
    pub(crate) async fn send_outgoing(
        &mut self,
        outgoing: &Outgoing,
        message_id: String,
    ) -> Result<Sent, Error> {
        let inner = Arc::clone(&self.mailer.inner);
        if inner.config.dry_run {
            inner.counters.dry_run();
            let to: Vec<&str> = outgoing.to.iter().map(|(raw, _)| raw.as_str()).collect();
            let content = match &outgoing.content {
                message::Content::Text(text) => text.clone(),
                message::Content::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            };
            info!(to = %to.join(", "), message_id, "dry run: not sending\n{content}");
            return Ok(Sent {
                message_id,
                attempts: 0,
            });
        }
        let timeout = inner.config.step_timeout;
        let mut outage: Option<Outage> = None;
        let mut attempts = 0;
        loop {
            // Taken out for the transaction and put back only when it ended cleanly: if
            // this future is dropped half-way (a caller's timeout or shutdown), the session,
            // possibly in the middle of a command, goes with it instead of being reused
            // out of step with the server.
            let mut session = match self.smtp.take() {
                Some(session) => session,
                None => {
                    let opened = if self.gave_up {
                        self.mailer.open_once_after_giving_up().await
                    } else {
                        self.mailer.open(&mut outage).await
                    };
                    self.gave_up = matches!(opened, Err(Error::GaveUp { .. }));
                    opened?
                }
            };
            attempts += 1;
            let failure = match transaction::transact(&mut session, outgoing, timeout).await {
                Ok(()) => {
                    self.smtp = Some(session);
                    inner.counters.sent();
                    debug!(message_id, attempts, "sent");
                    return Ok(Sent {
                        message_id,
                        attempts,
                    });
                }
                Err(failure) => failure,
            };
            let cause = failure.cause();
            match failure.disposition() {
                Disposition::Reconnect => {
                    inner.counters.failed(cause);
                    inner.counters.retried(cause);
                    warn!(%cause, message_id, "will reconnect and resend: {}", failure.describe());
                    drop(session);
                    outage
                        .get_or_insert_with(|| Outage::start(inner.sleeper.now()))
                        .record(cause, &failure);
                }
                Disposition::Retry => {
                    inner.counters.failed(cause);
                    let trouble = outage.get_or_insert_with(|| Outage::start(inner.sleeper.now()));
                    trouble.record(cause, &failure);
                    let next = trouble.next_retry(&inner.config, inner.sleeper.now());
                    // RSET either way: the connection stays usable for the retry or the
                    // caller's next message.
                    if !failure.abandon {
                        self.smtp = reset(session, timeout).await;
                    }
                    let Some((index, delay, cut)) = next else {
                        warn!(%cause, message_id, "still refused at the bound, giving up: {}", failure.describe());
                        return Err(failure.into_error());
                    };
                    inner.counters.retried(cause);
                    warn!(%cause, message_id, retry = index, ?delay, "refused for now, will retry: {}", failure.describe());
                    self.mailer
                        .back_off(BackoffKind::Retry, index, delay, cut)
                        .await;
                }
                Disposition::BadAddress(code) => {
                    inner.counters.bad_address();
                    let address = match failure.recipient.and_then(|i| outgoing.to.get(i)) {
                        Some((raw, _)) => raw.clone(),
                        None => outgoing
                            .to
                            .iter()
                            .map(|(raw, _)| raw.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    let message = match &failure.kind {
                        session::FailureKind::Smtp(e) => reply_text(e),
                        _ => String::new(),
                    };
                    if !failure.abandon {
                        self.smtp = reset(session, timeout).await;
                    }
                    return Err(Error::BadAddress {
                        address,
                        code,
                        message,
                    });
                }
                Disposition::Fatal => {
                    inner.counters.failed(cause);
                    if failure.session_in_step() && !failure.abandon {
                        self.smtp = reset(session, timeout).await;
                    }
                    return Err(failure.into_error());
                }
            }
        }
    }

    /// True while a session is open (always false in dry-run mode).
    pub fn is_open(&self) -> bool {
        self.smtp.is_some()
    }

    /// Ends the session with QUIT. A session that had already died ends quietly.
    pub async fn close(mut self) -> Result<(), Error> {
        let timeout = self.mailer.inner.config.step_timeout;
        match self.smtp.as_mut() {
            Some(smtp) => transaction::quit(smtp, timeout)
                .await
                .map_err(StepFailure::into_error),
            None => Ok(()),
        }
    }
}

/// RSET; gives the session back, or drops it when it cannot even do that (the next send
/// reconnects).
async fn reset(mut session: Session, timeout: std::time::Duration) -> Option<Session> {
    match transaction::rset(&mut session, timeout).await {
        Ok(()) => Some(session),
        Err(failure) => {
            debug!(
                "RSET failed, dropping the connection: {}",
                failure.describe()
            );
            None
        }
    }
}

/// TLS parameters for the configured server name, with the extra root CA if any.
fn tls_parameters(config: &Config) -> Result<TlsParameters, Error> {
    let mut builder = TlsParameters::builder(config.server.clone());
    if let Some(path) = &config.root_ca {
        let root_ca_error = |reason: String| Error::RootCa {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| root_ca_error(e.to_string()))?;
        // lettre reads every CERTIFICATE block (and refuses malformed PEM) but accepts a file
        // with none, which would leave TLS failing later for no visible reason.
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
            return Err(root_ca_error("no CERTIFICATE block in the file".to_owned()));
        }
        let certificate =
            Certificate::from_pem(&pem).map_err(|e| root_ca_error(format!("not PEM: {e}")))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))
}
