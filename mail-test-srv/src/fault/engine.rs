//! The fault plan in force and the decision at each stage.
//!
//! OWNER: helper "faults/store/http". Signatures below are the agreed interface.

use super::{Action, EventLog, FaultRule, Stage};

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
    /// Sequence number of the event recorded for it.
    pub event_seq: u64,
}

/// The current rules and seed, as reported by `GET /api/v1/faults`.
#[derive(Debug, Clone)]
pub struct PlanSnapshot {
    pub rules: Vec<FaultRule>,
    pub seed: u64,
}

/// Per-connection fault state (its RNG), created by [`FaultEngine::connection`].
#[derive(Debug)]
pub struct ConnectionFaults {
    _private: (),
}

/// The fault plan of one server instance, its counters and its event log.
/// Cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct FaultEngine {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl FaultEngine {
    /// A plan with these rules and seed.
    pub fn new(rules: Vec<FaultRule>, seed: u64) -> Self {
        todo!()
    }
    /// Fault state for a new connection with this id (ids start at 1, in accept order).
    pub fn connection(&self, connection_id: u64) -> ConnectionFaults {
        todo!()
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
        todo!()
    }
    pub fn events(&self) -> &EventLog {
        todo!()
    }
}
