//! The event log: numbering, paging, the byte bound and the shared rule texts.

use super::*;

fn text(rule: &str) -> Arc<RuleText> {
    Arc::new(RuleText {
        rule: rule.to_owned(),
        action: "close".to_owned(),
        definition: String::new(),
    })
}

fn event(connection: u64, rule: &Arc<RuleText>) -> NewEvent {
    NewEvent {
        connection,
        stage: Stage::Mail,
        rule: Arc::clone(rule),
        stored: false,
    }
}

fn seqs(page: &EventPage) -> Vec<u64> {
    page.events.iter().map(|e| e.seq).collect()
}

#[test]
fn sequence_starts_at_one_and_since_filters() {
    let log = EventLog::default();
    let rule = text("mail:close");
    assert_eq!(log.record(event(1, &rule)), 1);
    assert_eq!(log.record(event(2, &rule)), 2);
    assert_eq!(log.record(event(3, &rule)), 3);
    let all = log.since(0);
    assert_eq!(seqs(&all), [1, 2, 3]);
    assert_eq!(all.events[0].rule, "mail:close");
    assert_eq!(all.events[0].action, "close");
    assert_eq!(all.events[0].stage, "mail");
    let later = log.since(2);
    assert_eq!(later.events.len(), 1);
    assert_eq!(later.events[0].connection, 3);
    assert!(log.since(3).events.is_empty());
    assert!(log.since(u64::MAX).events.is_empty());
}

#[test]
fn pages_say_whether_more_follow_and_where() {
    let log = EventLog::default();
    let rule = text("mail:close");
    for i in 0..25 {
        log.record(event(i, &rule));
    }
    let first = log.page(0, 10);
    assert_eq!(seqs(&first), (1..=10).collect::<Vec<_>>());
    assert!(first.more);
    assert_eq!(first.next_since, 10);
    let third = log.page(20, 10);
    assert_eq!(seqs(&third), (21..=25).collect::<Vec<_>>());
    assert!(!third.more);
    assert_eq!(third.next_since, 25);
    let none = log.page(25, 10);
    assert!(none.events.is_empty() && !none.more);
    assert_eq!(
        none.next_since, 25,
        "an empty page keeps the caller's place"
    );
    assert_eq!(none.last_seq, 25);
}

#[test]
fn bounded_by_bytes_and_counts_dropped() {
    // Room for 100 entries plus one rule text.
    let rule = text("mail:close");
    let max = 100 * ENTRY_BYTES + SLOT_OVERHEAD + "mail:close".len() + "close".len();
    let log = EventLog::new(max);
    for i in 0..105 {
        log.record(event(i, &rule));
    }
    let page = log.since(0);
    assert_eq!(page.events.len(), 100);
    assert_eq!(page.dropped, 5);
    assert_eq!(page.events[0].seq, 6);
    assert_eq!(log.since(10).events[0].seq, 11);
    assert!(log.bytes() <= max, "{} > {max}", log.bytes());
}

#[test]
fn a_long_rule_is_held_once_not_per_event() {
    let long = text(&format!("mail:close:from={}@example.com", "x".repeat(4096)));
    let log = EventLog::new(usize::MAX);
    for i in 0..1000 {
        log.record(event(i, &long));
    }
    // 1,000 events with a 4 KB rule: the entries plus one copy of the rule, not 4 MB.
    assert!(log.bytes() < 1000 * ENTRY_BYTES + 8192, "{}", log.bytes());
    assert_eq!(log.since(999).events[0].rule, long.rule);
}

#[test]
fn a_rule_text_is_freed_with_its_last_event() {
    let old = text(&"o".repeat(10_000));
    let new = text("mail:close");
    let max = 10 * ENTRY_BYTES + 2 * SLOT_OVERHEAD + 10_000 + 64;
    let log = EventLog::new(max);
    log.record(event(1, &old));
    let with_old = log.bytes();
    for i in 0..20 {
        log.record(event(i, &new));
    }
    assert!(log.bytes() < with_old, "the old text still counted");
    assert!(log.since(0).events.iter().all(|e| e.rule == "mail:close"));
    // A new event of the old rule interns it again.
    log.record(event(2, &old));
    assert_eq!(log.since(0).events.last().unwrap().rule.len(), 10_000);
}

#[test]
fn clear_keeps_numbering() {
    let log = EventLog::default();
    let rule = text("mail:close");
    log.record(event(1, &rule));
    log.clear();
    assert!(log.is_empty());
    assert_eq!(log.bytes(), 0);
    assert_eq!(log.record(event(2, &rule)), 2);
    assert_eq!(log.since(0).events.len(), 1);
}

#[test]
fn raw_page_json_is_the_page_json() {
    let log = EventLog::default();
    let rule = text("mail:close:35%");
    log.record(event(4, &rule));
    log.record(event(5, &rule));
    let raw = serde_json::to_value(log.raw_page(0, 1)).unwrap();
    let owned = serde_json::to_value(log.page(0, 1)).unwrap();
    assert_eq!(raw, owned);
    assert_eq!(raw["events"][0]["rule"], "mail:close:35%");
    assert_eq!(raw["more"], true);
}
