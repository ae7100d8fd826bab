//! Faults of round two as raw dialogues: greylisting, time windows, rate triggers and named
//! rules (the outage, TLS and reply-shape faults have files of their own).

mod common;

use std::time::Duration;

use common::{Client, start, start_with_faults, stored};
use mail_test_srv::Config;

#[tokio::test]
async fn greylisting_refuses_a_new_triple_until_its_window_has_passed() {
    let server = start_with_faults(&["rcpt:greylist=1s"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    let reply = c.expect("RCPT TO:<b@example.com>", 451).await;
    assert!(reply.text().starts_with("4.7.1"), "{reply:?}");
    // Still inside the window: refused again, and another recipient is a new triple.
    c.expect("RCPT TO:<b@example.com>", 451).await;
    c.expect("RSET", 250).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = c
        .send_mail(
            "a@example.com",
            &["b@example.com"],
            "Subject: late\r\n\r\nok\r\n",
        )
        .await;
    assert_eq!(reply.code, 250);
    assert_eq!(stored(&server).len(), 1);
    let events = server.state().faults().events().since(0).events;
    assert_eq!(
        events.len(),
        2,
        "one event per refusal, none once accepted: {events:?}"
    );
    assert!(events.iter().all(|e| e.action == "greylist=1s"));
    // A reset forgets the triples.
    server.state().faults().reset();
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 451).await;
}

#[tokio::test]
async fn greylisting_keys_on_the_sender_too() {
    let server = start(Config {
        faults: vec![common::rule("rcpt:greylist=1h:to=b@example.com")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 451).await;
    c.expect("RCPT TO:<other@example.com>", 250).await;
}

mod http_util;

fn api(server: &mail_test_srv::ServerHandle) -> http_util::Api {
    http_util::Api {
        addr: server.http_addr(),
        state: server.state().clone(),
    }
}

#[tokio::test]
async fn named_rules_over_http_one_at_a_time() {
    let server = start_with_faults(&["slow=ehlo:delay=1ms"]).await;
    let api = api(&server);
    let rule = api.get_json("/api/v1/faults/slow", 200).await;
    assert_eq!(rule["name"], "slow");
    assert_eq!(rule["action"], serde_json::json!({"delay": "1ms"}));
    api.get("/api/v1/faults/nope")
        .await
        .assert_error(404, "no fault rule named");

    // Created (201) at the end, in either form; replaced (200) in place.
    let r = api
        .request(
            "PUT",
            "/api/v1/faults/deny",
            br#""rcpt:reply=550:to=bad@example.com""#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api
        .request(
            "PUT",
            "/api/v1/faults/deny",
            br#"{"stage":"rcpt","action":{"reply":551},"to":"bad@example.com"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = api.get_json("/api/v1/faults", 200).await;
    assert_eq!(plan["rules"][1]["name"], "deny");
    assert_eq!(
        plan["rules"][1]["action"],
        serde_json::json!({"reply": 551})
    );

    // The rule works, and its event carries its name.
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
    c.expect("RCPT TO:<bad@example.com>", 551).await;
    let events = api.get_json("/api/v1/events", 200).await;
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["rule"], "deny");
    assert_eq!(last["definition"], "rcpt:reply=551:to=bad@example.com");

    // Switched off: kept, no longer fires.
    let r = api
        .request("PATCH", "/api/v1/faults/deny", br#"{"enabled": false}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["enabled"], false);
    c.expect("RCPT TO:<bad@example.com>", 250).await;
    api.request("PATCH", "/api/v1/faults/deny", br#"{"enabled": "no"}"#)
        .await
        .assert_error(400, "bad patch");

    // Deleted: 204, then 404; the other rule stays.
    let r = api.request("DELETE", "/api/v1/faults/deny", b"").await;
    assert_eq!(r.status, 204);
    api.request("DELETE", "/api/v1/faults/deny", b"")
        .await
        .assert_error(404, "no fault rule named");
    let plan = api.get_json("/api/v1/faults", 200).await;
    assert_eq!(plan["rules"].as_array().unwrap().len(), 1);

    // Bad input: a bad name, a rule named otherwise, two rules with one name.
    api.request("PUT", "/api/v1/faults/bad%20name", br#""mail:close""#)
        .await
        .assert_error(400, "bad rule name");
    api.request("PUT", "/api/v1/faults/a", br#""b=mail:close""#)
        .await
        .assert_error(400, "named \"b\"");
    api.request(
        "PUT",
        "/api/v1/faults",
        br#"{"rules": ["x=mail:close", "x=rcpt:close"]}"#,
    )
    .await
    .assert_error(400, "two rules are named");
}

#[tokio::test]
async fn a_window_rule_fails_then_recovers() {
    let server = start_with_faults(&["mail:421:for=300ms"]).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 421).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut c = Client::ehlo(&server).await;
    c.expect("MAIL FROM:<a@example.com>", 250).await;
}

#[tokio::test]
async fn a_rate_limit_answers_past_n_a_second() {
    let server = start_with_faults(&["mail:reply=451:rate=3/s"]).await;
    let mut c = Client::ehlo(&server).await;
    let codes: Vec<u16> = {
        let mut codes = Vec::new();
        for _ in 0..5 {
            codes.push(c.cmd("MAIL FROM:<a@example.com>").await.code);
            c.expect("RSET", 250).await;
        }
        codes
    };
    assert_eq!(codes, [250, 250, 250, 451, 451]);
}

#[tokio::test]
async fn conns_refuses_past_n_open_sessions() {
    let server = start_with_faults(&["connect:421:conns=2"]).await;
    let _a = Client::connect(&server).await;
    let _b = Client::connect(&server).await;
    let mut third = Client::connect_raw(&server).await;
    let reply = third.reply().await.unwrap();
    assert_eq!(reply.code, 421, "{reply:?}");
}
