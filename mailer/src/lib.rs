//! mailer: send mail through an SMTP server that may drop the connection, reset it or
//! answer 421, reconnecting with exponential backoff and resending the same message; a
//! temporary refusal (451 greylisting, a rate limit, 452) is RSET and retried after a
//! backoff within the same bound.
//!
//! # As a lettre transport
//!
//! [`ReconnectingTransport`] implements [`lettre::AsyncTransport`] and is built like
//! lettre's `AsyncSmtpTransport`: swap the type, keep the messages. Here against an
//! in-process [mail-test-srv](../mail_test_srv/index.html) that closes the connection on
//! 35% of the MAIL commands; every message still arrives, exactly once, as lettre
//! formatted it:
//!
//! ```
//! use mailer::ReconnectingTransport;
//! use mailer::lettre::message::{MultiPart, SinglePart};
//! use mailer::lettre::{AsyncTransport, Message};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = mail_test_srv::start(mail_test_srv::Config {
//!     faults: vec!["mail:close:35%".parse()?],
//!     ..mail_test_srv::Config::ephemeral()
//! })
//! .await?;
//!
//! let mailer = ReconnectingTransport::builder_dangerous("127.0.0.1")
//!     .port(server.smtp_addr().port())
//!     .reconnect_base(std::time::Duration::from_millis(10))
//!     .build()?;
//! for n in 0..10 {
//!     let message = Message::builder()
//!         .from("Service <service@example.com>".parse()?)
//!         .to(format!("user{n}@example.org").parse()?)
//!         .subject("Your report")
//!         .multipart(MultiPart::alternative_plain_html(
//!             "Your report is ready.".to_owned(),
//!             "<p>Your report is <b>ready</b>.</p>".to_owned(),
//!         ))?;
//!     let sent = mailer.send(message).await?; // reconnects and resends as needed
//!     assert!(sent.attempts >= 1);
//! }
//!
//! let store = server.state().store();
//! assert_eq!(store.len(), 10);
//! assert!(mailer.counters().retries_total() > 0, "the server did close on us");
//! # Ok(())
//! # }
//! ```
//!
//! Sends are cancellable (drop the future: the interrupted session is closed, never
//! reused) and bounded (`max_reconnects`, `reconnect_deadline`); a bad address comes back
//! typed after RSET, with the session kept:
//!
//! ```
//! # use mailer::{Error, ReconnectingTransport};
//! # use mailer::lettre::{AsyncTransport, Message};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = mail_test_srv::start(mail_test_srv::Config {
//!     faults: vec!["rcpt:reply=550:to=gone@example.org".parse()?],
//!     ..mail_test_srv::Config::ephemeral()
//! })
//! .await?;
//! let mailer = ReconnectingTransport::builder_dangerous("127.0.0.1")
//!     .port(server.smtp_addr().port())
//!     .build()?;
//! let message = Message::builder()
//!     .from("service@example.com".parse()?)
//!     .to("gone@example.org".parse()?)
//!     .subject("hello")
//!     .body("hi\n".to_owned())?;
//! match mailer.send(message).await {
//!     Err(Error::BadAddress { address, code: 550, .. }) => assert_eq!(address, "gone@example.org"),
//!     other => panic!("expected a bad address, got {other:?}"),
//! }
//! assert_eq!(mailer.idle_connections(), 1); // RSET, and kept for the next message
//! # Ok(())
//! # }
//! ```
//!
//! The library's own API:
//! ```text
//! Config { server, port, tls: TlsMode {None|StartTls|Implicit}, root_ca, credentials,
//!          from, hello_name, reconnect_base, reconnect_max, max_reconnects,
//!          reconnect_deadline, step_timeout, dry_run }            + Default
//! Mailer::new(Config, Arc<dyn Clock>) -> Result<Mailer, Error>    (Clone; share across tasks)
//! Mailer::with_sleeper(Config, Arc<dyn Clock>, Arc<dyn Sleeper>)  (tests: record the backoff)
//! Mailer::connect(&self).await -> Result<Connection, Error>       (retries within the bound)
//! Mailer::counters(&self) -> CountersSnapshot  {sent, bad_address, failed_by_cause,
//!          retries_by_cause, reconnect_attempts, reconnects, connect_failures_by_cause,
//!          dry_run, sleeps: Vec<BackoffSleep {kind, index, planned, slept, ..}>} + Display
//! Mailer::config(&self) -> &Config
//! Connection::send_mail(&mut self, to: &[String], subject, body).await -> Result<Sent, Error>
//! Connection::is_open(&self) -> bool
//! Connection::close(self).await -> Result<(), Error>               (QUIT)
//! Sent { message_id, attempts }
//! ReconnectingTransport::{relay(host)?, starttls_relay(host)?, builder_dangerous(host)}
//!          .port() .credentials() .tls(lettre Tls) .hello_name() .timeout()/.step_timeout()
//!          .reconnect_base() .reconnect_max() .max_reconnects() .reconnect_deadline()
//!          .pool_size(N) .from() .clock() .sleeper() .build()? -> ReconnectingTransport
//! impl lettre::AsyncTransport<Ok = Sent, Error = Error> for ReconnectingTransport
//!          (send(Message), send_raw(&Envelope, &[u8]), shutdown());
//!          send_message(Message), send_envelope(..), send_mail(to, subject, body),
//!          test_connection() (a session open in the pool, no NOOP), counters(),
//!          idle_connections(), close()
//! Mailer::transport(pool_size) -> ReconnectingTransport  (the mailer's Config, clock, counters)
//! Mailer::clock() -> Arc<dyn Clock>
//! text_message(&Mailbox, to, subject, body, date) -> Result<lettre::Message, Error>
//!          (the checked plain-text message of send_mail, as a lettre Message)
//! Error::{BadAddress{address, code, message}, InvalidAddress, NonAsciiAddress,
//!         HeaderInjection, NoRecipients, Config, RootCa, Rejected, Smtp, Protocol,
//!         GaveUp, Timeout, Message}; Error::is_bad_address(), is_temporary() (4xx),
//!         is_permanent_bad_address(), code()
//! disposition(&lettre::transport::smtp::Error) -> Disposition {Reconnect, Retry,
//!          BadAddress(code), Fatal}
//! cause(&lettre::transport::smtp::Error) -> Cause {Closed, Reset, BrokenPipe, Reply421,
//!          Timeout, Refused, Temporary, Other}; BAD_ADDRESS_CODES
//! retry_backoff(i, base, max, 2) -> Duration; backoff_before_jitter(..); Sleeper, TokioSleeper
//! parse_from(&str) -> Mailbox; parse_recipient(&str) -> Address; new_message_id(domain)
//! Clock (SystemClock, FixedClock)
//! ```
//!
//! Per message: two round trips when the server offers PIPELINING (MAIL + RCPT + DATA in one
//! write, then the content in one write), no NOOP, no reconnect check.
//!
//! Delivery is at-least-once: when the reply to the final dot is lost (the server stored
//! the message, then the connection died), the message is resent with the same
//! Message-ID, so a duplicate can be recognised.
//!
//! Map of the crate:
//! - `transport`: [`ReconnectingTransport`] (lettre's `AsyncTransport`), its builder and
//!   its pool of sessions; every send goes through `Connection`'s send loop.
//! - `raw`: a raw envelope + bytes made ready to send; the Message-ID found or added.
//! - `config`: [`Config`] (server, TLS, credentials, from, backoff, bounds, step timeout).
//! - `mailer`: [`Mailer`] and its [`Connection`] (`connect`, `send_mail`, `close`) and
//!   what `send_mail` does about each failure.
//! - `reconnect`: the bounded reconnect loop with backoff sleeps, and the bound that
//!   retries after a temporary refusal (4xx) share.
//! - `sleeps`: the log of backoff sleeps ([`BackoffSleep`]), read through the counters.
//! - `session`: opening one SMTP session over lettre's low-level connection; step failures.
//! - `reply_check`: plain connections fail at once on a reply that is not SMTP (bare LF...).
//! - `transaction`: MAIL/RCPT/DATA (pipelined when offered), the content, RSET, QUIT.
//! - `disposition`: the pure retry decision over an SMTP error; the bad-address codes.
//! - `backoff`: `retry_backoff(i, base, max, 2)` with ±20% jitter; the [`Sleeper`].
//! - `message`: building the RFC 5322 message (headers, quoted-printable body).
//! - `clock`: [`Clock`]: the real clock or a fixed instant.
//! - `counters`: attempts by result and cause, retries by cause, reconnects, sleeps.
//! - `error`: [`Error`] and [`Step`].
//!
//! Dependencies: lettre, tokio, rand and tracing only. The programs expiration-mailer and
//! notify-mailer, with their flags, templates, `FAKECLOCK` and certificate store, are the
//! `mailer-programs` package in `mailer/programs/`.

mod backoff;
mod clock;
mod config;
mod counters;
mod disposition;
mod error;
mod mailer;
mod message;
mod raw;
mod reconnect;
mod reply_check;
mod session;
mod sleeps;
mod transaction;
mod transport;

pub use backoff::{JITTER, Sleeper, TokioSleeper, backoff_before_jitter, retry_backoff};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{Config, TlsMode};
pub use counters::CountersSnapshot;
pub use disposition::{BAD_ADDRESS_CODES, Cause, Disposition, cause, disposition};
pub use error::{Error, Step};
pub use mailer::{Connection, Mailer, Sent};
pub use message::{new_message_id, parse_from, parse_recipient, text_message};
pub use sleeps::{BackoffKind, BackoffSleep};
pub use transport::{
    DEFAULT_POOL_SIZE, ReconnectingTransport, ReconnectingTransportBuilder, SMTP_PORT,
    SUBMISSION_PORT, SUBMISSIONS_PORT,
};

/// The lettre this crate is built against: build messages with `mailer::lettre::Message`
/// to be sure the versions match.
pub use lettre;
