//! `/api/v1/faults`, `/events`, `/reset`, `/stats`, `/metrics`, `/healthz` over real HTTP.

mod http_util;

use http_util::Api;
use mail_test_srv::fault::{FaultContext, Stage};
use mail_test_srv::stats::Stats;
use serde_json::json;

const NONE: FaultContext<'static> = FaultContext {
    from: None,
    to: &[],
};

#[tokio::test]
async fn faults_get_put_delete() {
    let api = Api::start().await;
    assert_eq!(
        api.get_json("/api/v1/faults", 200).await,
        json!({"seed": 42, "rules": []})
    );

    let body = br#"{"rules": ["mail:close:35%", {"stage":"rcpt","action":{"reply":550},"to":"bad@example.com"}]}"#;
    let r = api.request("PUT", "/api/v1/faults", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Each rule comes back named (`STAGE-ACTION-N` when it was given no name).
    let want = json!({"seed": 42, "rules": [
        {"name": "mail-close-1", "stage": "mail", "action": "close", "chance": 35},
        {"name": "rcpt-reply-1", "stage": "rcpt", "action": {"reply": 550}, "to": "bad@example.com"},
    ]});
    assert_eq!(r.json(), want);
    assert_eq!(api.get_json("/api/v1/faults", 200).await, want);

    // GET's output goes back through PUT unchanged; a new seed is taken.
    let mut again = want.clone();
    again["seed"] = json!(7);
    let r = api
        .request("PUT", "/api/v1/faults", again.to_string().as_bytes())
        .await;
    assert_eq!(r.json(), again);
    assert_eq!(api.state.faults().seed(), 7);

    let r = api.request("DELETE", "/api/v1/faults", b"").await;
    assert_eq!(r.json(), json!({"seed": 7, "rules": []}));
}

#[tokio::test]
async fn bad_fault_plans_are_400_and_change_nothing() {
    let api = Api::start().await;
    api.request("PUT", "/api/v1/faults", br#"{"rules":["quit:hang"]}"#)
        .await;
    for (body, want) in [
        (&b"{not json"[..], "bad fault plan"),
        (
            br#"{"rules":["mial:close"]}"#,
            r#"unknown stage \"mial\" (expected one of connect"#,
        ),
        (
            br#"{"rules":["mail:accept-close"]}"#,
            "only valid at stage data-end",
        ),
        (
            br#"{"rules":[{"stage":"mail","action":"close","chance":101}]}"#,
            "chance 101 out of range",
        ),
        (br#"{"rules":[], "sead": 3}"#, "unknown field `sead`"),
        (br#"{"seed": 3}"#, "missing field `rules`"),
        (br#"{"rules":[], "seed": -1}"#, "bad fault plan"),
        (b"", "bad fault plan"),
    ] {
        api.request("PUT", "/api/v1/faults", body)
            .await
            .assert_error(400, &want.replace("\\\"", "\""));
    }
    assert_eq!(
        api.get_json("/api/v1/faults", 200).await,
        json!({"seed": 42, "rules": [{"name": "quit-hang-1", "stage": "quit", "action": "hang"}]})
    );
}

#[tokio::test]
async fn events_since_and_reset() {
    let api = Api::start().await;
    api.request(
        "PUT",
        "/api/v1/faults",
        br#"{"rules":["mail:421:first=2","data-end:accept-close"]}"#,
    )
    .await;
    let engine = api.state.faults();
    let mut conn = engine.connection(5);
    assert!(engine.decide(&mut conn, Stage::Mail, &NONE).is_some());
    assert!(engine.decide(&mut conn, Stage::Mail, &NONE).is_some());
    assert!(engine.decide(&mut conn, Stage::Mail, &NONE).is_none());
    assert!(engine.decide(&mut conn, Stage::DataEnd, &NONE).is_some());

    let v = api.get_json("/api/v1/events", 200).await;
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["connection"], 5);
    assert_eq!(events[0]["stage"], "mail");
    assert!(
        events[0].get("rule_index").is_none(),
        "gone: an index changes meaning"
    );
    assert_eq!(events[0]["rule"], "mail-421-1");
    assert_eq!(events[0]["definition"], "mail:421:first=2");
    assert_eq!(events[0]["action"], "421");
    assert_eq!(events[0]["stored"], false);
    assert_eq!(events[2]["stage"], "data-end");
    assert_eq!(events[2]["stored"], true);
    assert_eq!(v["last_seq"], 3);

    let v = api.get_json("/api/v1/events?since=2", 200).await;
    assert_eq!(v["events"].as_array().unwrap().len(), 1);
    assert_eq!(v["events"][0]["seq"], 3);

    // Reset: messages, events and trigger counters; first=2 fires again.
    api.insert("a@x", &["b@x"], "x\r\n");
    let r = api.request("POST", "/api/v1/reset", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(api.get("/count").await.text(), "0\n");
    assert_eq!(
        api.get_json("/api/v1/events", 200).await["events"],
        json!([])
    );
    assert_eq!(engine.reached(Stage::Mail), 0);
    let mut conn = engine.connection(6);
    assert!(engine.decide(&mut conn, Stage::Mail, &NONE).is_some());
    let v = api.get_json("/api/v1/events?since=3", 200).await;
    assert_eq!(
        v["events"][0]["seq"], 4,
        "sequence numbers are never reused"
    );
}

#[tokio::test]
async fn stats_and_metrics_report_the_same_counters() {
    let api = Api::start().await;
    let stats = api.state.stats();
    for _ in 0..3 {
        Stats::bump(&stats.connections_total);
    }
    Stats::bump(&stats.connections_open);
    Stats::bump(&stats.commands);
    Stats::bump(&stats.messages);
    api.insert("a@x", &["b@x"], "12345");
    api.request(
        "PUT",
        "/api/v1/faults",
        br#"{"rules":["mail:close","rcpt:reply=550"]}"#,
    )
    .await;
    let engine = api.state.faults();
    let mut conn = engine.connection(1);
    engine.decide(&mut conn, Stage::Mail, &NONE);
    engine.decide(&mut conn, Stage::Mail, &NONE);
    engine.decide(&mut conn, Stage::Rcpt, &NONE);

    let v = api.get_json("/api/v1/stats", 200).await;
    assert_eq!(
        v["connections"],
        json!({"total": 3, "open": 1, "refused": 0})
    );
    assert_eq!(v["commands"], 1);
    assert_eq!(v["messages"], 1);
    // What the record holds in memory, envelope and index included, not only its 5 bytes.
    assert_eq!(v["stored"]["messages"], 1);
    let bytes = v["stored"]["bytes"].as_u64().unwrap();
    assert!(bytes > 5 && bytes < 2000, "{bytes}");
    assert_eq!(v["evictions"], 0);
    assert_eq!(v["seed"], 42);
    assert_eq!(v["faults"]["total"], 3);
    assert_eq!(v["faults"]["by_stage"]["mail"], 2);
    assert_eq!(v["faults"]["by_stage"]["rcpt"], 1);
    assert_eq!(v["faults"]["by_stage"]["quit"], 0);
    assert_eq!(v["faults"]["by_action"]["close"], 2);
    assert_eq!(v["faults"]["by_action"]["reply"], 1);

    let r = api.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    // The gauge and the JSON report the same stored bytes.
    assert!(
        text.lines()
            .any(|l| l == format!("mail_test_srv_stored_bytes {bytes}")),
        "{text}"
    );
    for line in [
        "# HELP mail_test_srv_connections_total SMTP connections accepted.",
        "# TYPE mail_test_srv_connections_total counter",
        "mail_test_srv_connections_total 3",
        "# TYPE mail_test_srv_connections_open gauge",
        "mail_test_srv_connections_open 1",
        "mail_test_srv_seed 42",
        "# TYPE mail_test_srv_faults_injected_total counter",
        "mail_test_srv_faults_injected_total{stage=\"mail\",action=\"close\"} 2",
        "mail_test_srv_faults_injected_total{stage=\"rcpt\",action=\"reply\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Every sample line belongs to a metric declared with HELP and TYPE.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        assert!(text.contains(&format!("# HELP {name} ")), "{line}");
    }
    assert_eq!(api.get("/api/v1/metrics").await.text(), text);
}

#[tokio::test]
async fn healthz_both_places() {
    let api = Api::start().await;
    for target in ["/healthz", "/api/v1/healthz"] {
        let r = api.get(target).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    }
}

#[tokio::test]
async fn two_instances_share_nothing() {
    let (a, b) = (Api::start().await, Api::start().await);
    a.insert("a@x", &["b@x"], "x\r\n");
    a.request("PUT", "/api/v1/faults", br#"{"rules":["quit:hang"]}"#)
        .await;
    assert_eq!(b.get("/count").await.text(), "0\n");
    assert_eq!(b.get_json("/api/v1/faults", 200).await["rules"], json!([]));
}
