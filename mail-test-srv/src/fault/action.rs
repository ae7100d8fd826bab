//! What an injected fault does: [`Action`], its text form (`close`, `reply=550`,
//! `delay=2s`, `slow=100/s`...) and its JSON form (`"close"`, `{"reply":550}`, `{"delay":"2s"}`,
//! `{"slow":"100/s"}`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::RuleParseError;

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
    /// Only at `rcpt`: `451 4.7.1` for a (client IP, sender, recipient) triple until this long
    /// after it was first seen, then accept it (greylisting).
    Greylist(Duration),
    /// Only at `starttls`: answer 220, read the client's ClientHello, then abort with RST
    /// before the handshake completes.
    Abort,
    /// Send the first half of the reply the command would get, never its CRLF, then close.
    Truncate,
    /// Send bytes that are no SMTP reply instead of the reply, then close.
    Garbage,
    /// The reply the command would get, its lines ending in a bare LF; the session goes on.
    BareLf,
    /// The reply the command would get, trickled at this many bytes a second; the session
    /// goes on.
    Slow(u32),
}

/// Longest `delay=` accepted: longer is surely a typo, and would pin a session for ever.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

impl Action {
    /// Every action kind name, in the order of [`Action::kind_index`]; bounded labels for
    /// stats and metrics (`reply=550` and `reply=451` are both `reply`).
    pub const KINDS: [&'static str; 13] = [
        "close",
        "reset",
        "421",
        "reply",
        "delay",
        "hang",
        "accept-close",
        "greylist",
        "abort",
        "truncate",
        "garbage",
        "bare-lf",
        "slow",
    ];

    /// Position of this action's kind in [`Action::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            Action::Close => 0,
            Action::Reset => 1,
            Action::Reply421 => 2,
            Action::Reply(_) => 3,
            Action::Delay(_) => 4,
            Action::Hang => 5,
            Action::AcceptClose => 6,
            Action::Greylist(_) => 7,
            Action::Abort => 8,
            Action::Truncate => 9,
            Action::Garbage => 10,
            Action::BareLf => 11,
            Action::Slow(_) => 12,
        }
    }

    /// The kind name (`close`, `reply`, `delay`...).
    pub fn kind(&self) -> &'static str {
        Action::KINDS[self.kind_index()]
    }

    fn reply(code: u16) -> Result<Action, RuleParseError> {
        if (400..=599).contains(&code) {
            Ok(Action::Reply(code))
        } else {
            Err(RuleParseError(format!(
                "reply code {code} out of range (expected a 4xx or 5xx code, 400..=599)"
            )))
        }
    }

    fn delay(text: &str) -> Result<Action, RuleParseError> {
        Ok(Action::Delay(duration("delay", text)?))
    }

    fn greylist(text: &str) -> Result<Action, RuleParseError> {
        Ok(Action::Greylist(duration("greylist", text)?))
    }

    /// `slow=BYTES/s`: the unit is spelled out so the number cannot be read as a duration.
    fn slow(text: &str) -> Result<Action, RuleParseError> {
        let bad = || {
            RuleParseError(format!(
                "bad slow rate {text:?} (expected BYTES/s with BYTES from 1 to {}, e.g. slow=100/s)",
                u32::MAX
            ))
        };
        let rate: u32 = text
            .strip_suffix("/s")
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        if rate == 0 {
            return Err(bad());
        }
        Ok(Action::Slow(rate))
    }

    /// Whether this action reshapes the reply the command gets rather than replacing it
    /// (the command still runs).
    pub fn shapes_reply(&self) -> bool {
        matches!(
            self,
            Action::Truncate | Action::Garbage | Action::BareLf | Action::Slow(_)
        )
    }
}

/// A duration of an action (`delay=2s`, `greylist=5m`), at most [`MAX_DELAY`].
fn duration(name: &str, text: &str) -> Result<Duration, RuleParseError> {
    let value = humantime::parse_duration(text).map_err(|e| {
        RuleParseError(format!(
            "bad {name} {text:?}: {e} (expected a duration such as 2s or 150ms)"
        ))
    })?;
    if value > MAX_DELAY {
        return Err(RuleParseError(format!(
            "{name} {text:?} too long (at most {})",
            humantime::format_duration(MAX_DELAY)
        )));
    }
    Ok(value)
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Reply(code) => write!(f, "reply={code}"),
            Action::Delay(d) => write!(f, "delay={}", humantime::format_duration(*d)),
            Action::Greylist(d) => write!(f, "greylist={}", humantime::format_duration(*d)),
            Action::Slow(rate) => write!(f, "slow={rate}/s"),
            other => f.write_str(other.kind()),
        }
    }
}

impl FromStr for Action {
    type Err = RuleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "close" => return Ok(Action::Close),
            "reset" => return Ok(Action::Reset),
            "421" => return Ok(Action::Reply421),
            "hang" => return Ok(Action::Hang),
            "accept-close" => return Ok(Action::AcceptClose),
            "abort" => return Ok(Action::Abort),
            "truncate" => return Ok(Action::Truncate),
            "garbage" => return Ok(Action::Garbage),
            "bare-lf" => return Ok(Action::BareLf),
            _ => {}
        }
        if let Some(code) = s.strip_prefix("reply=") {
            let code: u16 = code.parse().map_err(|_| {
                RuleParseError(format!(
                    "bad reply code {code:?} (expected a 4xx or 5xx code, e.g. reply=550)"
                ))
            })?;
            return Action::reply(code);
        }
        if let Some(delay) = s.strip_prefix("delay=") {
            return Action::delay(delay);
        }
        if let Some(window) = s.strip_prefix("greylist=") {
            return Action::greylist(window);
        }
        if let Some(rate) = s.strip_prefix("slow=") {
            return Action::slow(rate);
        }
        Err(RuleParseError(format!(
            "unknown action {s:?} (expected one of close, reset, 421, reply=CODE, delay=DURATION, hang, accept-close, greylist=DURATION, abort, truncate, garbage, bare-lf, slow=BYTES/s)"
        )))
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Action::Reply(code) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("reply", code)?;
                map.end()
            }
            Action::Delay(d) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("delay", &humantime::format_duration(*d).to_string())?;
                map.end()
            }
            Action::Greylist(d) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("greylist", &humantime::format_duration(*d).to_string())?;
                map.end()
            }
            Action::Slow(rate) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("slow", &format!("{rate}/s"))?;
                map.end()
            }
            other => serializer.serialize_str(other.kind()),
        }
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ActionVisitor)
    }
}

/// Takes `"close"`, `"reply=550"`, `421`, `{"reply":550}`, `{"delay":"2s"}`.
struct ActionVisitor;

impl<'de> Visitor<'de> for ActionVisitor {
    type Value = Action;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an action: "close", "reset", "421", "hang", "accept-close", "abort", "truncate", "garbage", "bare-lf", {"reply":CODE}, {"delay":"DURATION"}, {"greylist":"DURATION"} or {"slow":"BYTES/s"}"#)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Action, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Action, E> {
        if v == 421 {
            Ok(Action::Reply421)
        } else {
            Err(E::custom(format!(
                "unknown action {v} (a bare number may only be 421; use {{\"reply\":{v}}})"
            )))
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "empty action object (expected {\"reply\":CODE} or {\"delay\":\"DURATION\"})",
            ));
        };
        let action = match key.as_str() {
            "reply" => {
                let code: u64 = map.next_value()?;
                let code = u16::try_from(code).unwrap_or(u16::MAX);
                Action::reply(code).map_err(de::Error::custom)?
            }
            "delay" => {
                let text: String = map.next_value()?;
                Action::delay(&text).map_err(de::Error::custom)?
            }
            "greylist" => {
                let text: String = map.next_value()?;
                Action::greylist(&text).map_err(de::Error::custom)?
            }
            "slow" => {
                let text: String = map.next_value()?;
                Action::slow(&text).map_err(de::Error::custom)?
            }
            other => {
                return Err(de::Error::custom(format!(
                    "unknown action key {other:?} (expected \"reply\", \"delay\", \"greylist\" or \"slow\")"
                )));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "action object has more than one key ({extra:?})"
            )));
        }
        Ok(action)
    }
}
