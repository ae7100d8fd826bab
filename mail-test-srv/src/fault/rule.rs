//! One fault rule: where it applies (stage), what it does (action), when it fires (trigger).
//!
//! Text form (the `--fault` flag): `STAGE:ACTION[:TRIGGER...]`, e.g. `mail:close:35%`,
//! `rcpt:reply=550:to=bad@example.com`, `data-end:accept-close:first=1`, `ehlo:delay=150ms:every=3`.
//!
//! JSON form (`PUT /api/v1/faults`): one serde type, [`FaultRule`], takes either shape:
//! - the text form as a JSON string: `"mail:close:35%"`;
//! - an object with `stage` and `action` and the trigger conditions as optional flat fields:
//!   `{"stage":"mail","action":"close","chance":35}`,
//!   `{"stage":"rcpt","action":{"reply":550},"to":"bad@example.com"}`,
//!   `{"stage":"ehlo","action":{"delay":"150ms"},"every":3}`. An action is a string
//!   (`"close"`, `"reset"`, `"421"`, `"hang"`, `"accept-close"`, and also `"reply=550"`, `"delay=2s"`)
//!   or a one-key object (`{"reply":550}`, `{"delay":"2s"}`); unknown fields are refused.
//!
//! Serialisation always writes the object form, so `GET /api/v1/faults` can be sent back
//! with `PUT` unchanged. Both input forms go through the same checks ([`FaultRule::validate`]),
//! so a rule refused on the command line is refused over HTTP with the same message.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

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

impl Stage {
    /// Every stage, in session order; `index()` is the position in this array.
    pub const ALL: [Stage; 8] = [
        Stage::Connect,
        Stage::Ehlo,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::DataEnd,
        Stage::Quit,
    ];

    /// The name used in rules, events and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Ehlo => "ehlo",
            Stage::Auth => "auth",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::DataEnd => "data-end",
            Stage::Quit => "quit",
        }
    }

    /// Position in [`Stage::ALL`], for per-stage arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = RuleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
                RuleParseError(format!(
                    "unknown stage {s:?} (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
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

/// Longest `delay=` accepted: longer is surely a typo, and would pin a session for ever.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

impl Action {
    /// Every action kind name, in the order of [`Action::kind_index`]; bounded labels for
    /// stats and metrics (`reply=550` and `reply=451` are both `reply`).
    pub const KINDS: [&'static str; 7] = [
        "close",
        "reset",
        "421",
        "reply",
        "delay",
        "hang",
        "accept-close",
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
        let delay = humantime::parse_duration(text).map_err(|e| {
            RuleParseError(format!(
                "bad delay {text:?}: {e} (expected a duration such as 2s or 150ms)"
            ))
        })?;
        if delay > MAX_DELAY {
            return Err(RuleParseError(format!(
                "delay {text:?} too long (at most {})",
                humantime::format_duration(MAX_DELAY)
            )));
        }
        Ok(Action::Delay(delay))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Reply(code) => write!(f, "reply={code}"),
            Action::Delay(d) => write!(f, "delay={}", humantime::format_duration(*d)),
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
        Err(RuleParseError(format!(
            "unknown action {s:?} (expected one of close, reset, 421, reply=CODE, delay=DURATION, hang, accept-close)"
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
            other => {
                return Err(de::Error::custom(format!(
                    "unknown action key {other:?} (expected \"reply\" or \"delay\")"
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

/// When a rule fires. Every condition that is set must hold.
///
/// `n` below is how many times the rule's stage has been reached on this server (1-based,
/// counted once per reach whatever the rules do); `fired` is how often this rule fired.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Fire with this probability in percent (0..=100), rolled on the connection's RNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chance: Option<f64>,
    /// `n <= first`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// `n % every == 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
    /// `n > after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// The envelope sender equals this address (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A recipient equals this address (at `rcpt`, the one being added; later, any of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `fired < times`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

impl Trigger {
    /// Checks ranges: chance in 0..=100, `every` at least 1, addresses not empty.
    pub fn validate(&self) -> Result<(), RuleParseError> {
        if let Some(chance) = self.chance
            && !(chance.is_finite() && (0.0..=100.0).contains(&chance))
        {
            return Err(RuleParseError(format!(
                "chance {chance} out of range (expected 0..=100 percent)"
            )));
        }
        if self.every == Some(0) {
            return Err(RuleParseError(
                "every=0: expected every=N with N >= 1".into(),
            ));
        }
        for (name, addr) in [("from", &self.from), ("to", &self.to)] {
            if let Some(addr) = addr
                && (addr.is_empty() || addr.contains(char::is_whitespace))
            {
                return Err(RuleParseError(format!(
                    "bad {name} address {addr:?} (expected a non-empty address without spaces)"
                )));
            }
        }
        Ok(())
    }

    /// Parses one `:`-separated trigger part into `self`; a repeated condition is refused.
    fn apply(&mut self, part: &str) -> Result<(), RuleParseError> {
        fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), RuleParseError> {
            if slot.is_some() {
                return Err(RuleParseError(format!("trigger {name} given twice")));
            }
            *slot = Some(value);
            Ok(())
        }
        fn count(name: &str, value: &str) -> Result<u64, RuleParseError> {
            value.parse().map_err(|_| {
                RuleParseError(format!(
                    "bad trigger {name}={value:?} (expected a whole number, e.g. {name}=3)"
                ))
            })
        }
        if let Some(pct) = part.strip_suffix('%') {
            let chance: f64 = pct.parse().map_err(|_| {
                RuleParseError(format!(
                    "bad chance {part:?} (expected a percentage such as 35% or 2.5%)"
                ))
            })?;
            return set(&mut self.chance, "chance", chance);
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(RuleParseError(format!(
                "unknown trigger {part:?} (expected N%, first=N, every=N, after=N, from=ADDR, to=ADDR or times=N)"
            )));
        };
        match name {
            "first" => set(&mut self.first, name, count(name, value)?),
            "every" => set(&mut self.every, name, count(name, value)?),
            "after" => set(&mut self.after, name, count(name, value)?),
            "times" => set(&mut self.times, name, count(name, value)?),
            "from" => set(&mut self.from, name, value.to_owned()),
            "to" => set(&mut self.to, name, value.to_owned()),
            _ => Err(RuleParseError(format!(
                "unknown trigger {name:?} in {part:?} (expected N%, first=N, every=N, after=N, from=ADDR, to=ADDR or times=N)"
            ))),
        }
    }
}

impl fmt::Display for Trigger {
    /// The `:`-prefixed text form of each condition, in a fixed order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(chance) = self.chance {
            write!(f, ":{chance}%")?;
        }
        let counts = [
            ("first", self.first),
            ("every", self.every),
            ("after", self.after),
        ];
        for (name, value) in counts {
            if let Some(v) = value {
                write!(f, ":{name}={v}")?;
            }
        }
        if let Some(from) = &self.from {
            write!(f, ":from={from}")?;
        }
        if let Some(to) = &self.to {
            write!(f, ":to={to}")?;
        }
        if let Some(times) = self.times {
            write!(f, ":times={times}")?;
        }
        Ok(())
    }
}

/// A stage, an action and a trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub stage: Stage,
    pub action: Action,
    pub trigger: Trigger,
}

impl FaultRule {
    /// The checks shared by the text and JSON forms: trigger ranges, and `accept-close`
    /// only at `data-end` (elsewhere there is no message to store).
    pub fn validate(&self) -> Result<(), RuleParseError> {
        if self.action == Action::AcceptClose && self.stage != Stage::DataEnd {
            return Err(RuleParseError(format!(
                "action accept-close is only valid at stage data-end, not {}",
                self.stage
            )));
        }
        self.trigger.validate()
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}{}", self.stage, self.action, self.trigger)
    }
}

impl FromStr for FaultRule {
    type Err = RuleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(':');
        let stage = match parts.next() {
            Some(stage) if !stage.is_empty() => stage.parse()?,
            _ => {
                return Err(RuleParseError(format!(
                    "empty fault rule {s:?} (expected STAGE:ACTION[:TRIGGER...], e.g. mail:close:35%)"
                )));
            }
        };
        let action = match parts.next() {
            Some(action) => action.parse()?,
            None => {
                return Err(RuleParseError(format!(
                    "fault rule {s:?} has no action (expected STAGE:ACTION[:TRIGGER...], e.g. mail:close:35%)"
                )));
            }
        };
        let mut trigger = Trigger::default();
        for part in parts {
            trigger.apply(part)?;
        }
        let rule = FaultRule {
            stage,
            action,
            trigger,
        };
        rule.validate()?;
        Ok(rule)
    }
}

/// The object form: stage, action, and the trigger's fields flattened beside them.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleObject {
    stage: Stage,
    action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u64>,
}

impl Serialize for FaultRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.trigger.clone();
        RuleObject {
            stage: self.stage,
            action: self.action.clone(),
            chance: t.chance,
            first: t.first,
            every: t.every,
            after: t.after,
            from: t.from,
            to: t.to,
            times: t.times,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FaultRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RuleVisitor)
    }
}

/// A string goes through [`FromStr`]; an object through [`RuleObject`]; both are validated.
struct RuleVisitor;

impl<'de> Visitor<'de> for RuleVisitor {
    type Value = FaultRule;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a fault rule: "STAGE:ACTION[:TRIGGER...]" or {"stage":..,"action":..,...}"#)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FaultRule, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FaultRule, A::Error> {
        let o = RuleObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let rule = FaultRule {
            stage: o.stage,
            action: o.action,
            trigger: Trigger {
                chance: o.chance,
                first: o.first,
                every: o.every,
                after: o.after,
                from: o.from,
                to: o.to,
                times: o.times,
            },
        };
        rule.validate().map_err(de::Error::custom)?;
        Ok(rule)
    }
}

/// Why a `--fault` string or a JSON rule was refused; the message names the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleParseError(pub String);

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
