//! A plan: the rules in force, each with its name and its counters.
//!
//! Every rule has a name: the one it was given, or `STAGE-ACTION-N` (`mail-close-1`) made up
//! when it is installed. Names are unique within a plan. Each rule counts the reaches of its
//! stage and its firings from when it was installed; a new plan that holds a rule with the
//! same name and the same definition keeps that rule's counters, so replacing a rule with an
//! identical one (or changing only its `enabled` switch) does not start it over.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::events::RuleText;
use super::rule_state::RuleState;
use super::{FaultRule, RuleParseError, Stage};

const STAGES: usize = Stage::ALL.len();

/// What one installed rule counts.
#[derive(Debug)]
pub(super) struct RuleCounters {
    /// Reaches of the rule's stage since it was installed or the engine last reset (`n` of
    /// `first`, `every`, `after`).
    pub reached: AtomicU64,
    /// Firings since then (`times`).
    pub fired: AtomicU64,
    /// Install time and recent reaches (time windows, rates).
    pub state: RuleState,
}

impl RuleCounters {
    fn new(rule: &FaultRule) -> Self {
        RuleCounters {
            reached: AtomicU64::new(0),
            fired: AtomicU64::new(0),
            state: RuleState::new(rule.trigger.rate.is_some()),
        }
    }

    pub(super) fn reset(&self) {
        self.reached.store(0, Ordering::Relaxed);
        self.fired.store(0, Ordering::Relaxed);
        self.state.reset();
    }
}

/// An immutable set of named rules with their shared, mutable counters.
#[derive(Debug)]
pub(super) struct Plan {
    pub seed: u64,
    /// Every rule named.
    pub rules: Vec<FaultRule>,
    /// Each rule's name, action and definition, rendered once and shared by its events.
    pub texts: Vec<Arc<RuleText>>,
    /// Indexes into `rules` for each stage, in plan order.
    pub by_stage: [Vec<usize>; STAGES],
    pub counters: Vec<Arc<RuleCounters>>,
}

impl Plan {
    /// The plan of `rules`, named; counters are carried over from `previous` for rules that
    /// are the same there. Two rules with one name are refused.
    pub fn new(
        mut rules: Vec<FaultRule>,
        seed: u64,
        previous: Option<&Plan>,
    ) -> Result<Plan, RuleParseError> {
        let mut taken = HashSet::new();
        for name in rules.iter().filter_map(|r| r.name.as_deref()) {
            if !taken.insert(name.to_owned()) {
                return Err(RuleParseError(format!(
                    "two rules are named {name:?}: names must be unique"
                )));
            }
        }
        for rule in &mut rules {
            if rule.name.is_none() {
                let name = free_name(rule, &taken);
                taken.insert(name.clone());
                rule.name = Some(name);
            }
        }
        let mut by_stage: [Vec<usize>; STAGES] = Default::default();
        for (i, rule) in rules.iter().enumerate() {
            by_stage[rule.stage.index()].push(i);
        }
        let counters = rules
            .iter()
            .map(|rule| {
                previous
                    .and_then(|p| p.same_rule(rule))
                    .unwrap_or_else(|| Arc::new(RuleCounters::new(rule)))
            })
            .collect();
        let texts = rules
            .iter()
            .map(|r| {
                Arc::new(RuleText {
                    rule: r.name.clone().unwrap_or_default(),
                    action: r.action.to_string(),
                    definition: r.definition(),
                })
            })
            .collect();
        Ok(Plan {
            seed,
            rules,
            texts,
            by_stage,
            counters,
        })
    }

    /// The counters of the rule named like `rule` with the same definition, if any.
    fn same_rule(&self, rule: &FaultRule) -> Option<Arc<RuleCounters>> {
        let i = self.position(rule.name.as_deref()?)?;
        self.rules[i]
            .same_definition(rule)
            .then(|| Arc::clone(&self.counters[i]))
    }

    /// Where the rule called `name` is.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.name.as_deref() == Some(name))
    }

    /// Bit `i` set when stage `Stage::ALL[i]` has at least one enabled rule.
    pub fn mask(&self) -> u16 {
        self.by_stage
            .iter()
            .enumerate()
            .filter(|(_, rules)| rules.iter().any(|&i| self.rules[i].enabled))
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }
}

/// `STAGE-ACTION-N` with the first N not taken (`mail-close-1`, `rcpt-reply-2`).
fn free_name(rule: &FaultRule, taken: &HashSet<String>) -> String {
    (1..)
        .map(|n| format!("{}-{}-{n}", rule.stage, rule.action.kind()))
        .find(|name| !taken.contains(name))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(texts: &[&str]) -> Vec<FaultRule> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn rules_are_named_uniquely() {
        let plan = Plan::new(
            rules(&[
                "mail:close",
                "mail-close-1=mail:421",
                "mail:close:35%",
                "rcpt:reply=550",
            ]),
            1,
            None,
        )
        .unwrap();
        let names: Vec<&str> = plan
            .rules
            .iter()
            .map(|r| r.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "mail-close-2",
                "mail-close-1",
                "mail-close-3",
                "rcpt-reply-1"
            ]
        );
        let err = Plan::new(rules(&["a=mail:close", "a=rcpt:close"]), 1, None).unwrap_err();
        assert!(err.0.contains("two rules are named \"a\""), "{err}");
    }

    #[test]
    fn an_identical_rule_keeps_its_counters_a_changed_one_starts_over() {
        let first = Plan::new(rules(&["a=mail:close:first=2", "b=rcpt:close"]), 1, None).unwrap();
        first.counters[0].reached.store(5, Ordering::Relaxed);
        first.counters[1].reached.store(7, Ordering::Relaxed);
        let mut next = rules(&["a=mail:close:first=2", "b=rcpt:close:first=1"]);
        next[0].enabled = false;
        let second = Plan::new(next, 1, Some(&first)).unwrap();
        assert_eq!(
            second.counters[0].reached.load(Ordering::Relaxed),
            5,
            "same rule"
        );
        assert_eq!(
            second.counters[1].reached.load(Ordering::Relaxed),
            0,
            "changed"
        );
        assert_eq!(
            second.mask(),
            1 << Stage::Rcpt.index(),
            "a disabled rule never fires"
        );
    }
}
