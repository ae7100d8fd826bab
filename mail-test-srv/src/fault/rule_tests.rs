//! Table tests of the rule syntax: text, Display round-trip, JSON in both forms.
