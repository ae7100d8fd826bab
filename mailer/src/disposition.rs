//! What to do about a failed SMTP step: reconnect and resend, retry the transaction after
//! a temporary refusal, report a bad address, or give up on this message. Pure functions over lettre's error, table-tested against real
//! errors in `tests/send_disposition.rs`.
//!
//! How lettre reports a dead connection (CRATES.md, probed against real sockets):
//! a plain-TCP close is `is_response()` with "incomplete response" and no io source; a
//! close under TLS is io `UnexpectedEof` in the `source()` chain; an RST is io
//! `ConnectionReset`, and the next write on that socket io `BrokenPipe`; 421 is a reply.
//!
//! Temporary refusals: any 4xx that is neither 421 nor on [`BAD_ADDRESS_CODES`] (451 from
//! greylisting or a rate limit, 452 for a full queue) is [`Disposition::Retry`]: the server
//! is fine and said "later", so the same transaction is tried again on the same connection
//! after a backoff. The codes on the list keep the original's meaning even when they are
//! 4xx: a 450 (which some greylisting servers send instead of 451) is a typed
//! [`Error::BadAddress`](crate::Error::BadAddress) with code 450 and is not retried in the
//! run; its `is_temporary()` is true, so a caller keeping books (expiration-mailer) leaves it
//! for the next run rather than marking the address bad.

use std::error::Error as _;
use std::io::ErrorKind;

use lettre::transport::smtp::Error as SmtpError;

/// The decision for one failed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The connection is gone (or going, for 421): reconnect with backoff and resend.
    Reconnect,
    /// A temporary refusal (4xx, not 421, not a bad-address code): RSET, back off, and try
    /// the whole transaction again, within the same bound as reconnects.
    Retry,
    /// The server refused the recipient with this code: report it, RSET, keep the connection.
    BadAddress(u16),
    /// Anything else: report it; RSET if the connection still speaks SMTP.
    Fatal,
}

/// Why an attempt failed, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The server closed the connection (EOF, incomplete reply).
    Closed,
    /// TCP RST (ECONNRESET, ECONNABORTED).
    Reset,
    /// Writing to a connection the peer had already dropped (EPIPE).
    BrokenPipe,
    /// The server answered 421 (service closing, RFC 5321 section 3.8).
    Reply421,
    /// A step took longer than `step_timeout`.
    Timeout,
    /// Nobody listens on the port (only while connecting).
    Refused,
    /// A temporary refusal: a 4xx reply other than 421 and the bad-address codes
    /// (greylisting, rate limits, a full queue).
    Temporary,
    /// Any other error (a 5xx, a TLS failure, a malformed reply...).
    Other,
}

impl Cause {
    /// Every cause, in the order the counters list them.
    pub const ALL: [Cause; 8] = [
        Cause::Closed,
        Cause::Reset,
        Cause::BrokenPipe,
        Cause::Reply421,
        Cause::Timeout,
        Cause::Refused,
        Cause::Temporary,
        Cause::Other,
    ];

    /// A short stable name for logs and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Cause::Closed => "closed",
            Cause::Reset => "reset",
            Cause::BrokenPipe => "broken-pipe",
            Cause::Reply421 => "421",
            Cause::Timeout => "timeout",
            Cause::Refused => "refused",
            Cause::Temporary => "4xx",
            Cause::Other => "other",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reply codes that mean "this recipient cannot get mail", whatever the step. The same
/// codes as the original mailer, so its users see the same addresses marked bad.
/// (Some are not RFC 5321 codes at all but appear in real servers' replies.)
pub const BAD_ADDRESS_CODES: [u16; 11] = [
    401, // not in RFC 5321; some servers use it for an invalid recipient
    422, // the recipient's mailbox is over its storage limit
    441, // the recipient's server is not responding (used by some relays)
    450, // mailbox unavailable, e.g. busy or blocked (RFC 5321 4.2.3)
    501, // syntax error in the address (RFC 5321 4.2.3)
    510, // bad destination mailbox address (RFC 3463 X.1.0, used as a reply code)
    511, // bad destination mailbox address (RFC 3463 X.1.1)
    513, // bad destination address syntax (RFC 3463 X.1.3)
    541, // the recipient refused the message (anti-spam appliances)
    550, // mailbox unavailable: not found, no access (RFC 5321 4.2.3)
    553, // mailbox name not allowed (RFC 5321 4.2.3)
];

/// The pure retry decision for an error lettre returned for one step.
pub fn disposition(err: &SmtpError) -> Disposition {
    match cause(err) {
        Cause::Closed | Cause::Reset | Cause::BrokenPipe | Cause::Reply421 | Cause::Timeout => {
            Disposition::Reconnect
        }
        Cause::Refused => Disposition::Reconnect,
        Cause::Temporary => Disposition::Retry,
        Cause::Other => match err.status().map(u16::from) {
            Some(code) if BAD_ADDRESS_CODES.contains(&code) => Disposition::BadAddress(code),
            _ => Disposition::Fatal,
        },
    }
}

/// Why the step failed, read from the reply code or the io error in the `source()` chain.
pub fn cause(err: &SmtpError) -> Cause {
    if let Some(code) = err.status() {
        return cause_of_code(code.into());
    }
    if let Some(kind) = io_kind(err) {
        return cause_of_io(kind);
    }
    // lettre's read loop ends with this text when the server closed a plain connection
    // mid-reply or before replying at all; no io error is attached then.
    if err.is_response() && err.to_string().contains("incomplete response") {
        return Cause::Closed;
    }
    Cause::Other
}

/// Why a reply ended the step: 421, a temporary refusal, or something else (5xx, and the
/// 4xx bad-address codes, which `disposition` reports as bad addresses).
pub(crate) fn cause_of_code(code: u16) -> Cause {
    match code {
        421 => Cause::Reply421,
        400..=499 if !BAD_ADDRESS_CODES.contains(&code) => Cause::Temporary,
        _ => Cause::Other,
    }
}

/// Why an io error ended the step.
pub(crate) fn cause_of_io(kind: ErrorKind) -> Cause {
    match kind {
        ErrorKind::UnexpectedEof | ErrorKind::NotConnected => Cause::Closed,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Cause::Reset,
        ErrorKind::BrokenPipe => Cause::BrokenPipe,
        ErrorKind::TimedOut => Cause::Timeout,
        ErrorKind::ConnectionRefused => Cause::Refused,
        _ => Cause::Other,
    }
}

/// The kind of the first io error in the source chain that says something about the
/// connection (TLS layers wrap the socket's error in their own io error).
fn io_kind(err: &SmtpError) -> Option<ErrorKind> {
    let mut source = err.source();
    let mut first = None;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            let kind = io.kind();
            if kind != ErrorKind::Other && kind != ErrorKind::InvalidData {
                return Some(kind);
            }
            first.get_or_insert(kind);
        }
        source = e.source();
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_split_into_421_temporary_and_the_rest() {
        let table = [
            (421, Cause::Reply421),
            (451, Cause::Temporary),
            (452, Cause::Temporary),
            (454, Cause::Temporary),
            (403, Cause::Temporary),
            // On the bad-address list: reported as bad addresses, not retried in the run.
            (401, Cause::Other),
            (422, Cause::Other),
            (441, Cause::Other),
            (450, Cause::Other),
            (550, Cause::Other),
            (554, Cause::Other),
            (500, Cause::Other),
        ];
        for (code, want) in table {
            assert_eq!(cause_of_code(code), want, "{code}");
        }
    }
}
