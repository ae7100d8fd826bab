//! The log of injected faults.
//!
//! OWNER: helper "faults/store/http".

/// One injected fault.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultEvent {
    pub seq: u64,
    /// RFC 3339 time the fault fired.
    pub time: String,
    pub connection: u64,
    pub stage: String,
    /// Index of the rule in the plan, and the rule as text (`mail:close:35%`).
    pub rule_index: usize,
    pub rule: String,
    pub action: String,
    pub stored: bool,
}

/// Append-only log of fault events, cleared by `POST /api/v1/reset`.
#[derive(Debug, Default)]
pub struct EventLog {
    _private: (),
}
