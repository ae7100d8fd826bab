//! The library's error: what went wrong, at which SMTP step, in words a log reader can act on.

use std::path::PathBuf;
use std::time::Duration;

use crate::disposition::Cause;

/// One step of an SMTP session, named in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// TCP connect, TLS handshake (implicit mode), greeting and EHLO: one lettre call.
    Connect,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    /// The message content and the final dot.
    Message,
    Rset,
    Quit,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::StartTls => "STARTTLS",
            Step::Auth => "AUTH",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::Message => "end of DATA",
            Step::Rset => "RSET",
            Step::Quit => "QUIT",
        })
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug)]
pub enum Error {
    /// The server refused a recipient with one of the bad-address codes
    /// ([`BAD_ADDRESS_CODES`](crate::BAD_ADDRESS_CODES)). The connection was RSET and stays usable.
    BadAddress {
        address: String,
        code: u16,
        message: String,
    },
    /// An address we refuse to send to (or from) before talking to any server.
    InvalidAddress {
        address: String,
        reason: String,
    },
    /// A non-ASCII address: SMTPUTF8 is not used, so it could not be delivered as written.
    NonAsciiAddress {
        address: String,
    },
    /// CR or LF in a header value would let the caller's data add headers (other control
    /// characters are refused alike).
    HeaderInjection {
        header: &'static str,
    },
    NoRecipients,
    Config(String),
    RootCa {
        path: PathBuf,
        reason: String,
    },
    /// A reply the mailer does not retry (after RSET when the connection still works).
    Rejected {
        step: Step,
        code: u16,
        message: String,
    },
    /// A failure that is not a reply: TLS, AUTH mechanism, malformed reply...
    Smtp {
        step: Step,
        source: lettre::transport::smtp::Error,
    },
    /// The server sent something that is not an SMTP reply (a bare LF, no reply code...);
    /// not retried, since another attempt would meet the same server.
    Protocol {
        step: Step,
        detail: String,
    },
    /// The reconnect loop reached its bound (attempts or time) without a working connection.
    GaveUp {
        attempts: u32,
        elapsed: Duration,
        last_cause: Cause,
        last: String,
    },
    /// A step that does not retry took longer than `step_timeout` (QUIT in `close`);
    /// timeouts while sending lead to a reconnect instead.
    Timeout {
        step: Step,
        after: Duration,
    },
    Message(String),
}

// Written out rather than derived: the library depends on lettre, tokio, rand and tracing only.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadAddress {
                address,
                code,
                message,
            } => write!(f, "bad address {address}: server replied {code} {message}"),
            Error::InvalidAddress { address, reason } => {
                write!(f, "invalid address {address:?}: {reason}")
            }
            Error::NonAsciiAddress { address } => write!(
                f,
                "address {address:?} is not ASCII; internationalised addresses are not supported"
            ),
            Error::HeaderInjection { header } => write!(
                f,
                "the {header} contains CR, LF or another control character, which could inject headers"
            ),
            Error::NoRecipients => f.write_str("a message needs at least one recipient"),
            Error::Config(reason) => write!(f, "invalid mailer configuration: {reason}"),
            Error::RootCa { path, reason } => {
                write!(f, "cannot use root CA {}: {reason}", path.display())
            }
            Error::Rejected {
                step,
                code,
                message,
            } => write!(f, "{step} refused: {code} {message}"),
            Error::Smtp { step, source } => write!(f, "{step} failed: {source}"),
            Error::Protocol { step, detail } => write!(f, "{step} failed: {detail}"),
            Error::GaveUp {
                attempts,
                elapsed,
                last_cause,
                last,
            } => write!(
                f,
                "gave up after {attempts} reconnect attempts in {elapsed:?} (last failure: {last_cause}: {last})"
            ),
            Error::Timeout { step, after } => write!(f, "{step} timed out after {after:?}"),
            Error::Message(reason) => write!(f, "cannot build the message: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Smtp { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Error {
    /// True when this recipient can never get this mail: the server refused the address, or
    /// it was refused before sending (invalid, non-ASCII). Callers mark it and do not retry.
    pub fn is_bad_address(&self) -> bool {
        matches!(
            self,
            Error::BadAddress { .. } | Error::InvalidAddress { .. } | Error::NonAsciiAddress { .. }
        )
    }

    /// True when the server's refusal was temporary (a 4xx reply, 450 "mailbox busy" among
    /// the bad-address codes): the same message may go through later, so a caller keeping
    /// books retries it instead of marking it done.
    pub fn is_temporary(&self) -> bool {
        self.code().is_some_and(|code| (400..500).contains(&code))
    }

    /// A bad address for good: [`Error::is_bad_address`] and not [`Error::is_temporary`].
    pub fn is_permanent_bad_address(&self) -> bool {
        self.is_bad_address() && !self.is_temporary()
    }

    /// The SMTP reply code, when the error came from a reply.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::BadAddress { code, .. } | Error::Rejected { code, .. } => Some(*code),
            Error::Smtp { source, .. } => source.status().map(u16::from),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_4xx_bad_address_is_temporary_and_a_5xx_is_final() {
        let bad = |code| Error::BadAddress {
            address: "a@example.com".to_owned(),
            code,
            message: String::new(),
        };
        for code in [401, 422, 441, 450] {
            assert!(bad(code).is_bad_address(), "{code}");
            assert!(bad(code).is_temporary(), "{code}");
            assert!(!bad(code).is_permanent_bad_address(), "{code}");
        }
        for code in [501, 550, 553] {
            assert!(!bad(code).is_temporary(), "{code}");
            assert!(bad(code).is_permanent_bad_address(), "{code}");
        }
        let invalid = Error::InvalidAddress {
            address: "x".to_owned(),
            reason: String::new(),
        };
        assert!(invalid.is_permanent_bad_address());
        let refused = Error::Rejected {
            step: Step::Data,
            code: 451,
            message: String::new(),
        };
        assert!(refused.is_temporary() && !refused.is_bad_address());
    }
}
