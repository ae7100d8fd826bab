//! What an injected fault does: [`Action`], its text form (`close`, `reply=550`,
//! `delay=2s`...) and its JSON form (`"close"`, `{"reply":550}`, `{"delay":"2s"}`).

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
}

/// Longest `delay=` accepted: longer is surely a typo, and would pin a session for ever.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

impl Action {
    /// Every action kind name, in the order of [`Action::kind_index`]; bounded labels for
    /// stats and metrics (`reply=550` and `reply=451` are both `reply`).
    pub const KINDS: [&'static str; 8] = [
        "close",
        "reset",
        "421",
        "reply",
        "delay",
        "hang",
        "accept-close",
        "greylist",
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
        Err(RuleParseError(format!(
            "unknown action {s:?} (expected one of close, reset, 421, reply=CODE, delay=DURATION, hang, accept-close, greylist=DURATION)"
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
        f.write_str(r#"an action: "close", "reset", "421", "hang", "accept-close", {"reply":CODE} or {"delay":"DURATION"}"#)
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
            other => {
                return Err(de::Error::custom(format!(
                    "unknown action key {other:?} (expected \"reply\", \"delay\" or \"greylist\")"
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
