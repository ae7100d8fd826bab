//! One SMTP session driven step by step with lettre's low-level connection, every step under
//! `step_timeout`: open (connect, STARTTLS, AUTH) and one mail transaction.
//! The message content goes out in one write (see `message::for_data`).
//!
//! Why not lettre's `send()`: it closes the connection on any error, a 550 on RCPT included,
//! while a bad address must cost only an RSET. Why no NOOP before each message (as lettre's
//! pool does): it costs a round trip per message, and a dead connection shows up as a failed
//! MAIL anyway, which the caller turns into a reconnect and a resend.

use std::future::Future;
use std::time::Duration;

use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;

use crate::config::TlsMode;
use crate::disposition::{Cause, Disposition, cause, disposition};
use crate::error::{Error, Step};
use crate::message::Outgoing;

/// What it takes to open a session; built once per `Mailer`.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub(crate) server: String,
    pub(crate) port: u16,
    pub(crate) tls: TlsMode,
    pub(crate) tls_parameters: Option<TlsParameters>,
    pub(crate) hello: ClientId,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) step_timeout: Duration,
}

/// How one step failed.
#[derive(Debug)]
pub(crate) enum FailureKind {
    /// lettre's error (a reply, an io error, a TLS error...).
    Smtp(SmtpError),
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
}

impl StepFailure {
    pub(crate) fn cause(&self) -> Cause {
        match &self.kind {
            FailureKind::Smtp(e) => cause(e),
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
            FailureKind::Smtp(e) => disposition(e),
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
            FailureKind::Smtp(e) => format!("{}: {e}", self.step),
            FailureKind::Timeout(after) => format!("{} timed out after {after:?}", self.step),
            FailureKind::Local(e) => e.to_string(),
        }
    }

    /// The error returned to the caller when this failure is not retried.
    pub(crate) fn into_error(self) -> Error {
        let step = self.step;
        match self.kind {
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

/// The server's text of a negative reply (lettre keeps it as the error's source).
pub(crate) fn reply_text(err: &SmtpError) -> String {
    std::error::Error::source(err).map_or_else(String::new, ToString::to_string)
}

/// Runs one step under the timeout.
async fn step<T>(
    timeout: Duration,
    step: Step,
    fut: impl Future<Output = Result<T, SmtpError>>,
) -> Result<T, StepFailure> {
    let fail = |kind| StepFailure {
        step,
        recipient: None,
        kind,
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
    pub(crate) async fn open(&self) -> Result<AsyncSmtpConnection, StepFailure> {
        let t = self.step_timeout;
        let implicit = match self.tls {
            TlsMode::Implicit => self.tls_parameters.clone(),
            TlsMode::None | TlsMode::StartTls => None,
        };
        let mut conn = step(
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
        .await?;
        if self.tls == TlsMode::StartTls {
            let Some(parameters) = self.tls_parameters.clone().filter(|_| conn.can_starttls())
            else {
                return Err(StepFailure {
                    step: Step::StartTls,
                    recipient: None,
                    kind: FailureKind::Local(Error::Config(format!(
                        "{}:{} does not offer STARTTLS; refusing to send in plain text",
                        self.server, self.port
                    ))),
                });
            };
            step(t, Step::StartTls, conn.starttls(parameters, &self.hello)).await?;
        }
        if let Some(credentials) = &self.credentials {
            step(
                t,
                Step::Auth,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await?;
        }
        Ok(conn)
    }
}

/// One mail transaction: MAIL, RCPT for each recipient, DATA, the message.
pub(crate) async fn transact(
    conn: &mut AsyncSmtpConnection,
    message: &Outgoing,
    timeout: Duration,
) -> Result<(), StepFailure> {
    step(
        timeout,
        Step::Mail,
        conn.command(Mail::new(Some(message.from.clone()), Vec::new())),
    )
    .await?;
    for (index, (_, address)) in message.to.iter().enumerate() {
        step(
            timeout,
            Step::Rcpt,
            conn.command(Rcpt::new(address.clone(), Vec::new())),
        )
        .await
        .map_err(|mut failure| {
            failure.recipient = Some(index);
            failure
        })?;
    }
    step(timeout, Step::Data, conn.command(Data)).await?;
    // Already dot-stuffed and terminated: sent as one "command", i.e. one write.
    step(timeout, Step::Message, conn.command(Content(&message.wire))).await?;
    Ok(())
}

/// The DATA content, written by lettre's `command` as it is.
struct Content<'a>(&'a str);

impl std::fmt::Display for Content<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// RSET after a refused transaction (RFC 5321 4.1.1.5), so the next one starts clean.
pub(crate) async fn rset(
    conn: &mut AsyncSmtpConnection,
    timeout: Duration,
) -> Result<(), StepFailure> {
    step(timeout, Step::Rset, conn.command(Rset))
        .await
        .map(drop)
}

/// QUIT.
pub(crate) async fn quit(
    conn: &mut AsyncSmtpConnection,
    timeout: Duration,
) -> Result<(), StepFailure> {
    step(timeout, Step::Quit, conn.quit()).await.map(drop)
}
