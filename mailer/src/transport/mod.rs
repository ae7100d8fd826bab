//! [`ReconnectingTransport`]: the mailer as a lettre [`AsyncTransport`], a drop-in for
//! lettre's `AsyncSmtpTransport` that survives a flaky server, with a pool of sessions for
//! parallel senders.
//!
//! - `builder.rs`: [`ReconnectingTransportBuilder`], lettre's builder methods and ours.
//! - `pool.rs`: the slots, the idle sessions, and why an interrupted session never goes back.
//!
//! Every send goes through the same loop as [`Connection::send_mail`](crate::Connection::send_mail):
//! one code path for the library's own messages and for any lettre message.

mod builder;
mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use lettre::address::Envelope;
use lettre::{AsyncTransport, Message};
use tracing::debug;

use crate::counters::CountersSnapshot;
use crate::error::Error;
use crate::mailer::{Mailer, Sent};
use crate::transaction;
use pool::Pool;

pub use builder::{
    DEFAULT_POOL_SIZE, ReconnectingTransportBuilder, SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT,
};

/// Sends lettre messages (or raw envelope + bytes) through an SMTP server that may drop
/// the connection, reset it or answer 421: it reconnects with backoff and resends the same
/// bytes, Message-ID included. Cheap to clone (an `Arc` inside); clones share the pool and
/// the counters.
///
/// Per message, the same semantics as [`Connection::send_mail`](crate::Connection::send_mail):
/// - a closed or reset connection, a broken pipe, a step past its timeout or a 421:
///   reconnect (sleeping `retry_backoff(i)` before attempt i of an outage) and resend;
/// - a temporary refusal (451 greylisting, a rate limit, 452): RSET and retry after a
///   backoff, within the same bound;
/// - a bad-address reply to RCPT, DATA or the content: RSET, the session stays in the pool,
///   and the send returns [`Error::BadAddress`];
/// - bounded: at most `max_reconnects` reconnects and retries, and `reconnect_deadline`,
///   then [`Error::GaveUp`] (or the last refusal);
/// - the Message-ID is kept across resends, and added (at the top of the header block, in
///   the sender's domain) when the message has none: [`Sent::message_id`] says which.
///   Delivery is at-least-once: a resend after a lost reply to the final dot can store the
///   message twice, told apart by that Message-ID.
///
/// **Cancellation.** Dropping a send future (a `tokio::time::timeout`, a `select!` on
/// shutdown) is safe at any point. A session is in the pool only between transactions: a
/// send takes it out for each transaction and puts it back only once the server has
/// answered the end of it (or an RSET after a refusal). A send dropped in the middle of a
/// transaction drops its session, whose socket closes, and never hands it out again; the
/// server sees a client that went away and stores nothing it had not acknowledged. The
/// slot is freed at once, and the next send opens a fresh session in it.
///
/// **The pool.** Up to `pool_size` sessions; a send takes an idle one (the most recently
/// used) or opens one when none is idle, and waits (in FIFO order) when all are busy. A
/// session that breaks is dropped, and its slot opens a new one on the next send: a broken
/// session is never handed out. No NOOP before reuse: a session that died while idle fails
/// its MAIL, and the send reconnects and resends as for any other drop.
#[derive(Clone)]
pub struct ReconnectingTransport {
    mailer: Mailer,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for ReconnectingTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconnectingTransport")
            .field("server", &self.mailer.config().server)
            .field("port", &self.mailer.config().port)
            .field("tls", &self.mailer.config().tls)
            .field("idle", &self.pool.idle_count())
            .finish_non_exhaustive()
    }
}

impl ReconnectingTransport {
    /// A builder for SMTP submission over implicit TLS (port 465, `Tls::Wrapper`), the
    /// server's certificate checked against the built-in roots. As lettre's `relay`.
    pub fn relay(host: &str) -> Result<ReconnectingTransportBuilder, Error> {
        let parameters = builder::default_tls_parameters(host)?;
        Ok(ReconnectingTransportBuilder::new(
            host,
            SUBMISSIONS_PORT,
            lettre::transport::smtp::client::Tls::Wrapper(parameters),
        ))
    }

    /// A builder for SMTP submission with STARTTLS required (port 587, `Tls::Required`).
    /// As lettre's `starttls_relay`.
    pub fn starttls_relay(host: &str) -> Result<ReconnectingTransportBuilder, Error> {
        let parameters = builder::default_tls_parameters(host)?;
        Ok(ReconnectingTransportBuilder::new(
            host,
            SUBMISSION_PORT,
            lettre::transport::smtp::client::Tls::Required(parameters),
        ))
    }

    /// A builder for plain SMTP, no TLS (port 25): for a local relay or a test server.
    /// As lettre's `builder_dangerous`.
    pub fn builder_dangerous(host: impl Into<String>) -> ReconnectingTransportBuilder {
        ReconnectingTransportBuilder::new(
            &host.into(),
            SMTP_PORT,
            lettre::transport::smtp::client::Tls::None,
        )
    }

    pub(crate) fn from_mailer(mailer: Mailer, pool_size: usize) -> ReconnectingTransport {
        ReconnectingTransport {
            mailer,
            pool: Arc::new(Pool::new(pool_size)),
        }
    }

    /// Sends `email` to the envelope's recipients. What [`AsyncTransport::send_raw`] does;
    /// callable without the trait in scope.
    pub async fn send_envelope(&self, envelope: &Envelope, email: &[u8]) -> Result<Sent, Error> {
        let (outgoing, message_id) =
            crate::raw::outgoing(envelope, email, &self.mailer.inner.id_domain)?;
        self.send_outgoing(outgoing, message_id).await
    }

    /// Sends a lettre message. What [`AsyncTransport::send`] does; callable without the trait
    /// in scope. Unlike lettre's default `send`, which keeps the message and its formatted
    /// bytes for the whole send, only the bytes ready for DATA are kept: one copy of a big
    /// body, not three.
    pub async fn send_message(&self, message: Message) -> Result<Sent, Error> {
        let envelope = message.envelope().clone();
        let formatted = message.formatted();
        drop(message);
        let (outgoing, message_id) =
            crate::raw::outgoing(&envelope, &formatted, &self.mailer.inner.id_domain)?;
        drop(formatted);
        self.send_outgoing(outgoing, message_id).await
    }

    async fn send_outgoing(
        &self,
        outgoing: crate::message::Outgoing,
        message_id: String,
    ) -> Result<Sent, Error> {
        let mut lease = self.pool.lease(&self.mailer).await?;
        lease.conn.send_outgoing(&outgoing, message_id).await
    }

    /// The library's own plain-text message to `to` (all in one transaction and the `To:`
    /// header), from the builder's `.from()`, dated by its clock, as
    /// [`Connection::send_mail`](crate::Connection::send_mail).
    pub async fn send_mail(&self, to: &[String], subject: &str, body: &str) -> Result<Sent, Error> {
        let mut lease = self.pool.lease(&self.mailer).await?;
        lease.conn.send_mail(to, subject, body).await
    }

    /// Makes sure a session is open (as lettre's `test_connection`, but without a NOOP): an
    /// idle one is taken as it is, else one is opened with the bounded reconnect loop and
    /// left idle in the pool. `Ok(true)` when there is one; the error of the last attempt
    /// (e.g. [`Error::GaveUp`]) when the server cannot be reached. In dry-run mode (a
    /// transport from [`Mailer::transport`]) nothing is opened.
    pub async fn test_connection(&self) -> Result<bool, Error> {
        let mut lease = self.pool.lease(&self.mailer).await?;
        lease.conn.open_if_needed().await?;
        Ok(true)
    }

    /// Counters of every send of this transport (and its clones) so far.
    pub fn counters(&self) -> CountersSnapshot {
        self.mailer.counters()
    }

    /// Sessions open and idle in the pool right now.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Refuses further sends ([`Error::Config`] "shut down") and ends the idle sessions with
    /// QUIT; sessions busy in a send are closed when that send ends.
    pub async fn close(&self) {
        let timeout = self.mailer.config().step_timeout;
        for mut session in self.pool.close() {
            if let Err(failure) = transaction::quit(&mut session, timeout).await {
                debug!("QUIT failed: {}", failure.describe());
            }
        }
    }
}

/// Written out by hand rather than with the `async-trait` macro lettre uses, to keep the
/// library's own dependencies to lettre, tokio, rand and tracing: this is what the macro
/// would generate.
impl AsyncTransport for ReconnectingTransport {
    type Ok = Sent;
    type Error = Error;

    fn send<'life0, 'async_trait>(
        &'life0 self,
        message: Message,
    ) -> Pin<Box<dyn Future<Output = Result<Sent, Error>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send_message(message))
    }

    fn send_raw<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        envelope: &'life1 Envelope,
        email: &'life2 [u8],
    ) -> Pin<Box<dyn Future<Output = Result<Sent, Error>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send_envelope(envelope, email))
    }

    fn shutdown<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.close())
    }
}
