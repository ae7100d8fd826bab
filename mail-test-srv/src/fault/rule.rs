//! One fault rule: where it applies (stage), what it does (action), when it fires (trigger).
//!
//! OWNER: helper "faults/store/http". The types below are the agreed interface; keep
//! their names and variants, fill in parsing, Display and serde.

use std::time::Duration;

/// A point in the SMTP session where a fault may be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// After accept, before the 220 greeting.
    Connect,
    /// On EHLO or HELO, before the reply.
    Ehlo,
    /// On AUTH, before the reply.
    Auth,
    /// On MAIL FROM, before the reply.
    Mail,
    /// On each RCPT TO, before the reply.
    Rcpt,
    /// On DATA, before the 354.
    Data,
    /// After the final dot, before the reply.
    DataEnd,
    /// On QUIT, before the 221.
    Quit,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Close the connection without a reply (FIN).
    Close,
    /// Abort the connection with a TCP RST (SO_LINGER 0, then close).
    Reset,
    /// Reply `421 4.3.0`, then close.
    Reply421,
    /// Reply with this 4xx/5xx code; the session goes on (a RCPT refused, a MAIL refused...).
    Reply(u16),
    /// Wait this long, then carry on normally.
    Delay(Duration),
    /// Never reply; read and discard until the client gives up or the server shuts down.
    Hang,
    /// Only at `data-end`: store the message, then close without replying.
    AcceptClose,
}

/// When a rule fires. Every condition that is set must hold.
///
/// `n` below is how many times the rule's stage has been reached on this server (1-based,
/// counted once per reach whatever the rules do); `fired` is how often this rule fired.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trigger {
    /// Fire with this probability in percent (0..=100), rolled on the connection's RNG.
    pub chance: Option<f64>,
    /// `n <= first`.
    pub first: Option<u64>,
    /// `n % every == 0`.
    pub every: Option<u64>,
    /// `n > after`.
    pub after: Option<u64>,
    /// The envelope sender equals this address (case-insensitive).
    pub from: Option<String>,
    /// A recipient equals this address (at `rcpt`, the one being added; later, any of them).
    pub to: Option<String>,
    /// `fired < times`.
    pub times: Option<u64>,
}

/// A stage, an action and a trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub stage: Stage,
    pub action: Action,
    pub trigger: Trigger,
}

/// Why a `--fault` string or a JSON rule was refused; the message names the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleParseError(pub String);
