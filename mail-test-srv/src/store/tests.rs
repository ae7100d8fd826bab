//! Store indexing, eviction and wait notification.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{Filter, NewMessage, Store};

fn msg(from: &str, to: &[&str], body: &str) -> NewMessage {
    NewMessage {
        from: from.into(),
        recipients: to.iter().map(|s| s.to_string()).collect(),
        data: Bytes::from(format!(
            "Subject: {body}\r\nMessage-ID: <{body}@x>\r\n\r\n{body}\r\n"
        )),
        received: SystemTime::UNIX_EPOCH,
        tls: false,
        auth_user: None,
        connection: 1,
        lenient_lines: Vec::new(),
    }
}

fn to(addr: &str) -> Filter {
    Filter {
        to: Some(addr.into()),
        ..Filter::default()
    }
}

fn from(addr: &str) -> Filter {
    Filter {
        from: Some(addr.into()),
        ..Filter::default()
    }
}

fn ids(found: &[std::sync::Arc<super::StoredMessage>]) -> Vec<u64> {
    found.iter().map(|m| m.id).collect()
}

#[test]
fn ids_start_at_one_and_records_are_per_recipient() {
    let s = Store::new(100, 1 << 20);
    assert_eq!(s.insert(msg("a@x", &["b@x", "c@x"], "one")), 1);
    assert_eq!(s.insert(msg("d@x", &["c@x"], "two")), 2);
    assert_eq!(s.len(), 2);
    assert_eq!(s.count_records(&Filter::default()), 3);
    assert_eq!(s.count_records(&to("c@x")), 2);
    assert_eq!(s.count_records(&to("b@x")), 1);
    assert_eq!(
        s.count_records(&to("C@x")),
        0,
        "exact match, like the original"
    );
    assert_eq!(s.count_records(&from("a@x")), 2);
    let both = Filter {
        to: Some("c@x".into()),
        from: Some("d@x".into()),
        subject: None,
    };
    assert_eq!(s.count_records(&both), 1);

    let (m, rcpt) = s.nth_record(&Filter::default(), 1).unwrap();
    assert_eq!((m.id, rcpt.as_str()), (1, "c@x"));
    let (m, rcpt) = s.nth_record(&to("c@x"), 1).unwrap();
    assert_eq!((m.id, rcpt.as_str()), (2, "c@x"));
    let (m, _) = s.nth_record(&both, 0).unwrap();
    assert_eq!(m.id, 2);
    assert!(s.nth_record(&both, 1).is_none());
    assert!(s.nth_record(&to("nobody@x"), 0).is_none());
}

#[test]
fn headers_are_scanned_at_insert() {
    let s = Store::new(10, 1 << 20);
    let id = s.insert(msg("a@x", &["b@x"], "hello"));
    let m = s.get(id).unwrap();
    assert_eq!(m.subject.as_deref(), Some("hello"));
    assert_eq!(m.message_id.as_deref(), Some("hello@x"));
    assert!(s.get(id + 1).is_none());
    assert!(s.get(0).is_none());
}

#[test]
fn messages_filter_and_page() {
    let s = Store::new(100, 1 << 20);
    for i in 0..10 {
        let rcpt = if i % 2 == 0 { "even@x" } else { "odd@x" };
        s.insert(msg("a@x", &[rcpt], &format!("Report {i}")));
    }
    // A repeated RCPT: one message, listed once.
    s.insert(msg("b@x", &["even@x", "even@x"], "twice"));
    assert_eq!(
        ids(&s.messages(&Filter::default(), 0, 100)),
        (1..=11).collect::<Vec<_>>()
    );
    assert_eq!(ids(&s.messages(&to("even@x"), 0, 100)), [1, 3, 5, 7, 9, 11]);
    assert_eq!(ids(&s.messages(&to("even@x"), 2, 2)), [5, 7]);
    assert_eq!(ids(&s.messages(&from("b@x"), 0, 10)), [11]);
    let subject = Filter {
        subject: Some("report 3".into()),
        ..Filter::default()
    };
    assert_eq!(ids(&s.messages(&subject, 0, 10)), [4]);
    assert!(s.messages(&to("none@x"), 0, 10).is_empty());
    assert!(s.messages(&Filter::default(), 100, 10).is_empty());
}

#[test]
fn evicts_oldest_past_the_message_cap() {
    let s = Store::new(3, 1 << 20);
    for i in 1..=5 {
        s.insert(msg("a@x", &[if i == 1 { "first@x" } else { "b@x" }], "m"));
    }
    assert_eq!(s.len(), 3);
    assert_eq!(s.evictions(), 2);
    assert_eq!(ids(&s.messages(&Filter::default(), 0, 10)), [3, 4, 5]);
    assert!(s.get(2).is_none());
    assert_eq!(s.count_records(&to("first@x")), 0);
    assert_eq!(s.count_records(&to("b@x")), 3);
    assert_eq!(s.count_records(&from("a@x")), 3);
    assert_eq!(s.nth_record(&Filter::default(), 0).unwrap().0.id, 3);
}

#[test]
fn evicts_oldest_past_the_byte_cap_but_keeps_the_newest() {
    let one = footprint_of(msg("a@x", &["b@x", "c@x"], "m"));
    let s = Store::new(100, one * 2);
    for _ in 0..4 {
        s.insert(msg("a@x", &["b@x", "c@x"], "m"));
    }
    assert_eq!(s.len(), 2);
    assert_eq!(s.bytes(), one * 2);
    assert_eq!(s.evictions(), 2);
    assert_eq!(s.count_records(&Filter::default()), 4);

    let tiny = Store::new(100, 1);
    tiny.insert(msg("a@x", &["b@x"], "m"));
    let id = tiny.insert(msg("a@x", &["b@x"], "m"));
    assert_eq!(ids(&tiny.messages(&Filter::default(), 0, 10)), [id]);
}

#[test]
fn clear_keeps_ids_growing() {
    let s = Store::new(100, 1 << 20);
    s.insert(msg("a@x", &["b@x"], "m"));
    s.insert(msg("a@x", &["b@x"], "m"));
    s.clear();
    assert!(s.is_empty());
    assert_eq!(s.count_records(&Filter::default()), 0);
    assert_eq!(s.count_records(&to("b@x")), 0);
    assert_eq!(s.insert(msg("a@x", &["b@x"], "m")), 3);
    assert_eq!(s.nth_record(&to("b@x"), 0).unwrap().0.id, 3);
}

#[tokio::test(start_paused = true)]
async fn wait_wakes_on_insert() {
    let s = Store::new(100, 1 << 20);
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.wait(&to("b@x"), 2, Duration::from_secs(60)).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.insert(msg("a@x", &["b@x"], "m"));
    s.insert(msg("a@x", &["other@x"], "m"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "only one matching message so far");
    s.insert(msg("a@x", &["b@x"], "m"));
    let found = waiter.await.unwrap().unwrap();
    assert_eq!(ids(&found), [1, 3]);
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_with_the_count_so_far() {
    let s = Store::new(100, 1 << 20);
    s.insert(msg("a@x", &["b@x"], "m"));
    let start = tokio::time::Instant::now();
    let got = s.wait(&to("b@x"), 3, Duration::from_secs(5)).await;
    assert_eq!(got.unwrap_err(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    // Already satisfied: returns at once.
    let got = s.wait(&to("b@x"), 1, Duration::from_secs(5)).await;
    assert_eq!(ids(&got.unwrap()), [1]);
}

/// What one message counts against the byte cap, measured through a store of its own.
fn footprint_of(message: NewMessage) -> usize {
    let s = Store::new(10, usize::MAX);
    s.insert(message);
    s.bytes()
}

#[test]
fn the_byte_cap_counts_the_envelope_not_only_the_body() {
    let long = |i: usize| format!("{}{i}@example.com", "r".repeat(200));
    let recipients: Vec<String> = (0..100).map(long).collect();
    let to: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let fat = footprint_of(msg("a@x", &to, "m"));
    assert!(
        fat > 100 * 2 * 200,
        "envelope and index keys counted: {fat}"
    );
    // 1 MiB holds only a few such messages, however tiny their bodies.
    let s = Store::new(1_000_000, 1 << 20);
    for _ in 0..3000 {
        s.insert(msg("a@x", &to, "m"));
    }
    assert!(s.bytes() <= 1 << 20, "{}", s.bytes());
    assert!(s.len() <= (1 << 20) / fat + 1, "{} kept", s.len());
    assert!(s.evictions() >= 2900);
}

fn page(s: &Store, query: super::ListQuery) -> (Vec<u64>, usize) {
    let (found, total) = s.list(&query);
    (ids(&found), total)
}

#[test]
fn list_pages_newest_first_with_a_total_and_q() {
    let s = Store::new(100, 1 << 20);
    for i in 1..=6 {
        let rcpt = if i % 2 == 0 { "Even@X" } else { "odd@x" };
        s.insert(msg("a@x", &[rcpt], &format!("Report {i}")));
    }
    let all = |newest_first, offset, limit| super::ListQuery {
        newest_first,
        offset,
        limit,
        ..Default::default()
    };
    assert_eq!(page(&s, all(true, 0, 2)), (vec![6, 5], 6));
    assert_eq!(page(&s, all(true, 4, 10)), (vec![2, 1], 6));
    assert_eq!(page(&s, all(false, 1, 2)), (vec![2, 3], 6));
    let q = |text: &str, newest_first| super::ListQuery {
        q: Some(text.into()),
        newest_first,
        limit: 10,
        ..Default::default()
    };
    // Recipient, case-insensitive.
    assert_eq!(page(&s, q("even@x", true)), (vec![6, 4, 2], 3));
    // Subject.
    assert_eq!(page(&s, q("REPORT 3", false)), (vec![3], 1));
    // Sender.
    assert_eq!(page(&s, q("A@x", false)).1, 6);
    assert_eq!(page(&s, q("nothing", false)), (vec![], 0));
    // With an address filter too.
    let both = super::ListQuery {
        filter: to("odd@x"),
        q: Some("report".into()),
        newest_first: true,
        offset: 1,
        limit: 1,
    };
    assert_eq!(page(&s, both), (vec![3], 3));
}

#[test]
fn remove_one_keeps_records_and_bytes_consistent() {
    let s = Store::new(100, 1 << 20);
    let empty = s.bytes();
    s.insert(msg("a@x", &["b@x", "c@x"], "one"));
    let after_one = s.bytes();
    s.insert(msg("d@x", &["c@x", "c@x"], "two"));
    s.insert(msg("a@x", &["b@x"], "three"));
    assert!(s.remove(2));
    assert!(!s.remove(2), "already gone");
    assert!(!s.remove(99));
    assert_eq!(s.len(), 2);
    assert!(s.get(2).is_none());
    assert_eq!(s.get(3).unwrap().id, 3, "found after a hole in the ids");
    assert_eq!(s.count_records(&Filter::default()), 3);
    assert_eq!(s.count_records(&to("c@x")), 1);
    assert_eq!(s.count_records(&from("d@x")), 0);
    assert_eq!(s.nth_record(&Filter::default(), 2).unwrap().0.id, 3);
    assert_eq!(ids(&s.messages(&Filter::default(), 0, 10)), [1, 3]);
    assert!(s.remove(3));
    assert_eq!(s.bytes(), after_one, "byte accounting follows");
    assert!(s.remove(1));
    assert_eq!(s.bytes(), empty);
    assert_eq!(s.count_records(&to("b@x")), 0);
    assert_eq!(s.insert(msg("a@x", &["b@x"], "four")), 4);
}

#[test]
fn eviction_after_a_removal() {
    let s = Store::new(3, 1 << 20);
    for _ in 0..3 {
        s.insert(msg("a@x", &["b@x"], "m"));
    }
    assert!(s.remove(2));
    s.insert(msg("a@x", &["b@x"], "m"));
    s.insert(msg("a@x", &["b@x"], "m"));
    assert_eq!(ids(&s.messages(&Filter::default(), 0, 10)), [3, 4, 5]);
    assert_eq!(s.count_records(&to("b@x")), 3);
    assert_eq!(s.nth_record(&to("b@x"), 0).unwrap().0.id, 3);
}

#[test]
fn arrivals_hand_over_the_newest() {
    let s = Store::new(100, 1 << 20);
    assert_eq!(s.position(), (0, 0));
    for _ in 0..5 {
        s.insert(msg("a@x", &["b@x"], "m"));
    }
    let a = s.arrivals(1, 2);
    assert_eq!(
        (ids(&a.messages), a.newer, a.total, a.last_id),
        (vec![4, 5], 4, 5, 5)
    );
    let a = s.arrivals(5, 2);
    assert!(a.messages.is_empty());
    s.clear();
    assert_eq!(s.position(), (5, 1));
}

#[test]
fn a_search_longer_than_one_chunk_pages_like_a_short_one() {
    let s = Store::new(100_000, usize::MAX);
    for i in 1..=10_000u64 {
        let subject = if i % 3 == 0 { "Match" } else { "other" };
        s.insert(msg("a@x", &["b@x"], &format!("{subject} {i}")));
    }
    let q = |newest_first, offset| super::ListQuery {
        q: Some("match".into()),
        newest_first,
        offset,
        limit: 3,
        ..Default::default()
    };
    assert_eq!(page(&s, q(true, 0)), (vec![9999, 9996, 9993], 3333));
    // Across the boundary of the first chunk from the newest end.
    assert_eq!(page(&s, q(true, 1364)), (vec![5907, 5904, 5901], 3333));
    assert_eq!(page(&s, q(false, 0)), (vec![3, 6, 9], 3333));
    assert_eq!(page(&s, q(false, 3332)), (vec![9999], 3333));
    // Evicted and deleted messages are simply not there.
    assert!(s.remove(9999));
    assert_eq!(page(&s, q(true, 0)), (vec![9996, 9993, 9990], 3332));
}
