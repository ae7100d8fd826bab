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
use serde::{Deserialize, Serialize, Serializer};

use super::trigger;
use super::{Action, Trigger};

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
    /// On STARTTLS, before the 220 (and, for `abort`, during the handshake).
    StartTls,
    /// The server gone away (`POST /api/v1/outage`, `--outage-at`): only in events, never
    /// in a rule.
    Outage,
}

impl Stage {
    /// Every stage, in session order; `index()` is the position in this array.
    pub const ALL: [Stage; 10] = [
        Stage::Connect,
        Stage::Ehlo,
        Stage::Auth,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::DataEnd,
        Stage::Quit,
        Stage::StartTls,
        Stage::Outage,
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
            Stage::StartTls => "starttls",
            Stage::Outage => "outage",
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
                let names: Vec<&str> = Stage::ALL
                    .iter()
                    .filter(|s| **s != Stage::Outage)
                    .map(|s| s.as_str())
                    .collect();
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

/// A stage, an action and a trigger, with a name (given, or generated when installed) and a
/// switch that keeps a rule in the plan without firing it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// `[A-Za-z0-9_-]{1,64}`; `None` until the engine names it.
    pub name: Option<String>,
    pub enabled: bool,
    pub stage: Stage,
    pub action: Action,
    pub trigger: Trigger,
}

/// Checks a rule name: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_name(name: &str) -> Result<(), RuleParseError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RuleParseError(format!(
            "bad rule name {name:?} (expected 1 to 64 of A-Z, a-z, 0-9, _ and -)"
        )))
    }
}

impl FaultRule {
    /// An unnamed, enabled rule.
    pub fn new(stage: Stage, action: Action, trigger: Trigger) -> Self {
        FaultRule {
            name: None,
            enabled: true,
            stage,
            action,
            trigger,
        }
    }

    /// The rule without its name: `mail:close:35%` (what events and transcripts show beside
    /// the name).
    pub fn definition(&self) -> String {
        format!("{}:{}{}", self.stage, self.action, self.trigger)
    }

    /// The same rule, name and switch aside.
    pub fn same_definition(&self, other: &FaultRule) -> bool {
        self.stage == other.stage && self.action == other.action && self.trigger == other.trigger
    }

    /// The checks shared by the text and JSON forms: trigger ranges, and `accept-close`
    /// only at `data-end` (elsewhere there is no message to store).
    pub fn validate(&self) -> Result<(), RuleParseError> {
        if self.action == Action::AcceptClose && self.stage != Stage::DataEnd {
            return Err(RuleParseError(format!(
                "action accept-close is only valid at stage data-end, not {}",
                self.stage
            )));
        }
        if matches!(self.action, Action::Greylist(_)) && self.stage != Stage::Rcpt {
            return Err(RuleParseError(format!(
                "action greylist is only valid at stage rcpt, not {}",
                self.stage
            )));
        }
        // Only STARTTLS has a handshake to abort: elsewhere `reset` does the same.
        if self.action == Action::Abort && self.stage != Stage::StartTls {
            return Err(RuleParseError(format!(
                "action abort is only valid at stage starttls, not {}",
                self.stage
            )));
        }
        if self.stage == Stage::Outage {
            return Err(RuleParseError(
                "stage outage takes no rules: start one with POST /api/v1/outage or --outage-at"
                    .into(),
            ));
        }
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        self.trigger.validate()
    }
}

impl fmt::Display for FaultRule {
    /// The `--fault` text: `NAME=STAGE:ACTION[:TRIGGER...]`, without `NAME=` when unnamed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.name {
            write!(f, "{name}=")?;
        }
        write!(f, "{}:{}{}", self.stage, self.action, self.trigger)
    }
}

impl FromStr for FaultRule {
    type Err = RuleParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `NAME=STAGE:...`: a stage never holds `=`, so one before the first `:` names the rule.
        let (name, s) = match s.split_once(':').map(|(first, _)| first.split_once('=')) {
            Some(Some((name, _))) => (Some(name.to_owned()), &s[name.len() + 1..]),
            _ => (None, s),
        };
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
            name,
            ..FaultRule::new(stage, action, trigger)
        };
        rule.validate()?;
        Ok(rule)
    }
}

/// The object form: stage, action, and the trigger's fields flattened beside them.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// Absent means enabled.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    enabled: bool,
    stage: Stage,
    action: Action,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "whole_if_possible"
    )]
    chance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    every: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_conns: Option<u64>,
    /// `for=`: a duration as text (`"30s"`).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    for_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_time: Option<String>,
    /// `rate=`: `"50/s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rate: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    per_peer: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u64>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn duration_text(d: Option<Duration>) -> Option<String> {
    d.map(|d| humantime::format_duration(d).to_string())
}

/// Writes `35` rather than `35.0` for a whole percentage, as a person would type it.
fn whole_if_possible<S: Serializer>(
    chance: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match *chance {
        // Validated chances lie in 0..=100, so the cast is exact when there is no fraction.
        Some(c) if c.fract() == 0.0 && (0.0..=100.0).contains(&c) => {
            serializer.serialize_u64(c as u64)
        }
        Some(c) => serializer.serialize_f64(c),
        None => serializer.serialize_none(),
    }
}

impl Serialize for FaultRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = self.trigger.clone();
        RuleObject {
            name: self.name.clone(),
            enabled: self.enabled,
            stage: self.stage,
            action: self.action.clone(),
            chance: t.chance,
            first: t.first,
            every: t.every,
            after: t.after,
            first_conns: t.first_conns,
            for_time: duration_text(t.for_time),
            after_time: duration_text(t.after_time),
            rate: t.rate.map(|r| format!("{r}/s")),
            per_peer: t.per_peer,
            conns: t.conns,
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
        let window = |name: &str, text: Option<String>| {
            text.map(|t| trigger::window(name, &t))
                .transpose()
                .map_err(de::Error::custom)
        };
        let for_time = window("for", o.for_time)?;
        let after_time = window("after-time", o.after_time)?;
        let rate = o
            .rate
            .map(|r| trigger::rate(&r))
            .transpose()
            .map_err(de::Error::custom)?;
        let rule = FaultRule {
            name: o.name,
            enabled: o.enabled,
            stage: o.stage,
            action: o.action,
            trigger: Trigger {
                chance: o.chance,
                first: o.first,
                every: o.every,
                after: o.after,
                first_conns: o.first_conns,
                for_time,
                after_time,
                rate,
                per_peer: o.per_peer,
                conns: o.conns,
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
