//! Table tests of the rule syntax: text, Display round-trip, JSON in both forms.

use std::time::Duration;

use super::*;

fn rule(text: &str) -> FaultRule {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn err(text: &str) -> String {
    match text.parse::<FaultRule>() {
        Ok(r) => panic!("{text:?} should be refused, parsed as {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_rules_parse_to_the_right_parts() {
    let r = rule("mail:close:35%");
    assert_eq!(r.stage, Stage::Mail);
    assert_eq!(r.action, Action::Close);
    assert_eq!(r.trigger.chance, Some(35.0));

    let r = rule("rcpt:reply=550:to=bad@example.com");
    assert_eq!(r.action, Action::Reply(550));
    assert_eq!(r.trigger.to.as_deref(), Some("bad@example.com"));

    let r = rule("data-end:accept-close:first=1");
    assert_eq!(r.stage, Stage::DataEnd);
    assert_eq!(r.action, Action::AcceptClose);
    assert_eq!(r.trigger.first, Some(1));

    let r = rule("ehlo:delay=150ms:every=3:after=2:first-conns=5:times=4:from=a@b:2.5%");
    assert_eq!(r.action, Action::Delay(Duration::from_millis(150)));
    assert_eq!(
        r.trigger,
        Trigger {
            chance: Some(2.5),
            first: None,
            every: Some(3),
            after: Some(2),
            first_conns: Some(5),
            from: Some("a@b".into()),
            to: None,
            times: Some(4),
            ..Trigger::default()
        }
    );

    assert_eq!(rule("connect:421").action, Action::Reply421);
    assert_eq!(rule("quit:hang").action, Action::Hang);
    assert_eq!(rule("auth:reset:100%").action, Action::Reset);
    assert_eq!(
        rule("data:delay=2s").action,
        Action::Delay(Duration::from_secs(2))
    );
    assert_eq!(rule("mail:close:0%").trigger.chance, Some(0.0));
    assert_eq!(rule("mail:close").trigger, Trigger::default());
}

#[test]
fn bad_rules_name_the_bad_part() {
    let table: &[(&str, &str)] = &[
        (
            "mial:close",
            r#"unknown stage "mial" (expected one of connect, ehlo, auth, mail, rcpt, data, data-end, quit, starttls)"#,
        ),
        ("", "empty fault rule"),
        ("mail", "has no action"),
        ("mail:explode", r#"unknown action "explode""#),
        ("mail:reply=250", "reply code 250 out of range"),
        ("mail:reply=600", "reply code 600 out of range"),
        ("mail:reply=abc", r#"bad reply code "abc""#),
        ("mail:reply=99999", r#"bad reply code "99999""#),
        ("mail:delay=soon", r#"bad delay "soon""#),
        ("mail:delay=2", r#"bad delay "2""#),
        ("mail:delay=2h", "too long"),
        (
            "mail:accept-close",
            "accept-close is only valid at stage data-end, not mail",
        ),
        ("mail:close:101%", "chance 101 out of range"),
        ("mail:close:-1%", "chance -1 out of range"),
        ("mail:close:NaN%", "chance NaN out of range"),
        ("mail:close:x%", r#"bad chance "x%""#),
        ("mail:close:every=0", "every=0"),
        ("mail:close:first=-1", r#"bad trigger first="-1""#),
        ("mail:close:first=1:first=2", "trigger first given twice"),
        ("mail:close:sometimes", r#"unknown trigger "sometimes""#),
        ("mail:close:when=3", r#"unknown trigger "when""#),
        ("mail:close:to=", "bad to address"),
        ("mail:close:", r#"unknown trigger """#),
    ];
    for (text, want) in table {
        let got = err(text);
        assert!(
            got.contains(want),
            "{text:?}: error {got:?} should contain {want:?}"
        );
    }
}

#[test]
fn greylist_and_starttls_rules_in_both_forms() {
    let r = rule("rcpt:greylist=5m:to=a@b");
    assert_eq!(r.action, Action::Greylist(Duration::from_secs(300)));
    assert_eq!(r.to_string(), "rcpt:greylist=5m:to=a@b");
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"stage":"rcpt","action":{"greylist":"5m"},"to":"a@b"}"#
    );
    assert_eq!(serde_json::from_str::<FaultRule>(&json).unwrap(), r);
    assert_eq!(rule("starttls:reply=454").stage, Stage::StartTls);
    assert!(err("mail:greylist=1m").contains("only valid at stage rcpt"));
    assert!(err("rcpt:greylist=2h").contains("too long"));
    assert!(err("outage:close").contains("stage outage takes no rules"));
}

#[test]
fn tls_and_reply_shape_rules_in_both_forms() {
    // (text, the action, its JSON form)
    let table: &[(&str, Action, &str)] = &[
        ("starttls:abort", Action::Abort, r#""abort""#),
        (
            "starttls:reply=454:first=1",
            Action::Reply(454),
            r#"{"reply":454}"#,
        ),
        ("mail:truncate", Action::Truncate, r#""truncate""#),
        ("ehlo:garbage:every=2", Action::Garbage, r#""garbage""#),
        ("connect:bare-lf", Action::BareLf, r#""bare-lf""#),
        (
            "data-end:slow=100/s",
            Action::Slow(100),
            r#"{"slow":"100/s"}"#,
        ),
        ("starttls:slow=1/s", Action::Slow(1), r#"{"slow":"1/s"}"#),
    ];
    for (text, action, json_action) in table {
        let r = rule(text);
        assert_eq!(&r.action, action, "{text}");
        assert_eq!(r.to_string(), *text);
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(&format!(r#""action":{json_action}"#)),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<FaultRule>(&json).unwrap(),
            r,
            "{json}"
        );
    }
    assert_eq!(
        serde_json::from_str::<FaultRule>(r#"{"stage":"rcpt","action":{"slow":"5/s"}}"#).unwrap(),
        rule("rcpt:slow=5/s")
    );
    assert!(err("mail:abort").contains("action abort is only valid at stage starttls, not mail"));
    assert!(err("connect:abort").contains("only valid at stage starttls"));
    for bad in [
        "mail:slow=0/s",
        "mail:slow=10",
        "mail:slow=x/s",
        "mail:slow=5000000000/s",
    ] {
        assert!(err(bad).contains("bad slow rate"), "{bad}");
    }
    let refused = serde_json::from_str::<FaultRule>(r#"{"stage":"mail","action":{"slow":"0/s"}}"#)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("bad slow rate"), "{refused}");
    assert!(
        serde_json::from_str::<FaultRule>(r#"{"stage":"mail","action":"abort"}"#)
            .unwrap_err()
            .to_string()
            .contains("only valid at stage starttls")
    );
}

#[test]
fn time_rate_and_conns_triggers_in_both_forms() {
    let r = rule("mail:421:for=30s:after-time=5s:rate=50/s:per-peer:conns=10");
    assert_eq!(r.trigger.for_time, Some(Duration::from_secs(30)));
    assert_eq!(r.trigger.after_time, Some(Duration::from_secs(5)));
    assert_eq!(r.trigger.rate, Some(50));
    assert!(r.trigger.per_peer);
    assert_eq!(r.trigger.conns, Some(10));
    assert_eq!(
        r.to_string(),
        "mail:421:for=30s:after-time=5s:rate=50/s:per-peer:conns=10"
    );
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        json,
        r#"{"stage":"mail","action":"421","for":"30s","after_time":"5s","rate":"50/s","per_peer":true,"conns":10}"#
    );
    assert_eq!(serde_json::from_str::<FaultRule>(&json).unwrap(), r);
    assert!(err("mail:close:per-peer").contains("per-peer needs a rate"));
    assert!(err("mail:close:rate=0/s").contains("rate=0/s"));
    assert!(err("mail:close:rate=fast").contains("expected N/s"));
    assert!(err("mail:close:for=0s").contains("above 0"));
    assert!(err("mail:close:for=soon").contains("bad trigger for"));
    assert!(err("mail:close:per-peer:rate=1/s:per-peer").contains("given twice"));
    let bad: Result<FaultRule, _> =
        serde_json::from_str(r#"{"stage":"mail","action":"close","for":"later"}"#);
    assert!(bad.unwrap_err().to_string().contains("bad trigger for"));
}

#[test]
fn display_round_trips() {
    for text in [
        "mail:close:35%",
        "mail:close",
        "rcpt:reply=550:to=bad@example.com",
        "data-end:accept-close:first=1",
        "ehlo:delay=150ms:every=3",
        "connect:421:2.5%:after=10:times=2",
        "quit:hang:from=a@example.com",
        "auth:reset:first=1:every=2:after=3:from=x@y:to=z@w:times=4",
    ] {
        assert_eq!(rule(text).to_string(), text);
    }
    // A canonical order: triggers are written back in a fixed order.
    assert_eq!(
        rule("mail:close:times=1:35%").to_string(),
        "mail:close:35%:times=1"
    );
}

#[test]
fn json_object_form_round_trips() {
    let r: FaultRule =
        serde_json::from_str(r#"{"stage":"mail","action":"close","chance":35}"#).unwrap();
    assert_eq!(r, rule("mail:close:35%"));
    let r: FaultRule =
        serde_json::from_str(r#"{"stage":"rcpt","action":{"reply":550},"to":"bad@example.com"}"#)
            .unwrap();
    assert_eq!(r, rule("rcpt:reply=550:to=bad@example.com"));
    let r: FaultRule =
        serde_json::from_str(r#"{"stage":"ehlo","action":{"delay":"150ms"},"every":3}"#).unwrap();
    assert_eq!(r, rule("ehlo:delay=150ms:every=3"));
    let r: FaultRule = serde_json::from_str(r#"{"stage":"connect","action":421}"#).unwrap();
    assert_eq!(r.action, Action::Reply421);
    let r: FaultRule = serde_json::from_str(r#"{"stage":"mail","action":"reply=451"}"#).unwrap();
    assert_eq!(r.action, Action::Reply(451));

    for text in [
        "mail:close:35%",
        "rcpt:reply=550:to=bad@example.com",
        "data-end:accept-close:first=1:times=3",
        "ehlo:delay=150ms:every=3",
        "connect:421",
    ] {
        let r = rule(text);
        let json = serde_json::to_string(&r).unwrap();
        let back: FaultRule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "via {json}");
    }
    assert_eq!(
        serde_json::to_value(rule("mail:close:35%")).unwrap(),
        serde_json::json!({"stage":"mail","action":"close","chance":35})
    );
    assert_eq!(
        serde_json::to_value(rule("mail:close:2.5%")).unwrap()["chance"],
        serde_json::json!(2.5)
    );
    assert_eq!(
        serde_json::to_value(rule("rcpt:reply=550:to=bad@example.com")).unwrap(),
        serde_json::json!({"stage":"rcpt","action":{"reply":550},"to":"bad@example.com"})
    );
}

#[test]
fn json_string_form_is_accepted() {
    let rules: Vec<FaultRule> =
        serde_json::from_str(r#"["mail:close:35%", {"stage":"quit","action":"hang"}]"#).unwrap();
    assert_eq!(rules, vec![rule("mail:close:35%"), rule("quit:hang")]);
}

#[test]
fn bad_json_rules_are_refused_with_the_same_messages() {
    let table: &[(&str, &str)] = &[
        (r#""mial:close""#, r#"unknown stage "mial""#),
        (
            r#"{"stage":"mial","action":"close"}"#,
            r#"unknown stage "mial""#,
        ),
        (
            r#"{"stage":"mail","action":"accept-close"}"#,
            "only valid at stage data-end",
        ),
        (
            r#"{"stage":"mail","action":{"reply":250}}"#,
            "reply code 250 out of range",
        ),
        (
            r#"{"stage":"mail","action":{"reply":70000}}"#,
            "out of range",
        ),
        (
            r#"{"stage":"mail","action":{"delay":"x"}}"#,
            r#"bad delay "x""#,
        ),
        (
            r#"{"stage":"mail","action":{"boom":1}}"#,
            r#"unknown action key "boom""#,
        ),
        (r#"{"stage":"mail","action":{}}"#, "empty action object"),
        (
            r#"{"stage":"mail","action":550}"#,
            "a bare number may only be 421",
        ),
        (
            r#"{"stage":"mail","action":"close","chance":150}"#,
            "chance 150 out of range",
        ),
        (
            r#"{"stage":"mail","action":"close","chanse":15}"#,
            "unknown field `chanse`",
        ),
        (r#"{"stage":"mail"}"#, "missing field `action`"),
        (r#"{"stage":"mail","action":"close","every":0}"#, "every=0"),
        ("42", "a fault rule"),
    ];
    for (json, want) in table {
        let got = serde_json::from_str::<FaultRule>(json)
            .map(|r| panic!("{json} should be refused, got {r:?}"))
            .unwrap_err()
            .to_string();
        assert!(
            got.contains(want),
            "{json}: error {got:?} should contain {want:?}"
        );
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn stage() -> impl Strategy<Value = Stage> {
        // Every stage a rule may name (`outage` is only for events).
        let stages: Vec<Stage> = Stage::ALL
            .into_iter()
            .filter(|s| *s != Stage::Outage)
            .collect();
        proptest::sample::select(stages)
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Close),
            Just(Action::Reset),
            Just(Action::Reply421),
            Just(Action::Hang),
            (400u16..=599).prop_map(Action::Reply),
            (0u64..3_600_000).prop_map(|ms| Action::Delay(Duration::from_millis(ms))),
            Just(Action::Truncate),
            Just(Action::Garbage),
            Just(Action::BareLf),
            (1u32..=u32::MAX).prop_map(Action::Slow),
        ]
    }

    fn trigger() -> impl Strategy<Value = Trigger> {
        let addr = proptest::option::of("[a-z]{1,8}@[a-z]{1,8}\\.com");
        (
            proptest::option::of((0u32..=10_000).prop_map(|c| f64::from(c) / 100.0)),
            proptest::option::of(any::<u64>()),
            proptest::option::of(1..u64::MAX),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            addr.clone(),
            addr,
            proptest::option::of(any::<u64>()),
        )
            .prop_map(
                |(chance, first, every, after, first_conns, from, to, times)| Trigger {
                    chance,
                    first,
                    every,
                    after,
                    first_conns,
                    for_time: None,
                    after_time: None,
                    rate: None,
                    per_peer: false,
                    conns: None,
                    from,
                    to,
                    times,
                },
            )
    }

    proptest! {
        #[test]
        fn text_and_json_round_trip(stage in stage(), action in action(), trigger in trigger()) {
            let rule = FaultRule::new(stage, action, trigger);
            let text = rule.to_string();
            prop_assert_eq!(&text.parse::<FaultRule>().unwrap(), &rule, "via {}", text);
            let json = serde_json::to_string(&rule).unwrap();
            prop_assert_eq!(&serde_json::from_str::<FaultRule>(&json).unwrap(), &rule, "via {}", json);
        }

        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,40}") {
            let _ = text.parse::<FaultRule>();
            let _ = serde_json::from_str::<FaultRule>(&text);
        }

        #[test]
        fn rule_like_text_parses_or_errs_without_panicking(
            text in "(connect|mail|rcpt|data-end|x)(:(close|421|reply=[0-9]{1,6}|delay=[0-9a-z]{0,5}|accept-close|first=[0-9-]{0,3}|[0-9.]{0,5}%|to=[a-z@]{0,3})){0,4}"
        ) {
            let _ = text.parse::<FaultRule>();
        }
    }
}

/// Found by the `fault_rule` fuzzer: without serde_json's `float_roundtrip`, these chances
/// came back from JSON a few ULPs off, so `GET` then `PUT` of a plan changed it.
#[test]
fn long_and_tiny_chances_survive_json_bit_for_bit() {
    for text in ["mail:hang:0.9222222222222223%", "mail:close:11002308e-317%"] {
        let rule = rule(text);
        let json = serde_json::to_string(&rule).unwrap();
        let back: FaultRule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rule, "{text} via {json}");
    }
}
