//! Fuzzes the `--fault` rule parser (`"STAGE:ACTION[:TRIGGER...]".parse::<FaultRule>()`),
//! the same parser `PUT /api/v1/faults` uses for string rules.
//!
//! A rule that parses must survive both of its printed forms unchanged: the text form
//! (`Display`, what `GET /api/v1/faults` and the logs show) and the JSON object form
//! (what the API returns and accepts). Either mismatch means a plan read back from the
//! server would not be the plan that was set.
//!
//! This target found that serde_json's default float parser read a long decimal chance
//! back 1 ULP off (`0.9222222222222223`, and subnormals a few ULPs off); the workspace now
//! enables serde_json's `float_roundtrip`, and the check is exact again (see docs/RELIABILITY.md).

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
    assert_eq!(back, rule, "JSON round trip of {text:?} via {json}");
});
