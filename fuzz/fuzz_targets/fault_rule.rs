//! Fuzzes the `--fault` rule parser (`"STAGE:ACTION[:TRIGGER...]".parse::<FaultRule>()`),
//! the same parser `PUT /api/v1/faults` uses for string rules.
//!
//! A rule that parses must survive both of its printed forms unchanged: the text form
//! (`Display`, what `GET /api/v1/faults` and the logs show) and the JSON object form
//! (what the API returns and accepts). Either mismatch means a plan read back from the
//! server would not be the plan that was set.
//!
//! One known, accepted difference: serde_json's default float parser (without its
//! `float_roundtrip` feature) may read a long decimal chance back 1 ULP off, e.g.
//! `0.9222222222222223` (and subnormals a few ULPs off). The JSON check therefore compares
//! the chance within a relative 1e-15 (absolute 1e-300) and everything else exactly (found by this target; see docs/RELIABILITY.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_test_srv::fault::FaultRule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = text.parse::<FaultRule>() else {
        return;
    };
    let printed = rule.to_string();
    let reparsed: FaultRule = printed
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
    assert_eq!(
        reparsed, rule,
        "text round trip of {text:?} via {printed:?}"
    );

    let json = serde_json::to_string(&rule).expect("a rule serialises");
    let back: FaultRule = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{text:?} as JSON {json} fails: {e}"));
    let mut back = back;
    if let (Some(a), Some(b)) = (back.trigger.chance, rule.trigger.chance) {
        assert!(
            (a - b).abs() <= b.abs() * 1e-15,
            "chance {b} came back as {a} via {json}"
        );
        back.trigger.chance = rule.trigger.chance;
    }
    assert_eq!(back, rule, "JSON round trip of {text:?} via {json}");
});
