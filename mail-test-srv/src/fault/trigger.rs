//! When a rule fires: [`Trigger`], a set of conditions that must all hold, and its text
//! form (`35%`, `first=N`, `every=N`, `after=N`, `first-conns=N`, `from=ADDR`, `to=ADDR`,
//! `times=N`).
//! How the conditions are evaluated is in `engine.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RuleParseError;

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
    /// Only on the first N connections of the server (numbered in the order their sessions
    /// start, from 1, since start or the last reset): the original `--closeFirst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_conns: Option<u64>,
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
    pub(super) fn apply(&mut self, part: &str) -> Result<(), RuleParseError> {
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
                "unknown trigger {part:?} (expected N%, first=N, every=N, after=N, first-conns=N, from=ADDR, to=ADDR or times=N)"
            )));
        };
        match name {
            "first" => set(&mut self.first, name, count(name, value)?),
            "every" => set(&mut self.every, name, count(name, value)?),
            "after" => set(&mut self.after, name, count(name, value)?),
            "first-conns" => set(&mut self.first_conns, name, count(name, value)?),
            "times" => set(&mut self.times, name, count(name, value)?),
            "from" => set(&mut self.from, name, value.to_owned()),
            "to" => set(&mut self.to, name, value.to_owned()),
            _ => Err(RuleParseError(format!(
                "unknown trigger {name:?} in {part:?} (expected N%, first=N, every=N, after=N, first-conns=N, from=ADDR, to=ADDR or times=N)"
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
            ("first-conns", self.first_conns),
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
