//! The JSON API under `/api/v1`: messages, raw, delete, wait, and its error handling.

mod http_util;

use std::time::Duration;

use http_util::Api;

const MIME: &str = "From: Alice <a@x>\r\nTo: b@x\r\nSubject: =?UTF-8?Q?caf=C3=A9?= report\r\n\
Message-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
Hello =E2=82=AC world\r\n";

#[tokio::test]
async fn list_shows_summaries_in_arrival_order() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x", "c@x"], MIME);
    api.insert("d@x", &["c@x"], "Subject: second\r\n\r\nx\r\n");
    let v = api.get_json("/api/v1/messages", 200).await;
    assert_eq!(v["count"], 2);
    let first = &v["messages"][0];
    assert_eq!(first["id"], 1);
    assert_eq!(first["from"], "a@x");
    assert_eq!(first["recipients"], serde_json::json!(["b@x", "c@x"]));
    assert_eq!(first["subject"], "caf\u{e9} report");
    assert_eq!(first["message_id"], "m1@example.com");
    assert_eq!(first["size"], MIME.len());
    assert_eq!(first["received"], "2023-11-14T22:13:20.000Z");
    assert_eq!(first["tls"], true);
    assert_eq!(first["auth_user"], "user");
    assert_eq!(v["messages"][1]["id"], 2);
    assert_eq!(v["messages"][1]["message_id"], serde_json::Value::Null);
}

#[tokio::test]
async fn list_filters_and_pages() {
    let api = Api::start().await;
    for i in 0..6 {
        let to = if i % 2 == 0 { "even@x" } else { "odd@x" };
        api.insert("a@x", &[to], &format!("Subject: Number {i}\r\n\r\nx\r\n"));
    }
    let ids = |v: serde_json::Value| -> Vec<u64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(api.get_json("/api/v1/messages?to=even@x", 200).await),
        [1, 3, 5]
    );
    assert_eq!(
        ids(api
            .get_json("/api/v1/messages?to=even@x&limit=1&offset=1", 200)
            .await),
        [3]
    );
    assert_eq!(
        ids(api
            .get_json("/api/v1/messages?subject=number%203", 200)
            .await),
        [4]
    );
    assert_eq!(
        ids(api.get_json("/api/v1/messages?from=a@x&limit=2", 200).await),
        [1, 2]
    );
    assert!(ids(api.get_json("/api/v1/messages?from=zz@x", 200).await).is_empty());
    assert!(ids(api.get_json("/api/v1/messages?offset=100", 200).await).is_empty());
}

#[tokio::test]
async fn bad_query_values_are_400() {
    let api = Api::start().await;
    for (target, want) in [
        ("/api/v1/messages?limit=ten", "bad limit \"ten\""),
        ("/api/v1/messages?limit=-1", "bad limit"),
        (
            "/api/v1/messages?limit=99999999999999999999999",
            "bad limit",
        ),
        ("/api/v1/messages?limit=1000000", "limit 1000000 too large"),
        ("/api/v1/messages?offset=x", "bad offset"),
        ("/api/v1/wait?count=x", "bad count"),
        ("/api/v1/wait?count=0", "count must be at least 1"),
        ("/api/v1/wait?timeout=forever", "bad timeout"),
        ("/api/v1/wait?timeout=1h", "too long"),
        ("/api/v1/events?since=x", "bad since"),
    ] {
        api.get(target).await.assert_error(400, want);
    }
    // Still serving.
    assert_eq!(api.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn one_message_is_fully_parsed() {
    let api = Api::start().await;
    let id = api.insert("a@x", &["b@x"], MIME);
    let v = api.get_json(&format!("/api/v1/messages/{id}"), 200).await;
    assert_eq!(v["id"], id);
    assert_eq!(v["subject"], "caf\u{e9} report");
    assert_eq!(v["text"], "Hello \u{20ac} world\r\n");
    assert_eq!(v["html"], serde_json::Value::Null);
    let headers = v["headers"].as_array().unwrap();
    assert_eq!(
        headers[0],
        serde_json::json!({"name": "From", "value": "Alice <a@x>"})
    );
    assert!(
        headers
            .iter()
            .any(|h| h["name"] == "Content-Transfer-Encoding" && h["value"] == "quoted-printable")
    );
}

#[tokio::test]
async fn raw_returns_the_bytes() {
    let api = Api::start().await;
    let id = api.insert("a@x", &["b@x"], MIME);
    let r = api.get(&format!("/api/v1/messages/{id}/raw")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("message/rfc822"));
    assert_eq!(r.body, MIME.as_bytes());
}

#[tokio::test]
async fn bad_or_missing_ids() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], MIME);
    api.get("/api/v1/messages/2")
        .await
        .assert_error(404, "no message 2");
    api.get("/api/v1/messages/0/raw")
        .await
        .assert_error(404, "no message 0");
    api.get("/api/v1/messages/abc")
        .await
        .assert_error(400, "bad message id \"abc\"");
    api.get("/api/v1/messages/-1/raw")
        .await
        .assert_error(400, "bad message id");
    api.get("/api/v1/messages/99999999999999999999999")
        .await
        .assert_error(400, "bad message id");
}

#[tokio::test]
async fn delete_clears() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], MIME);
    api.insert("a@x", &["b@x"], MIME);
    let r = api.request("DELETE", "/api/v1/messages", b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["deleted"], 2);
    assert_eq!(api.get_json("/api/v1/messages", 200).await["count"], 0);
    assert_eq!(api.get("/count").await.text(), "0\n");
}

#[tokio::test]
async fn unknown_api_routes_and_methods_are_json_errors() {
    let api = Api::start().await;
    api.get("/api/v1/nope").await.assert_error(404, "no route");
    api.get("/api/v1/messages/1/nope")
        .await
        .assert_error(404, "no route");
    api.request("POST", "/api/v1/messages", b"")
        .await
        .assert_error(405, "not allowed");
    api.request("GET", "/api/v1/reset", b"")
        .await
        .assert_error(405, "not allowed");
}

#[tokio::test]
async fn wait_returns_when_enough_messages_arrive() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], MIME);
    let waiter = {
        let addr = api.addr;
        let state = api.state.clone();
        tokio::spawn(async move {
            let api = Api { addr, state };
            api.get("/api/v1/wait?to=b@x&count=2&timeout=60s").await
        })
    };
    // Whether this lands before or after the request is served, the answer is the same;
    // that the wait really sleeps until an insert is shown in the store's unit tests.
    api.insert("a@x", &["other@x"], MIME);
    api.insert("a@x", &["b@x"], MIME);
    let r = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("wait answers")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["count"], 2);
    assert_eq!(v["messages"][0]["id"], 1);
    assert_eq!(v["messages"][1]["id"], 3);

    // Already satisfied: answers at once.
    let v = api.get_json("/api/v1/wait?from=a@x&count=3", 200).await;
    assert_eq!(v["count"], 3);
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_with_408_and_the_count() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], MIME);
    let start = tokio::time::Instant::now();
    let r = api.get("/api/v1/wait?to=b@x&count=3&timeout=90s").await;
    assert_eq!(r.status, 408, "{}", r.text());
    let v = r.json();
    assert_eq!(v["count"], 1);
    assert_eq!(v["expected"], 3);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1m 30s")
    );
    assert!(start.elapsed() >= Duration::from_secs(90));
}

#[tokio::test]
async fn garbage_requests_do_not_stop_the_server() {
    let api = Api::start().await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(api.addr).await.unwrap();
    s.write_all(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    api.get("/api/v1/messages?to=%ZZ").await;
    assert_eq!(api.get("/healthz").await.text(), "ok\n");
}
