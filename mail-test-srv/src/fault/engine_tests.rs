//! Trigger semantics with fixed seeds.
