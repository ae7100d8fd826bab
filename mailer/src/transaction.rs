//! One mail transaction on an open [`Session`]: MAIL, RCPT for each recipient, DATA, the
//! content; and RSET and QUIT. Every step under `step_timeout`.
//!
//! Why not lettre's `send()`: it closes the connection on any error, a 550 on RCPT included,
//! while a bad address must cost only an RSET. Why no NOOP before each message (as lettre's
//! pool does): it costs a round trip per message, and a dead connection shows up as a failed
//! MAIL anyway, which the caller turns into a reconnect and a resend.
//!
//! Round trips per message: two when the server offers PIPELINING (MAIL + RCPT... + DATA in
//! one write, RFC 2920 section 3.1; then the content), else 3 + one per recipient. The
//! content always goes in one write (see `message::for_data`).

use std::fmt::Write as _;
use std::time::Duration;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};

use crate::disposition::Cause;
use crate::error::{Error, Step};
use crate::message::{Content, Outgoing};
use crate::session::{FailureKind, Session, StepFailure, step};

/// Text written by lettre's `command` as it is: a batch of commands, or the content.
struct Raw<'a>(&'a str);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// MAIL FROM, with `BODY=8BITMIME` when the content has 8-bit bytes (RFC 6152). Like
/// lettre's `send()`, 8-bit content is refused when the server does not offer 8BITMIME:
/// it could not be relayed as written.
fn mail(conn: &AsyncSmtpConnection, message: &Outgoing) -> Result<Mail, StepFailure> {
    let mut parameters = Vec::new();
    if message.content.is_eight_bit() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(StepFailure {
                step: Step::Mail,
                recipient: None,
                kind: FailureKind::Local(Error::Message(
                    "the message has 8-bit content but the server does not offer 8BITMIME"
                        .to_owned(),
                )),
                abandon: false,
            });
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(Mail::new(message.from.clone(), parameters))
}

/// Notes which recipient a failed RCPT was about.
fn for_recipient(index: usize) -> impl FnOnce(StepFailure) -> StepFailure {
    move |mut failure| {
        failure.recipient = Some(index);
        failure
    }
}

/// Sends one message; on failure says which step failed and how.
pub(crate) async fn transact(
    session: &mut Session,
    message: &Outgoing,
    timeout: Duration,
) -> Result<(), StepFailure> {
    if session.pipelining {
        envelope_pipelined(&mut session.conn, message, timeout).await?;
    } else {
        envelope_step_by_step(&mut session.conn, message, timeout).await?;
    }
    let conn = &mut session.conn;
    match &message.content {
        Content::Text(text) => step(timeout, Step::Message, conn.command(Raw(text))).await?,
        Content::Bytes(bytes) => step(timeout, Step::Message, conn.message(bytes)).await?,
    };
    Ok(())
}

async fn envelope_step_by_step(
    conn: &mut AsyncSmtpConnection,
    message: &Outgoing,
    timeout: Duration,
) -> Result<(), StepFailure> {
    let mail = mail(conn, message)?;
    step(timeout, Step::Mail, conn.command(mail)).await?;
    for (index, (_, address)) in message.to.iter().enumerate() {
        let rcpt = Rcpt::new(address.clone(), Vec::new());
        step(timeout, Step::Rcpt, conn.command(rcpt))
            .await
            .map_err(for_recipient(index))?;
    }
    step(timeout, Step::Data, conn.command(Data)).await?;
    Ok(())
}

/// MAIL, every RCPT and DATA in one write, then their replies in order. Every reply is read
/// even after a refusal, so the session stays in step for RSET; the first refusal is the
/// one reported. A dead connection ends the reading at once.
async fn envelope_pipelined(
    conn: &mut AsyncSmtpConnection,
    message: &Outgoing,
    timeout: Duration,
) -> Result<(), StepFailure> {
    let mut batch = String::with_capacity(64 * (message.to.len() + 2));
    // Writing to a String cannot fail.
    let _ = write!(batch, "{}", mail(conn, message)?);
    for (_, address) in &message.to {
        let _ = write!(batch, "{}", Rcpt::new(address.clone(), Vec::new()));
    }
    let _ = write!(batch, "{Data}");

    // Replies in order: MAIL (read by `command` right after the write), each RCPT, DATA.
    let mut refused: Option<StepFailure> = None;
    let mut data_accepted = false;
    let last = message.to.len() + 1;
    for index in 0..=last {
        let (this_step, recipient) = match index {
            0 => (Step::Mail, None),
            i if i == last => (Step::Data, None),
            i => (Step::Rcpt, Some(i - 1)),
        };
        let reply = if index == 0 {
            step(timeout, this_step, conn.command(Raw(&batch))).await
        } else {
            step(timeout, this_step, conn.read_response()).await
        };
        match reply {
            Ok(_) => data_accepted = index == last,
            Err(mut failure) => {
                failure.recipient = recipient;
                if !failure.session_in_step() || failure.cause() == Cause::Reply421 {
                    // The connection is gone: nothing more to read. An earlier refusal
                    // stays the answer (the caller's RSET then fails and drops the session).
                    return Err(refused.unwrap_or(failure));
                }
                // A DATA refused because of an earlier refusal: the earlier one is the news.
                refused.get_or_insert(failure);
            }
        }
    }
    match refused {
        None => Ok(()),
        Some(mut failure) => {
            // DATA was accepted (354) after a refusal: the content must not follow (it would
            // go to the accepted recipients only) and RSET is not allowed in the middle of
            // DATA, so the session is abandoned, which discards the transaction.
            failure.abandon = data_accepted;
            Err(failure)
        }
    }
}

/// RSET after a refused transaction (RFC 5321 4.1.1.5), so the next one starts clean.
pub(crate) async fn rset(session: &mut Session, timeout: Duration) -> Result<(), StepFailure> {
    step(timeout, Step::Rset, session.conn.command(Rset))
        .await
        .map(drop)
}

/// QUIT.
pub(crate) async fn quit(session: &mut Session, timeout: Duration) -> Result<(), StepFailure> {
    step(timeout, Step::Quit, session.conn.quit())
        .await
        .map(drop)
}
