//! The fault plan in force and the decision at each stage.
//!
//! Decision at a stage, for the rules of that stage in plan order:
//! 1. the stage's reach counter `n` is bumped once (whatever the rules, even with none);
//!    a rule with `rate=` counts the reach in its one-second window;
//! 2. a rule's deterministic conditions are checked first (`first`, `every`, `after`,
//!    `first-conns`, `for`, `after-time`, `conns`, `from`, `to`, `times`, `rate`, and for
//!    `greylist` whether the triple's window has passed);
//! 3. only when they all hold is the chance rolled, on the connection's own RNG. So a
//!    rule that cannot fire consumes no randomness, and adding a `to=` rule does not shift
//!    the rolls of the connections it does not concern;
//! 4. the first rule that passes claims one firing (atomically, so `times=N` never fires
//!    more than N times even under concurrency) and decides.
//!
//! Reproducibility: each connection's RNG is `StdRng::seed_from_u64(seed ^ splitmix64(id))`,
//! so chance rolls depend only on the seed, the connection id and that connection's own
//! commands, not on how connections interleave. The counters behind `first`/`every`/`after`
//! are per server, so those triggers follow the global order in which stages are reached.
//!
//! Runtime changes (`PUT /api/v1/faults`): the new rules apply at once to every connection,
//! existing ones included, from their next stage on; a new seed applies to connections
//! accepted afterwards (an open connection keeps the RNG it started with). The rules'
//! fire counters start at zero with a new plan, and its time windows (`for=`, `after-time=`)
//! count from then; the stage reach counters carry on until [`FaultEngine::reset`], which
//! also starts every time window again.
//!
//! Cost when nothing can fire: one relaxed atomic add and one atomic load of a per-stage
//! bitmask; the plan's `RwLock` is only read when the stage has rules.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::events::{NewEvent, RuleText};
use super::greylist::Greylist;
use super::plan::Plan;
use super::{Action, EventLog, FaultRule, RuleParseError, Stage, check_name};

const STAGES: usize = Stage::ALL.len();
const KINDS: usize = Action::KINDS.len();

/// What the session knows when it asks for a decision.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultContext<'a> {
    /// Envelope sender, once MAIL was accepted (`Some("")` for the null sender).
    pub from: Option<&'a str>,
    /// At `rcpt`: the recipient being added. Later stages: every accepted recipient.
    pub to: &'a [&'a str],
}

/// A fault that fired: the rule (index into the plan) and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub rule_index: usize,
    pub action: Action,
    /// The rule as text, for the session's transcript.
    pub rule: Arc<RuleText>,
    /// Sequence number of the event recorded for it.
    pub event_seq: u64,
}

/// The current rules and seed, as reported by `GET /api/v1/faults`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanSnapshot {
    pub seed: u64,
    pub rules: Vec<FaultRule>,
}

/// Per-connection fault state (its RNG), created by [`FaultEngine::connection`].
#[derive(Debug)]
pub struct ConnectionFaults {
    id: u64,
    /// The client's address, for greylisting and per-client rates.
    peer: Option<IpAddr>,
    /// 1 for the first session since start or the last reset (for `first-conns`).
    ordinal: u64,
    rng: StdRng,
    /// The engine, to count this session out of the open ones when it ends (`conns=`).
    engine: Arc<Inner>,
}

impl Drop for ConnectionFaults {
    fn drop(&mut self) {
        self.engine.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionFaults {
    /// The connection id this state belongs to.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sets the client's address (greylisting and per-client rates use it).
    pub fn set_peer(&mut self, peer: IpAddr) {
        self.peer = Some(peer);
    }
}

/// The fault plan of one server instance, its counters and its event log.
/// Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct FaultEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The plan in force. A `std::sync::RwLock` holding an `Arc`: readers clone the `Arc`
    /// and drop the guard at once, so the lock is never held across an `.await` or while
    /// rules are evaluated, and a `PUT` only waits for those few instructions.
    plan: RwLock<Arc<Plan>>,
    /// Bit `i` set when stage `Stage::ALL[i]` has at least one rule: the lock-free fast path.
    stage_mask: AtomicU16,
    /// Times each stage was reached since start or the last reset (`n` of the triggers).
    reached: [AtomicU64; STAGES],
    /// Sessions started since start or the last reset (`first-conns`).
    sessions: AtomicU64,
    /// Sessions open now (`conns=`).
    open: AtomicU64,
    /// Faults injected, by stage and action kind, since start (not cleared by reset).
    injected: [[AtomicU64; KINDS]; STAGES],
    events: EventLog,
    greylist: Greylist,
}

/// SplitMix64's finaliser: spreads consecutive connection ids over all 64 bits, so
/// `seed ^ splitmix64(id)` gives unrelated RNG seeds for neighbouring connections.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn matches_addr(wanted: &str, actual: &str) -> bool {
    wanted.eq_ignore_ascii_case(actual)
}

impl FaultEngine {
    /// A plan with these rules and seed, and an event log of the default size.
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        Self::with_event_bytes(rules, seed, EventLog::DEFAULT_MAX_BYTES)
    }

    /// Like [`FaultEngine::new`], the event log holding at most about `max_event_bytes`.
    /// Rules named twice are renamed (see [`FaultEngine::check_rules`], which callers that
    /// take rules from a user run first).
    pub fn with_event_bytes(rules: Vec<FaultRule>, seed: u64, max_event_bytes: usize) -> Self {
        let plan = Plan::new(rules.clone(), seed, None).unwrap_or_else(|_| {
            let mut seen = std::collections::HashSet::new();
            let renamed = rules
                .into_iter()
                .map(|mut r| {
                    if r.name.as_ref().is_some_and(|n| !seen.insert(n.clone())) {
                        r.name = None;
                    }
                    r
                })
                .collect();
            Plan::new(renamed, seed, None).expect("names are unique now")
        });
        FaultEngine {
            inner: Arc::new(Inner {
                stage_mask: AtomicU16::new(plan.mask()),
                plan: RwLock::new(Arc::new(plan)),
                reached: Default::default(),
                sessions: AtomicU64::new(0),
                open: AtomicU64::new(0),
                injected: Default::default(),
                events: EventLog::new(max_event_bytes),
                greylist: Greylist::default(),
            }),
        }
    }

    /// Fault state for a new connection with this id (ids start at 1, in accept order).
    pub fn connection(&self, connection_id: u64) -> ConnectionFaults {
        let seed = self.plan().seed;
        ConnectionFaults {
            id: connection_id,
            peer: None,
            ordinal: self.inner.sessions.fetch_add(1, Ordering::Relaxed) + 1,
            rng: StdRng::seed_from_u64(seed ^ splitmix64(connection_id)),
            engine: {
                self.inner.open.fetch_add(1, Ordering::Relaxed);
                Arc::clone(&self.inner)
            },
        }
    }

    /// Counts this reach of `stage`, evaluates the rules in order, and returns the first
    /// that fires (recording its event), or `None` to carry on normally.
    /// `stored` in the event is true exactly when the action is `AcceptClose`.
    pub fn decide(
        &self,
        conn: &mut ConnectionFaults,
        stage: Stage,
        ctx: &FaultContext<'_>,
    ) -> Option<Decision> {
        let idx = stage.index();
        self.inner.reached[idx].fetch_add(1, Ordering::Relaxed);
        if self.inner.stage_mask.load(Ordering::Acquire) & (1 << idx) == 0 {
            return None;
        }
        let plan = self.plan();
        let rules = &plan.by_stage[idx];
        // Every enabled rule of the stage counts this reach before any of them decides: each
        // rule's `n` and rate are of every reach since it was installed, faulted ones
        // included, as a real throttle counts attempts.
        let reaches: Vec<(u64, bool)> = rules
            .iter()
            .map(|&i| {
                let (rule, counters) = (&plan.rules[i], &plan.counters[i]);
                if !rule.enabled {
                    return (0, false);
                }
                let n = counters.reached.fetch_add(1, Ordering::Relaxed) + 1;
                let t = &rule.trigger;
                let over_rate = t
                    .rate
                    .is_none_or(|limit| counters.state.over_rate(limit, t.per_peer, conn.peer));
                (n, over_rate)
            })
            .collect();
        for (&i, &(n, over_rate)) in rules.iter().zip(&reaches) {
            let rule = &plan.rules[i];
            if !rule.enabled {
                continue;
            }
            let t = &rule.trigger;
            if t.first.is_some_and(|first| n > first)
                || t.every.is_some_and(|every| !n.is_multiple_of(every))
                || t.after.is_some_and(|after| n <= after)
                || t.first_conns.is_some_and(|first| conn.ordinal > first)
            {
                continue;
            }
            let state = &plan.counters[i].state;
            if t.for_time.is_some_and(|window| state.age() >= window)
                || t.after_time.is_some_and(|wait| state.age() < wait)
                || t.conns
                    .is_some_and(|n| self.inner.open.load(Ordering::Relaxed) <= n)
            {
                continue;
            }
            if let Some(want) = &t.from
                && !ctx.from.is_some_and(|from| matches_addr(want, from))
            {
                continue;
            }
            if let Some(want) = &t.to
                && !ctx.to.iter().any(|to| matches_addr(want, to))
            {
                continue;
            }
            let fired = &plan.counters[i].fired;
            if t.times
                .is_some_and(|times| fired.load(Ordering::Relaxed) >= times)
            {
                continue;
            }
            // A greylisted triple past its window is accepted: the rule does not fire for it.
            if let Action::Greylist(window) = rule.action
                && !self.inner.greylist.holds(
                    conn.peer,
                    ctx.from.unwrap_or_default(),
                    ctx.to.first().copied().unwrap_or_default(),
                    window,
                )
            {
                continue;
            }
            if !over_rate {
                continue;
            }
            if let Some(chance) = t.chance {
                let roll: f64 = conn.rng.random_range(0.0..100.0);
                if roll >= chance {
                    continue;
                }
            }
            let claimed = match t.times {
                Some(times) => fired
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                        (f < times).then_some(f + 1)
                    })
                    .is_ok(),
                None => {
                    fired.fetch_add(1, Ordering::Relaxed);
                    true
                }
            };
            if !claimed {
                continue;
            }
            self.inner.injected[idx][rule.action.kind_index()].fetch_add(1, Ordering::Relaxed);
            let event_seq = self.inner.events.record(NewEvent {
                connection: conn.id,
                stage,
                rule: Arc::clone(&plan.texts[i]),
                stored: rule.action == Action::AcceptClose,
            });
            return Some(Decision {
                rule: Arc::clone(&plan.texts[i]),
                rule_index: i,
                action: rule.action.clone(),
                event_seq,
            });
        }
        None
    }

    /// Checks what a plan of `rules` needs beyond each rule's own checks: unique names.
    pub fn check_rules(rules: &[FaultRule]) -> Result<(), RuleParseError> {
        Plan::new(rules.to_vec(), 0, None).map(|_| ())
    }

    /// Records an event no rule decided (the server going away and coming back): `what` is
    /// the action shown (`start`, `end`), `detail` the text shown as its rule.
    pub fn record_external(&self, stage: Stage, what: &str, detail: String) -> u64 {
        self.inner.events.record(NewEvent {
            connection: 0,
            stage,
            rule: Arc::new(RuleText {
                rule: stage.to_string(),
                action: what.to_owned(),
                definition: detail,
            }),
            stored: false,
        })
    }

    pub fn events(&self) -> &EventLog {
        &self.inner.events
    }

    /// The rules and seed in force.
    pub fn snapshot(&self) -> PlanSnapshot {
        let plan = self.plan();
        PlanSnapshot {
            seed: plan.seed,
            rules: plan.rules.clone(),
        }
    }

    /// The seed in force (new connections derive their RNG from it).
    pub fn seed(&self) -> u64 {
        self.plan().seed
    }

    /// Replaces the rules and, when given, the seed. A rule with the same name and definition
    /// as one in force keeps its counters; any other starts at zero. Two rules with one name
    /// are refused.
    pub fn replace(
        &self,
        rules: Vec<FaultRule>,
        seed: Option<u64>,
    ) -> Result<PlanSnapshot, RuleParseError> {
        self.change(|_| Ok(rules), seed)
    }

    /// The rule called `name`.
    pub fn rule(&self, name: &str) -> Option<FaultRule> {
        let plan = self.plan();
        plan.position(name).map(|i| plan.rules[i].clone())
    }

    /// Installs `rule` under `name`: replaces the rule of that name in place, or adds it at
    /// the end. Returns whether it was added, and the rule as installed.
    pub fn put_rule(
        &self,
        name: &str,
        mut rule: FaultRule,
    ) -> Result<(bool, FaultRule), RuleParseError> {
        check_name(name)?;
        if rule.name.as_deref().is_some_and(|given| given != name) {
            return Err(RuleParseError(format!(
                "the rule is named {:?} but was put as {name:?}",
                rule.name.unwrap_or_default()
            )));
        }
        rule.name = Some(name.to_owned());
        let mut added = false;
        self.change(
            |current| {
                let mut rules = current.to_vec();
                match rules.iter().position(|r| r.name.as_deref() == Some(name)) {
                    Some(i) => rules[i] = rule.clone(),
                    None => {
                        added = true;
                        rules.push(rule.clone());
                    }
                }
                Ok(rules)
            },
            None,
        )?;
        Ok((added, self.rule(name).unwrap_or(rule)))
    }

    /// Removes the rule called `name`; false when there is none.
    pub fn delete_rule(&self, name: &str) -> bool {
        let mut found = false;
        let _ = self.change(
            |current| {
                let rules: Vec<FaultRule> = current
                    .iter()
                    .filter(|r| r.name.as_deref() != Some(name))
                    .cloned()
                    .collect();
                found = rules.len() < current.len();
                Ok(rules)
            },
            None,
        );
        found
    }

    /// Switches the rule called `name` on or off (its counters stay); `None` when there is none.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Option<FaultRule> {
        let _ = self.change(
            |current| {
                let mut rules = current.to_vec();
                if let Some(rule) = rules.iter_mut().find(|r| r.name.as_deref() == Some(name)) {
                    rule.enabled = enabled;
                }
                Ok(rules)
            },
            None,
        );
        self.rule(name)
    }

    /// Builds the next plan from the current rules with `edit`, under the write lock so
    /// concurrent changes do not lose each other, and puts it in force.
    fn change(
        &self,
        edit: impl FnOnce(&[FaultRule]) -> Result<Vec<FaultRule>, RuleParseError>,
        seed: Option<u64>,
    ) -> Result<PlanSnapshot, RuleParseError> {
        let mut guard = self.inner.plan.write().unwrap_or_else(|e| e.into_inner());
        let rules = edit(&guard.rules)?;
        let plan = Plan::new(rules, seed.unwrap_or(guard.seed), Some(&guard))?;
        let snapshot = PlanSnapshot {
            seed: plan.seed,
            rules: plan.rules.clone(),
        };
        // Stored under the write lock so mask and plan change together for later readers.
        self.inner.stage_mask.store(plan.mask(), Ordering::Release);
        *guard = Arc::new(plan);
        Ok(snapshot)
    }

    /// Clears the event log and every trigger counter (stage reaches, rule firings).
    /// The rules, the seed and the injected-fault statistics stay.
    pub fn reset(&self) {
        for counter in &self.inner.reached {
            counter.store(0, Ordering::Relaxed);
        }
        self.inner.sessions.store(0, Ordering::Relaxed);
        self.inner.greylist.clear();
        for counters in &self.plan().counters {
            counters.reset();
        }
        self.inner.events.clear();
    }

    /// How many times `stage` was reached since start or the last reset.
    pub fn reached(&self, stage: Stage) -> u64 {
        self.inner.reached[stage.index()].load(Ordering::Relaxed)
    }

    /// Faults injected at `stage` with an action of kind `Action::KINDS[kind]`, since start.
    pub fn injected(&self, stage: Stage, kind: usize) -> u64 {
        self.inner.injected[stage.index()]
            .get(kind)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn plan(&self) -> Arc<Plan> {
        // Poisoning cannot leave the plan half-changed (replacement is one assignment).
        Arc::clone(&self.inner.plan.read().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
