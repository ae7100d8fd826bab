//! The original server's text routes, checked byte for byte over real HTTP.

mod http_util;

use http_util::Api;

const ONE: &str = "Subject: one\r\nMessage-ID: <1@x>\r\n\r\nfirst\r\n";
const TWO: &str = "Subject: two\r\n\r\nsecond\r\n";

#[tokio::test]
async fn count_counts_records_per_recipient_with_exact_filters() {
    let api = Api::start().await;
    let r = api.get("/count").await;
    assert_eq!((r.status, r.text().as_str()), (200, "0\n"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));

    api.insert("from@x", &["a@x", "b@x"], ONE);
    api.insert("other@x", &["b@x"], TWO);
    let count = |q: &'static str| {
        let api = &api;
        async move { api.get(q).await.text() }
    };
    assert_eq!(count("/count").await, "3\n");
    assert_eq!(count("/count?to=b@x").await, "2\n");
    assert_eq!(count("/count?to=b%40x").await, "2\n", "percent-decoded");
    assert_eq!(count("/count?to=B@x").await, "0\n", "exact match");
    assert_eq!(count("/count?from=from@x").await, "2\n");
    assert_eq!(count("/count?to=b@x&from=other@x").await, "1\n");
    assert_eq!(
        count("/count?to=").await,
        "3\n",
        "an empty filter matches all"
    );
    assert_eq!(count("/count?to=nobody@x").await, "0\n");
    // The Go mux accepted any method here.
    assert_eq!(api.request("POST", "/count", b"").await.text(), "3\n");
}

#[tokio::test]
async fn mail_returns_the_nth_record_byte_for_byte() {
    let api = Api::start().await;
    api.insert("from@x", &["a@x", "b@x"], ONE);
    api.insert("other@x", &["b@x"], TWO);

    let r = api.get("/mail/0").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        r.body,
        format!("FROM from@x\nTO a@x\n\n{ONE}.\r\n\n").as_bytes()
    );
    assert_eq!(
        api.get("/mail/1").await.text(),
        format!("FROM from@x\nTO b@x\n\n{ONE}.\r\n\n")
    );
    assert_eq!(
        api.get("/mail/2").await.text(),
        format!("FROM other@x\nTO b@x\n\n{TWO}.\r\n\n")
    );
    assert_eq!(
        api.get("/mail/1?to=b@x").await.text(),
        format!("FROM other@x\nTO b@x\n\n{TWO}.\r\n\n")
    );
    assert_eq!(
        api.get("/mail/0?from=other@x").await.text(),
        format!("FROM other@x\nTO b@x\n\n{TWO}.\r\n\n")
    );
    assert_eq!(
        api.get("/mail/0?to=b@x&from=other@x").await.text(),
        format!("FROM other@x\nTO b@x\n\n{TWO}.\r\n\n")
    );
    // Go trimmed slashes and took a sign.
    assert_eq!(api.get("/mail/2/").await.status, 200);
    assert_eq!(api.get("/mail/+1").await.status, 200);
}

#[tokio::test]
async fn mail_errors_have_empty_bodies() {
    let api = Api::start().await;
    api.insert("from@x", &["a@x"], ONE);
    for (target, status) in [
        ("/mail/1", 404),
        ("/mail/0?to=b@x", 404),
        ("/mail/-1", 404),
        ("/mail/abc", 400),
        ("/mail/", 400),
        ("/mail/1/2", 400),
        ("/mail/99999999999999999999999", 400),
        ("/mail/1.5", 400),
    ] {
        let r = api.get(target).await;
        assert_eq!(r.status, status, "{target}");
        assert!(r.body.is_empty(), "{target}: {:?}", r.text());
    }
}

#[tokio::test]
async fn clear_needs_post() {
    let api = Api::start().await;
    api.insert("from@x", &["a@x"], ONE);
    for method in ["GET", "PUT", "DELETE"] {
        let r = api.request(method, "/clear", b"").await;
        assert_eq!(r.status, 405, "{method}");
        assert!(r.body.is_empty());
    }
    assert_eq!(api.get("/count").await.text(), "1\n");
    let r = api.request("POST", "/clear", b"").await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(api.get("/count").await.text(), "0\n");
    assert_eq!(api.get("/mail/0").await.status, 404);
}

#[tokio::test]
async fn binary_message_bytes_are_passed_through() {
    let api = Api::start().await;
    let data = "Subject: caf\u{e9}\r\n\r\n\u{1f600} 8bit body\r\n";
    api.insert("", &["a@x"], data);
    let r = api.get("/mail/0").await;
    assert_eq!(r.body, format!("FROM \nTO a@x\n\n{data}.\r\n\n").as_bytes());
}

#[tokio::test]
async fn unknown_routes_get_the_go_not_found() {
    let api = Api::start().await;
    let r = api.get("/nope").await;
    assert_eq!((r.status, r.text().as_str()), (404, "404 page not found\n"));
    let r = api.get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
}
