//! Deliberate misbehaviour: the fault plan, its triggers and the event log.
//!
//! Kept apart from `smtp/` (protocol correctness): the session asks
//! [`FaultEngine::decide`] at each [`Stage`] and carries out the returned [`Action`].
//!
//! - `rule.rs`: [`FaultRule`] = [`Stage`] + action + trigger, parsed from `STAGE:ACTION[:TRIGGER...]`
//!   and (de)serialised as JSON for `PUT /api/v1/faults`.
//! - `action.rs`: [`Action`], what a fault does; `trigger.rs`: [`Trigger`], when it fires.
//! - `plan.rs`: the rules in force, named, with counters kept across identical replacements.
//! - `rule_state.rs`: what an installed rule remembers (its install time, recent reaches).
//! - `engine.rs`: the plan in force, stage counters, per-rule fire counters, seeded randomness.
//! - `events.rs`: the log of injected faults.
//! - `greylist.rs`: when each (client, sender, recipient) triple was first seen.
//!
//! Randomness: every connection gets its own RNG seeded from `(seed, connection id)`, so
//! the same seed and the same sequence of client commands give the same faults, even
//! when connections interleave differently.

mod action;
mod engine;
mod events;
mod greylist;
mod plan;
mod rule;
mod rule_state;
mod trigger;

pub use action::{Action, MAX_DELAY};
// One connection's decisions: the session's business, public only for the fuzz targets
// and the tests that drive the engine directly.
#[cfg(not(feature = "fuzzing"))]
pub(crate) use engine::{ConnectionFaults, Decision};
#[cfg(feature = "fuzzing")]
pub use engine::{ConnectionFaults, Decision};
pub use engine::{FaultContext, FaultEngine, PlanSnapshot};
pub(crate) use events::RawPage;
pub use events::{EventLog, EventPage, FaultEvent, RuleText};
pub use rule::{FaultRule, RuleParseError, Stage, check_name};
pub use trigger::Trigger;
