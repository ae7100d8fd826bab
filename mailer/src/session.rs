//! Opening one SMTP session over lettre's low-level connection (connect, greeting, EHLO,
//! STARTTLS, AUTH), every step under `step_timeout`, and how a step failed ([`StepFailure`]).
//! The mail transaction itself is in `transaction.rs`.

use std::future::Future;
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;

use crate::config::TlsMode;
use crate::disposition::{Cause, Disposition, cause, cause_of_io, disposition};
use crate::error::{Error, Step};
use crate::reply_check::{ReplyCheck, violation};

/// What it takes to open a session; built once per `Mailer`.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub(crate) server: String,
    pub(crate) port: u16,
    pub(crate) tls: TlsMode,
    pub(crate) tls_parameters: Option<TlsParameters>,
    /// With [`TlsMode::StartTls`]: go on in plain text when the server does not offer
    /// STARTTLS (lettre's `Tls::Opportunistic`) instead of refusing to send.
    pub(crate) opportunistic: bool,
    pub(crate) hello: ClientId,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) step_timeout: Duration,
    /// Whether the server offers PIPELINING, learnt on the first session of this mailer.
    /// Asking costs a second EHLO round trip; a mailer talks to one configured server, so
    /// later sessions (every reconnect of a flaky server) reuse the answer.
    pub(crate) pipelining: std::sync::OnceLock<bool>,
}

/// An open SMTP session and what we learnt about the server.
pub(crate) struct Session {
    pub(crate) conn: AsyncSmtpConnection,
    /// The server advertised PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write.
    pub(crate) pipelining: bool,
}

/// How one step failed.
#[derive(Debug)]
pub(crate) enum FailureKind {
    /// lettre's error (a reply, an io error, a TLS error...).
    Smtp(SmtpError),
    /// The TCP connect, when we make it ourselves (plain connections, see `reply_check`).
    Io(std::io::Error),
    /// The step did not finish within `step_timeout`.
    Timeout(Duration),
    /// Refused on our side before or instead of a step (e.g. no STARTTLS offered).
    Local(Error),
}

/// A failed step, with the recipient it concerned (RCPT only).
#[derive(Debug)]
pub(crate) struct StepFailure {
    pub(crate) step: Step,
    pub(crate) recipient: Option<usize>,
    pub(crate) kind: FailureKind,
    /// The session cannot be RSET back to a clean state (a pipelined DATA was accepted
    /// after a refusal): drop it instead.
    pub(crate) abandon: bool,
}

impl StepFailure {
    pub(crate) fn cause(&self) -> Cause {
        match &self.kind {
            FailureKind::Smtp(e) => cause(e),
            FailureKind::Io(e) => cause_of_io(e.kind()),
            FailureKind::Timeout(_) => Cause::Timeout,
            FailureKind::Local(_) => Cause::Other,
        }
    }

    pub(crate) fn disposition(&self) -> Disposition {
        match &self.kind {
            // A bad-address code on MAIL FROM is about our sender, not the recipient:
            // marking the recipient bad would be wrong, so it is a plain refusal.
            FailureKind::Smtp(e) if self.step == Step::Mail => match disposition(e) {
                Disposition::BadAddress(_) => Disposition::Fatal,
                other => other,
            },
            // Garbage from the server: another attempt would meet the same server.
            FailureKind::Smtp(e) if not_smtp(e).is_some() => Disposition::Fatal,
            FailureKind::Smtp(e) => disposition(e),
            FailureKind::Io(e) => match cause_of_io(e.kind()) {
                Cause::Other => Disposition::Fatal,
                _ => Disposition::Reconnect,
            },
            // After a timeout we cannot know where the server is in the dialogue: start over.
            FailureKind::Timeout(_) => Disposition::Reconnect,
            FailureKind::Local(_) => Disposition::Fatal,
        }
    }

    /// True when the server answered with a reply, so the session is still in step and an
    /// RSET can bring it back to a clean state.
    pub(crate) fn session_in_step(&self) -> bool {
        matches!(&self.kind, FailureKind::Smtp(e) if e.status().is_some())
    }

    /// A short description for logs and `GaveUp`.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            FailureKind::Smtp(e) => match not_smtp(e) {
                Some(detail) => format!("{}: {detail}", self.step),
                None => format!("{}: {e}", self.step),
            },
            FailureKind::Io(e) => format!("{}: {e}", self.step),
            FailureKind::Timeout(after) => format!("{} timed out after {after:?}", self.step),
            FailureKind::Local(e) => e.to_string(),
        }
    }

    /// The error returned to the caller when this failure is not retried.
    pub(crate) fn into_error(self) -> Error {
        let step = self.step;
        match self.kind {
            FailureKind::Smtp(source) if not_smtp(&source).is_some() => Error::Protocol {
                step,
                detail: not_smtp(&source).unwrap_or_default(),
            },
            FailureKind::Io(e) => Error::Protocol {
                step,
                detail: e.to_string(),
            },
            FailureKind::Smtp(source) => match source.status() {
                Some(code) => Error::Rejected {
                    step,
                    code: code.into(),
                    message: reply_text(&source),
                },
                None => Error::Smtp { step, source },
            },
            FailureKind::Timeout(after) => Error::Timeout { step, after },
            FailureKind::Local(e) => e,
        }
    }
}

/// What was wrong when the server's bytes were not an SMTP reply: our own check's verdict
/// (plain connections), or lettre's parser failing (`error Tag at: xyz`), said plainly.
pub(crate) fn not_smtp(err: &SmtpError) -> Option<String> {
    if let Some(v) = violation(err) {
        return Some(v.to_string());
    }
    if !err.is_response() || err.status().is_some() {
        return None;
    }
    let text = err.to_string();
    let (_, received) = text.split_once(" at: ")?;
    Some(format!(
        "the server's reply is not SMTP: no reply code (received \"{}\")",
        received.escape_debug()
    ))
}

/// The server's text of a negative reply (lettre keeps it as the error's source).
pub(crate) fn reply_text(err: &SmtpError) -> String {
    std::error::Error::source(err).map_or_else(String::new, ToString::to_string)
}

/// Runs one step under the timeout.
pub(crate) async fn step<T>(
    timeout: Duration,
    step: Step,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, StepFailure> {
    let fail = |kind| StepFailure {
        step,
        recipient: None,
        kind,
        abandon: false,
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(fail(FailureKind::Smtp(e))),
        Err(_) => Err(fail(FailureKind::Timeout(timeout))),
    }
}

impl Dialer {
    /// Connects, reads the greeting, says EHLO, upgrades with STARTTLS and authenticates,
    /// as configured. Does not retry: the caller decides with [`StepFailure::disposition`].
    pub(crate) async fn open(&self) -> Result<Session, StepFailure> {
        let t = self.step_timeout;
        let mut conn = match self.tls {
            TlsMode::None => self.connect_checked().await?,
            // lettre does TLS (from the start, or after STARTTLS) inside its own stream,
            // above anything we could hand it, so these replies go unchecked.
            TlsMode::StartTls | TlsMode::Implicit => {
                let implicit = match self.tls {
                    TlsMode::Implicit => self.tls_parameters.clone(),
                    TlsMode::None | TlsMode::StartTls => None,
                };
                step(
                    t,
                    Step::Connect,
                    AsyncSmtpConnection::connect_tokio1(
                        (self.server.as_str(), self.port),
                        Some(t),
                        &self.hello,
                        implicit,
                        None,
                    ),
                )
                .await?
            }
        };
        let plain_allowed = self.opportunistic && !conn.can_starttls();
        if self.tls == TlsMode::StartTls && !plain_allowed {
            let Some(parameters) = self.tls_parameters.clone().filter(|_| conn.can_starttls())
            else {
                return Err(StepFailure {
                    step: Step::StartTls,
                    recipient: None,
                    abandon: false,
                    kind: FailureKind::Local(Error::Config(format!(
                        "{}:{} does not offer STARTTLS; refusing to send in plain text",
                        self.server, self.port
                    ))),
                });
            };
            step(t, Step::StartTls, conn.starttls(parameters, &self.hello)).await?;
        }
        let pipelining = match self.pipelining.get() {
            Some(&known) => known,
            None => {
                let offered = self.ask_pipelining(&mut conn).await?;
                *self.pipelining.get_or_init(|| offered)
            }
        };
        if let Some(credentials) = &self.credentials {
            step(
                t,
                Step::Auth,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await?;
        }
        Ok(Session { conn, pipelining })
    }

    /// A plain TCP connection whose replies are checked as they arrive (`reply_check`), with
    /// lettre's greeting and EHLO on top. Only for plain sessions: STARTTLS would wrap the
    /// checked stream in TLS, and the check would then see ciphertext.
    async fn connect_checked(&self) -> Result<AsyncSmtpConnection, StepFailure> {
        let t = self.step_timeout;
        let failed = |kind| StepFailure {
            step: Step::Connect,
            recipient: None,
            kind,
            abandon: false,
        };
        let tcp = match tokio::time::timeout(
            t,
            tokio::net::TcpStream::connect((self.server.as_str(), self.port)),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(failed(FailureKind::Io(e))),
            Err(_) => return Err(failed(FailureKind::Timeout(t))),
        };
        step(
            t,
            Step::Connect,
            AsyncSmtpConnection::connect_with_transport(
                Box::new(ReplyCheck::new(tcp)),
                &self.hello,
            ),
        )
        .await
    }

    /// lettre keeps only the EHLO keywords it uses, PIPELINING not among them, so ask
    /// again (before AUTH: a new EHLO after it may drop the authentication). One round
    /// trip, once per mailer, buys two per message.
    async fn ask_pipelining(&self, conn: &mut AsyncSmtpConnection) -> Result<bool, StepFailure> {
        let t = self.step_timeout;
        match step(
            t,
            Step::Connect,
            conn.command(Ehlo::new(self.hello.clone())),
        )
        .await
        {
            Ok(ehlo) => Ok(ehlo.message().skip(1).any(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
            })),
            // A server that answered the first EHLO but refuses a second one (RFC 5321
            // allows it; some do not) gets the plain one-command-at-a-time dialogue.
            Err(failure) if failure.session_in_step() && failure.cause() != Cause::Reply421 => {
                Ok(false)
            }
            Err(failure) => Err(failure),
        }
    }
}
