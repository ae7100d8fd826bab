//! Trigger semantics with fixed seeds.

use super::*;

fn engine(rules: &[&str], seed: u64) -> FaultEngine {
    let rules = rules.iter().map(|r| r.parse().unwrap()).collect();
    FaultEngine::new(rules, seed)
}

/// Reaches `stage` `times` times on one connection; returns which reaches fired (1-based).
fn fired_at(e: &FaultEngine, stage: Stage, times: u64, ctx: &FaultContext<'_>) -> Vec<u64> {
    let mut conn = e.connection(1);
    (1..=times)
        .filter(|_| e.decide(&mut conn, stage, ctx).is_some())
        .collect()
}

const NONE: FaultContext<'static> = FaultContext {
    from: None,
    to: &[],
};

#[test]
fn no_rules_never_fires_but_counts_reaches() {
    let e = engine(&[], 1);
    assert!(fired_at(&e, Stage::Mail, 5, &NONE).is_empty());
    assert_eq!(e.reached(Stage::Mail), 5);
    assert_eq!(e.reached(Stage::Rcpt), 0);
    assert!(e.events().is_empty());
}

#[test]
fn first_every_after_times() {
    let e = engine(&["mail:close:first=2"], 1);
    assert_eq!(fired_at(&e, Stage::Mail, 6, &NONE), [1, 2]);
    let e = engine(&["mail:close:every=3"], 1);
    assert_eq!(fired_at(&e, Stage::Mail, 9, &NONE), [3, 6, 9]);
    let e = engine(&["mail:close:after=4"], 1);
    assert_eq!(fired_at(&e, Stage::Mail, 6, &NONE), [5, 6]);
    let e = engine(&["mail:close:times=2"], 1);
    assert_eq!(fired_at(&e, Stage::Mail, 6, &NONE), [1, 2]);
    // Combined: every second reach after the third, twice at most.
    let e = engine(&["mail:close:every=2:after=3:times=2"], 1);
    assert_eq!(fired_at(&e, Stage::Mail, 12, &NONE), [4, 6]);
}

#[test]
fn first_conns_fires_on_every_command_of_the_first_sessions_only() {
    let e = engine(&["mail:close:first-conns=2"], 1);
    let mut sessions: Vec<_> = (1..=3).map(|id| e.connection(id)).collect();
    // Two MAILs on each: both fire on sessions 1 and 2, none on session 3.
    let fired: Vec<bool> = sessions
        .iter_mut()
        .flat_map(|conn| [(); 2].map(|_| e.decide(conn, Stage::Mail, &NONE).is_some()))
        .collect();
    assert_eq!(fired, [true, true, true, true, false, false]);
    // A reset numbers sessions from 1 again.
    e.reset();
    let mut next = e.connection(4);
    assert!(e.decide(&mut next, Stage::Mail, &NONE).is_some());
}

#[test]
fn rules_apply_only_to_their_stage() {
    let e = engine(&["rcpt:reply=550"], 1);
    assert!(fired_at(&e, Stage::Mail, 3, &NONE).is_empty());
    assert_eq!(fired_at(&e, Stage::Rcpt, 2, &NONE), [1, 2]);
}

#[test]
fn first_matching_rule_decides_and_is_recorded() {
    let e = engine(
        &["mail:421:first=1", "mail:reply=451:first=2", "rcpt:close"],
        7,
    );
    let mut conn = e.connection(3);
    let d1 = e.decide(&mut conn, Stage::Mail, &NONE).unwrap();
    assert_eq!((d1.rule_index, d1.action.clone()), (0, Action::Reply421));
    let d2 = e.decide(&mut conn, Stage::Mail, &NONE).unwrap();
    assert_eq!((d2.rule_index, d2.action.clone()), (1, Action::Reply(451)));
    assert_eq!(e.decide(&mut conn, Stage::Mail, &NONE), None);

    let page = e.events().since(0);
    assert_eq!(page.events.len(), 2);
    let ev = &page.events[1];
    assert_eq!(ev.seq, d2.event_seq);
    assert_eq!(ev.connection, 3);
    assert_eq!(ev.stage, "mail");
    assert_eq!(ev.rule, "mail-reply-1", "the name made up for it");
    assert_eq!(ev.definition, "mail:reply=451:first=2");
    assert_eq!(ev.action, "reply=451");
    assert!(!ev.stored);
    assert!(
        ev.time.ends_with('Z') && ev.time.contains('T'),
        "{}",
        ev.time
    );
    assert_eq!(e.injected(Stage::Mail, Action::Reply421.kind_index()), 1);
    assert_eq!(e.injected(Stage::Mail, Action::Reply(451).kind_index()), 1);
}

#[test]
fn accept_close_event_is_marked_stored() {
    let e = engine(&["data-end:accept-close"], 1);
    let mut conn = e.connection(1);
    e.decide(&mut conn, Stage::DataEnd, &NONE).unwrap();
    assert!(e.events().since(0).events[0].stored);
}

#[test]
fn from_and_to_match_ignoring_case() {
    let e = engine(
        &[
            "rcpt:reply=550:to=bad@example.com",
            "mail:close:from=evil@x",
        ],
        1,
    );
    let mut conn = e.connection(1);
    let good = FaultContext {
        from: Some("a@x"),
        to: &["good@example.com"],
    };
    let bad = FaultContext {
        from: Some("a@x"),
        to: &["BAD@example.com"],
    };
    let evil = FaultContext {
        from: Some("Evil@X"),
        to: &[],
    };
    assert_eq!(e.decide(&mut conn, Stage::Rcpt, &good), None);
    assert!(e.decide(&mut conn, Stage::Rcpt, &bad).is_some());
    assert_eq!(e.decide(&mut conn, Stage::Mail, &good), None);
    assert_eq!(e.decide(&mut conn, Stage::Mail, &NONE), None);
    assert!(e.decide(&mut conn, Stage::Mail, &evil).is_some());
    // Later stages see every recipient: any one matching fires.
    let e = engine(&["data:421:to=bad@example.com"], 1);
    let mut conn = e.connection(1);
    let many = FaultContext {
        from: Some(""),
        to: &["a@x", "bad@example.com"],
    };
    assert!(e.decide(&mut conn, Stage::Data, &many).is_some());
}

/// Which of `n` reaches on connection `id` fire, for a 50% rule.
fn coin_flips(seed: u64, id: u64, n: usize) -> Vec<bool> {
    let e = engine(&["mail:close:50%"], seed);
    let mut conn = e.connection(id);
    (0..n)
        .map(|_| e.decide(&mut conn, Stage::Mail, &NONE).is_some())
        .collect()
}

#[test]
fn chance_is_reproducible_from_the_seed() {
    let a = coin_flips(42, 1, 64);
    assert_eq!(a, coin_flips(42, 1, 64), "same seed, same sequence");
    assert_ne!(a, coin_flips(43, 1, 64), "another seed, another sequence");
    assert_ne!(
        a,
        coin_flips(42, 2, 64),
        "another connection, another sequence"
    );
    let fired = a.iter().filter(|&&f| f).count();
    assert!((10..=54).contains(&fired), "50% of 64 fired {fired} times");
}

#[test]
fn chance_does_not_depend_on_interleaving() {
    // Connection 1 then 2, or interleaved: each connection sees the same rolls.
    let e = engine(&["mail:close:50%"], 9);
    let (mut c1, mut c2) = (e.connection(1), e.connection(2));
    let mut one = Vec::new();
    let mut two = Vec::new();
    for _ in 0..32 {
        two.push(e.decide(&mut c2, Stage::Mail, &NONE).is_some());
        one.push(e.decide(&mut c1, Stage::Mail, &NONE).is_some());
    }
    assert_eq!(one, coin_flips(9, 1, 32));
    assert_eq!(two, coin_flips(9, 2, 32));
}

#[test]
fn chance_is_rolled_only_when_the_other_conditions_hold() {
    // A to= rule that never matches must not consume rolls of the connection's RNG.
    let e = engine(&["mail:reset:50%:to=nobody@x", "mail:close:50%"], 5);
    let mut conn = e.connection(1);
    let flips: Vec<bool> = (0..32)
        .map(|_| e.decide(&mut conn, Stage::Mail, &NONE).is_some())
        .collect();
    assert_eq!(flips, coin_flips(5, 1, 32));
}

#[test]
fn chance_bounds() {
    let e = engine(&["mail:close:100%"], 3);
    assert_eq!(fired_at(&e, Stage::Mail, 20, &NONE).len(), 20);
    let e = engine(&["mail:close:0%"], 3);
    assert!(fired_at(&e, Stage::Mail, 20, &NONE).is_empty());
}

#[test]
fn replace_and_reset() {
    let e = engine(&["mail:close:times=1"], 1);
    assert_eq!(fired_at(&e, Stage::Mail, 3, &NONE), [1]);
    // Reset: counters and events cleared, the rule can fire again.
    e.reset();
    assert_eq!(e.reached(Stage::Mail), 0);
    assert!(e.events().is_empty());
    assert_eq!(fired_at(&e, Stage::Mail, 3, &NONE), [1]);

    let snap = e
        .replace(vec!["rcpt:hang".parse().unwrap()], Some(99))
        .unwrap();
    assert_eq!(snap.seed, 99);
    assert_eq!(e.seed(), 99);
    assert_eq!(
        e.snapshot().rules,
        vec!["rcpt-hang-1=rcpt:hang".parse::<FaultRule>().unwrap()],
        "named when installed"
    );
    assert!(fired_at(&e, Stage::Mail, 3, &NONE).is_empty());
    assert_eq!(fired_at(&e, Stage::Rcpt, 2, &NONE), [1, 2]);
    // A new seed gives new connections the same rolls as an engine built with it.
    e.replace(vec!["mail:close:50%".parse().unwrap()], None)
        .unwrap();
    assert_eq!(e.seed(), 99);
    let mut conn = e.connection(4);
    let flips: Vec<bool> = (0..32)
        .map(|_| e.decide(&mut conn, Stage::Mail, &NONE).is_some())
        .collect();
    assert_eq!(flips, coin_flips(99, 4, 32));
}

#[test]
fn open_connections_see_new_rules() {
    let e = engine(&[], 1);
    let mut conn = e.connection(1);
    assert_eq!(e.decide(&mut conn, Stage::Quit, &NONE), None);
    e.replace(vec!["quit:close".parse().unwrap()], None)
        .unwrap();
    assert!(e.decide(&mut conn, Stage::Quit, &NONE).is_some());
}

#[test]
fn times_holds_across_threads() {
    let e = engine(&["mail:close:times=10"], 1);
    let fired: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let e = e.clone();
                s.spawn(move || {
                    let mut conn = e.connection(t + 1);
                    (0..100)
                        .filter(|_| e.decide(&mut conn, Stage::Mail, &NONE).is_some())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(fired, 10);
    assert_eq!(e.reached(Stage::Mail), 400);
}

#[tokio::test(start_paused = true)]
async fn time_windows_count_from_install_and_from_reset() {
    let e = engine(&["mail:421:for=30s", "mail:close:after-time=1m"], 1);
    let mut conn = e.connection(1);
    let action = |e: &FaultEngine, conn: &mut ConnectionFaults| {
        e.decide(conn, Stage::Mail, &NONE).map(|d| d.action)
    };
    assert_eq!(
        action(&e, &mut conn),
        Some(Action::Reply421),
        "inside for=30s"
    );
    tokio::time::advance(std::time::Duration::from_secs(30)).await;
    assert_eq!(
        action(&e, &mut conn),
        None,
        "recovered, and not yet after-time"
    );
    tokio::time::advance(std::time::Duration::from_secs(30)).await;
    assert_eq!(
        action(&e, &mut conn),
        Some(Action::Close),
        "after-time=1m reached"
    );
    e.reset();
    assert_eq!(
        action(&e, &mut conn),
        Some(Action::Reply421),
        "a reset starts both again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_fires_past_n_reaches_a_second() {
    let e = engine(&["mail:421:rate=3/s"], 1);
    let mut a = e.connection(1);
    let mut b = e.connection(2);
    // Over the whole server: the 4th reach in the second fires, whichever session it is.
    let fired: Vec<bool> = (0..5)
        .map(|i| {
            let conn = if i % 2 == 0 { &mut a } else { &mut b };
            e.decide(conn, Stage::Mail, &NONE).is_some()
        })
        .collect();
    assert_eq!(fired, [false, false, false, true, true]);
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    assert!(
        e.decide(&mut a, Stage::Mail, &NONE).is_none(),
        "a new second"
    );
}

#[tokio::test(start_paused = true)]
async fn a_per_peer_rate_counts_each_client_apart() {
    let e = engine(&["mail:reply=451:rate=1/s:per-peer"], 1);
    let mut a = e.connection(1);
    a.set_peer("127.0.0.1".parse().unwrap());
    let mut b = e.connection(2);
    b.set_peer("127.0.0.2".parse().unwrap());
    assert!(e.decide(&mut a, Stage::Mail, &NONE).is_none());
    assert!(
        e.decide(&mut b, Stage::Mail, &NONE).is_none(),
        "another client"
    );
    assert!(
        e.decide(&mut a, Stage::Mail, &NONE).is_some(),
        "a's second this second"
    );
}

#[test]
fn conns_fires_only_past_n_open_sessions() {
    let e = engine(&["connect:421:conns=2"], 1);
    let mut first = e.connection(1);
    let mut second = e.connection(2);
    assert!(
        e.decide(&mut second, Stage::Connect, &NONE).is_none(),
        "2 open"
    );
    let mut third = e.connection(3);
    assert!(
        e.decide(&mut third, Stage::Connect, &NONE).is_some(),
        "3 open"
    );
    drop(third);
    drop(second);
    assert!(
        e.decide(&mut first, Stage::Connect, &NONE).is_none(),
        "1 open"
    );
}

#[test]
fn named_rules_are_read_put_switched_and_deleted_one_at_a_time() {
    let e = engine(&["slow=ehlo:delay=1ms", "mail:close:first=1"], 1);
    assert_eq!(e.rule("slow").unwrap().definition(), "ehlo:delay=1ms");
    assert_eq!(e.rule("mail-close-1").unwrap().trigger.first, Some(1));
    // Added at the end (true), then replaced in place (false).
    let (added, rule) = e
        .put_rule("greylist", "rcpt:greylist=1m".parse().unwrap())
        .unwrap();
    assert!(added);
    assert_eq!(rule.name.as_deref(), Some("greylist"));
    let (added, _) = e
        .put_rule("slow", "ehlo:delay=2ms".parse().unwrap())
        .unwrap();
    assert!(!added);
    let names: Vec<String> = e
        .snapshot()
        .rules
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    assert_eq!(names, ["slow", "mail-close-1", "greylist"]);
    assert!(
        e.put_rule("bad name", "mail:close".parse().unwrap())
            .is_err()
    );
    assert!(
        e.put_rule("x", "y=mail:close".parse().unwrap()).is_err(),
        "two names"
    );
    // Switched off: kept, never fires; on again: fires.
    let mut conn = e.connection(1);
    assert!(!e.set_enabled("mail-close-1", false).unwrap().enabled);
    assert!(e.decide(&mut conn, Stage::Mail, &NONE).is_none());
    e.set_enabled("mail-close-1", true);
    assert!(e.decide(&mut conn, Stage::Mail, &NONE).is_some());
    assert!(e.set_enabled("nope", false).is_none());
    assert!(e.delete_rule("greylist"));
    assert!(!e.delete_rule("greylist"));
    assert!(e.rule("greylist").is_none());
}

#[test]
fn a_rule_counts_from_its_install_and_an_identical_replacement_keeps_counting() {
    let e = engine(&["mail:421"], 1);
    let mut conn = e.connection(1);
    for _ in 0..3 {
        e.decide(&mut conn, Stage::Mail, &NONE);
    }
    // Added at runtime with first=1: fires on the next MAIL, not never.
    e.put_rule("once", "mail:close:first=1".parse().unwrap())
        .unwrap();
    e.set_enabled("mail-421-1", false);
    let d = e.decide(&mut conn, Stage::Mail, &NONE).unwrap();
    assert_eq!(d.action, Action::Close);
    assert!(
        e.decide(&mut conn, Stage::Mail, &NONE).is_none(),
        "first=1 is spent"
    );
    // The same rule put again keeps its count; a changed one starts over.
    e.put_rule("once", "mail:close:first=1".parse().unwrap())
        .unwrap();
    assert!(e.decide(&mut conn, Stage::Mail, &NONE).is_none());
    e.put_rule("once", "mail:close:first=2".parse().unwrap())
        .unwrap();
    assert!(e.decide(&mut conn, Stage::Mail, &NONE).is_some());
}

#[test]
fn two_rules_with_one_name_are_refused() {
    let rules: Vec<FaultRule> = ["a=mail:close", "a=rcpt:close"]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    assert!(FaultEngine::check_rules(&rules).is_err());
    let e = engine(&[], 1);
    assert!(e.replace(rules, None).is_err());
    assert!(e.snapshot().rules.is_empty(), "nothing changed");
}
