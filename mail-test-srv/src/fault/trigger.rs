//! When a rule fires: [`Trigger`], a set of conditions that must all hold, and its text
//! form (`35%`, `first=N`, `every=N`, `after=N`, `first-conns=N`, `for=DURATION`,
//! `after-time=DURATION`, `rate=N/s`, `per-peer`, `conns=N`, `from=ADDR`, `to=ADDR`,
//! `times=N`).
//! How the conditions are evaluated is in `engine.rs`.

use std::fmt;
use std::time::Duration;

use super::RuleParseError;

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
    /// Only on the first N connections of the server (numbered in the order their sessions
    /// start, from 1, since start or the last reset): the original `--closeFirst`.
    pub first_conns: Option<u64>,
    /// Only during the first DURATION after the rule was installed or the engine last reset
    /// (`for=30s`: fail for 30 s, then recover).
    pub for_time: Option<Duration>,
    /// Only once DURATION has passed since the rule was installed or the engine last reset.
    pub after_time: Option<Duration>,
    /// Only when the stage was reached more than N times in the last second, this reach and
    /// faulted ones included (`rate=50/s`): a realistic throttle.
    pub rate: Option<u32>,
    /// `rate` counts per client IP instead of over the whole server.
    pub per_peer: bool,
    /// Only when more than N sessions are open, this one included.
    pub conns: Option<u64>,
    /// The envelope sender equals this address (case-insensitive).
    pub from: Option<String>,
    /// A recipient equals this address (at `rcpt`, the one being added; later, any of them).
    pub to: Option<String>,
    /// `fired < times`.
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
        if self.per_peer && self.rate.is_none() {
            return Err(RuleParseError(
                "per-peer needs a rate (e.g. rate=10/s:per-peer)".into(),
            ));
        }
        if self.rate == Some(0) {
            return Err(RuleParseError(
                "rate=0/s: expected rate=N/s with N >= 1".into(),
            ));
        }
        for (name, time) in [("for", self.for_time), ("after-time", self.after_time)] {
            if time.is_some_and(|t| t.is_zero() || t > MAX_WINDOW) {
                return Err(RuleParseError(format!(
                    "{name} must be above 0 and at most {}",
                    humantime::format_duration(MAX_WINDOW)
                )));
            }
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
        if part == "per-peer" {
            if self.per_peer {
                return Err(RuleParseError("trigger per-peer given twice".into()));
            }
            self.per_peer = true;
            return Ok(());
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
                "unknown trigger {part:?} (expected N%, first=N, every=N, after=N, first-conns=N, for=DURATION, after-time=DURATION, rate=N/s, per-peer, conns=N, from=ADDR, to=ADDR or times=N)"
            )));
        };
        match name {
            "first" => set(&mut self.first, name, count(name, value)?),
            "every" => set(&mut self.every, name, count(name, value)?),
            "after" => set(&mut self.after, name, count(name, value)?),
            "first-conns" => set(&mut self.first_conns, name, count(name, value)?),
            "for" => set(&mut self.for_time, name, window(name, value)?),
            "after-time" => set(&mut self.after_time, name, window(name, value)?),
            "rate" => set(&mut self.rate, name, rate(value)?),
            "conns" => set(&mut self.conns, name, count(name, value)?),
            "times" => set(&mut self.times, name, count(name, value)?),
            "from" => set(&mut self.from, name, value.to_owned()),
            "to" => set(&mut self.to, name, value.to_owned()),
            _ => Err(RuleParseError(format!(
                "unknown trigger {name:?} in {part:?} (expected N%, first=N, every=N, after=N, first-conns=N, for=DURATION, after-time=DURATION, rate=N/s, per-peer, conns=N, from=ADDR, to=ADDR or times=N)"
            ))),
        }
    }
}

/// The longest `for=` / `after-time=` window accepted.
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// A `for=` / `after-time=` duration (`30s`, `5m`).
pub(super) fn window(name: &str, value: &str) -> Result<Duration, RuleParseError> {
    humantime::parse_duration(value).map_err(|e| {
        RuleParseError(format!(
            "bad trigger {name}={value:?}: {e} (expected a duration such as 30s or 5m)"
        ))
    })
}

/// A `rate=` value: `N/s` (a bare `N` means the same).
pub(super) fn rate(value: &str) -> Result<u32, RuleParseError> {
    value
        .strip_suffix("/s")
        .unwrap_or(value)
        .parse()
        .map_err(|_| {
            RuleParseError(format!(
                "bad trigger rate={value:?} (expected N/s, e.g. rate=50/s)"
            ))
        })
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
        for (name, value) in [("for", self.for_time), ("after-time", self.after_time)] {
            if let Some(v) = value {
                write!(f, ":{name}={}", humantime::format_duration(v))?;
            }
        }
        if let Some(rate) = self.rate {
            write!(f, ":rate={rate}/s")?;
        }
        if self.per_peer {
            f.write_str(":per-peer")?;
        }
        if let Some(conns) = self.conns {
            write!(f, ":conns={conns}")?;
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
