//! The HTTP port against a browser and a careless or hostile client (issue 11, "Server:
//! HTTP"): connection cap, header and idle timeouts, DNS rebinding (`Host`), CSRF
//! (`Origin`, `Sec-Fetch-Site`, JSON content type), `nosniff`, and the paged event log.
//! The original routes keep answering a plain `curl 127.0.0.1:PORT/count` byte for byte.

mod common;
mod http_util;

use std::time::{Duration, Instant};

use http_util::Api;
use mail_test_srv::fault::{FaultContext, Stage};
use mail_test_srv::{Config, HttpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIME: &str = "Subject: hello\r\n\r\nbody\r\n";

fn with_http(http: HttpConfig) -> Config {
    Config {
        http,
        ..Config::ephemeral()
    }
}

/// Reads until the server closes (EOF or reset); `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| seen)
}

#[tokio::test]
async fn silent_and_trickling_connections_are_closed_by_the_header_timeout() {
    // Through `start`, the server's real wiring of the HTTP listener.
    let server = common::start(with_http(HttpConfig {
        header_timeout: Duration::from_secs(1),
        ..HttpConfig::default()
    }))
    .await;
    let addr = server.http_addr();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let trickler = tokio::spawn(async move {
        // One byte every 100 ms: never a whole header, always "active".
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if trickle.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    for (i, conn) in silent.iter_mut().enumerate() {
        assert!(
            closed_within(conn, Duration::from_secs(5)).await.is_some(),
            "silent connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    assert!(
        trickler.await.unwrap(),
        "a header trickled byte by byte was never cut off"
    );
    // A keep-alive connection that finished its request is closed the same way.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answered = closed_within(&mut kept, Duration::from_secs(5)).await;
    assert!(
        answered.is_some_and(|r| r.starts_with(b"HTTP/1.1 200")),
        "idle keep-alive"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_stalled_body_is_closed_by_the_idle_timeout_but_a_long_poll_is_not() {
    let api = Api::with_config(with_http(HttpConfig {
        idle_timeout: Duration::from_secs(1),
        ..HttpConfig::default()
    }))
    .await;
    let mut stalled = TcpStream::connect(api.addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/faults HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"rules\"",
        api.addr
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(5))
            .await
            .is_some(),
        "a request whose body stopped arriving holds its connection"
    );

    // A 3 s long poll on a connection silent for longer than the idle timeout: answered.
    let started = Instant::now();
    let r = api.get("/api/v1/wait?subject=never&timeout=3s").await;
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn connections_past_the_cap_are_answered_503_and_closed_at_once() {
    let api = Api::with_config(with_http(HttpConfig {
        max_connections: 5,
        ..HttpConfig::default()
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(TcpStream::connect(api.addr).await.unwrap());
    }
    // Let the server accept (and count) all five.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        let mut extra = TcpStream::connect(api.addr).await.unwrap();
        let seen = closed_within(&mut extra, Duration::from_secs(2))
            .await
            .unwrap_or_else(|| panic!("connection {i} over the cap left open"));
        let text = String::from_utf8_lossy(&seen);
        assert!(
            seen.is_empty() || text.starts_with("HTTP/1.1 503"),
            "{text}"
        );
        assert!(
            seen.is_empty() || text.contains("--http-max-connections"),
            "{text}"
        );
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.get("/healthz").await.status, 200, "slots come back");
    // Every refusal is counted, in the stats and the metrics.
    let stats = api.get_json("/api/v1/stats", 200).await;
    assert_eq!(stats["limits"]["http_refusals"], 20, "{stats}");
    let metrics = api.get("/metrics").await.text();
    assert!(
        metrics.contains("mail_test_srv_http_refusals_total 20\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn only_hosts_naming_this_server_are_served() {
    let mut config = Config::ephemeral();
    config.http.allowed_hosts = vec!["mail.test".into(), "box.test:8080".into()];
    let api = Api::with_config(config).await;
    api.insert("a@x", &["b@x", "c@x", "d@x"], MIME);
    let port = api.addr.port();
    let get = |host: String, target: &'static str| {
        let api = &api;
        async move {
            let headers = if host.is_empty() {
                String::new()
            } else {
                format!("Host: {host}\r\n")
            };
            api.request_with("GET", target, &headers, b"").await
        }
    };
    for target in [
        "/api/v1/messages",
        "/count",
        "/mail/0",
        "/clear",
        "/healthz",
        "/nowhere",
    ] {
        for host in [
            "attacker.example".to_owned(),
            format!("attacker.example:{port}"),
            format!("localhost.attacker.example:{port}"),
            "127.0.0.1:1".to_owned(),
            "box.test:9999".to_owned(),
        ] {
            let r = get(host.clone(), target).await;
            assert_eq!(r.status, 403, "{host} {target}: {}", r.text());
            assert!(r.text().contains("DNS rebinding"), "{}", r.text());
            assert!(r.text().contains("--http-allowed-host"), "{}", r.text());
        }
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_owned(),
        "mail.test:1234".to_owned(),
        "box.test:8080".to_owned(),
        // HTTP/1.0 tools may send none; a browser always does.
        String::new(),
    ] {
        let r = get(host.clone(), "/count").await;
        assert_eq!((r.status, r.text()), (200, "3\n".to_owned()), "{host}");
    }
}

/// What `curl 127.0.0.1:PORT/count` sends, and the exact bytes it gets back.
#[tokio::test]
async fn plain_curl_on_the_original_routes_is_unchanged() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], MIME);
    let mut tcp = TcpStream::connect(api.addr).await.unwrap();
    let request = format!(
        "GET /count HTTP/1.1\r\nHost: {}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
        api.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = vec![0u8; 4096];
    let n = tcp.read(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw[..n]).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("content-type: text/plain; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(head.contains("content-length: 2\r\n"), "{head}");
    assert_eq!(body, "1\n");

    let r = api
        .request_with(
            "POST",
            "/clear",
            &format!("Host: {}\r\nUser-Agent: curl/8.5.0\r\n", api.addr),
            b"",
        )
        .await;
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert!(api.state.store().is_empty());
}

#[tokio::test]
async fn cross_site_writes_are_refused() {
    let api = Api::start().await;
    let host = format!("Host: {}\r\n", api.addr);
    let seed = |api: &Api| api.insert("a@x", &["b@x"], MIME);
    seed(&api);
    // A form a web page posts to the reset route, with and without the browser's headers.
    for (extra, status, want) in [
        ("Origin: http://attacker.example\r\n", 403, "CSRF"),
        ("Origin: null\r\n", 403, "CSRF"),
        ("Origin: http://localhost:9\r\n", 403, "not this server"),
        ("Sec-Fetch-Site: cross-site\r\n", 403, "cross-site"),
        (
            "Content-Type: application/x-www-form-urlencoded\r\n",
            415,
            "application/json",
        ),
        ("Content-Type: text/plain\r\n", 415, "application/json"),
        (
            "Content-Type: multipart/form-data; boundary=x\r\n",
            415,
            "application/json",
        ),
    ] {
        for (method, target) in [
            ("POST", "/api/v1/reset"),
            ("DELETE", "/api/v1/messages"),
            ("PUT", "/api/v1/faults"),
            ("PATCH", "/api/v1/settings"),
        ] {
            let r = api
                .request_with(method, target, &format!("{host}{extra}"), b"x=1")
                .await;
            r.assert_error(status, want);
            assert_eq!(api.state.store().len(), 1, "{method} {target} {extra}");
        }
    }
    // A body without any content type (a fetch of a Blob) is refused as well.
    api.request_with(
        "PUT",
        "/api/v1/faults",
        &host,
        br#"{"rules":["mail:close"]}"#,
    )
    .await
    .assert_error(415, "application/json");
    assert!(api.state.faults().snapshot().rules.is_empty());
    // The original route: the Origin check applies, no content type is asked for.
    let r = api
        .request_with(
            "POST",
            "/clear",
            &format!("{host}Origin: http://attacker.example\r\n"),
            b"",
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("CSRF"), "{}", r.text());
    assert_eq!(api.state.store().len(), 1);

    // Same-origin pages, and tools that send no Origin (curl -X POST), go through.
    let same = format!(
        "{host}Origin: http://{}\r\nSec-Fetch-Site: same-origin\r\n",
        api.addr
    );
    let r = api.request_with("POST", "/api/v1/reset", &same, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(api.state.store().is_empty());
    seed(&api);
    let r = api
        .request_with("DELETE", "/api/v1/messages", &host, b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api
        .request_with(
            "PUT",
            "/api/v1/faults",
            &format!("{host}Content-Type: application/json; charset=utf-8\r\n"),
            br#"{"rules":["mail:close"]}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Reads are not state-changing: a foreign Origin on a GET is no reason to refuse
    // (the browser keeps the answer from the page without CORS headers).
    let r = api
        .request_with(
            "GET",
            "/count",
            &format!("{host}Origin: http://attacker.example\r\n"),
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let api = Api::start().await;
    let id = api.insert(
        "a@x",
        &["b@x"],
        "Subject: <script>\r\n\r\n<html><script>alert(1)</script>\r\n",
    );
    let host = format!("Host: {}\r\n", api.addr);
    for (method, target, headers, status) in [
        ("GET", "/count".to_owned(), host.clone(), 200),
        ("GET", "/mail/0".to_owned(), host.clone(), 200),
        ("GET", "/mail/9".to_owned(), host.clone(), 404),
        ("GET", "/clear".to_owned(), host.clone(), 405),
        ("GET", "/nowhere".to_owned(), host.clone(), 404),
        ("GET", "/api/v1/messages".to_owned(), host.clone(), 200),
        (
            "GET",
            format!("/api/v1/messages/{id}/raw"),
            host.clone(),
            200,
        ),
        ("GET", "/api/v1/nowhere".to_owned(), host.clone(), 404),
        ("GET", "/metrics".to_owned(), host.clone(), 200),
        ("GET", "/healthz".to_owned(), host.clone(), 200),
        (
            "GET",
            "/count".to_owned(),
            "Host: evil.test\r\n".to_owned(),
            403,
        ),
    ] {
        let r = api.request_with(method, &target, &headers, b"").await;
        assert_eq!(r.status, status, "{target}: {}", r.text());
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
    }
    let raw = api.get(&format!("/api/v1/messages/{id}/raw")).await;
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    let record = api.get("/mail/0").await;
    assert_eq!(
        record.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn events_come_in_pages_and_keep_their_rule_text() {
    let api = Api::start().await;
    let long = format!("mail:close:from={}@example.com", "x".repeat(4000));
    api.state
        .faults()
        .replace(vec![common::rule(&long)], None)
        .unwrap();
    let from = format!("{}@example.com", "x".repeat(4000));
    let ctx = FaultContext {
        from: Some(&from),
        to: &[],
    };
    let mut conn = api.state.faults().connection(1);
    for _ in 0..2_500 {
        api.state
            .faults()
            .decide(&mut conn, Stage::Mail, &ctx)
            .unwrap();
    }
    // The rule is held once, not 2,500 times (10 MB).
    assert!(
        api.state.faults().events().bytes() < 1 << 20,
        "{} bytes",
        api.state.faults().events().bytes()
    );

    let first = api.get_json("/api/v1/events?since=0", 200).await;
    let events = first["events"].as_array().unwrap();
    assert_eq!(events.len(), 1_000, "the default page");
    assert_eq!(first["more"], true);
    assert_eq!(first["next_since"], 1_000);
    assert_eq!(first["last_seq"], 2_500);
    let e = &events[0];
    assert_eq!(e["seq"], 1);
    assert_eq!(e["definition"], long.as_str());
    assert_eq!(e["rule"], "mail-close-1");
    assert_eq!(e["action"], "close");
    assert_eq!(e["stage"], "mail");
    assert_eq!(e["connection"], 1);
    assert_eq!(e["stored"], false);
    assert!(e["time"].as_str().unwrap().ends_with('Z'));

    // Following `next_since` reads each event exactly once.
    let mut since = 0;
    let mut seen = 0;
    loop {
        let page = api
            .get_json(&format!("/api/v1/events?since={since}&limit=700"), 200)
            .await;
        seen += page["events"].as_array().unwrap().len();
        since = page["next_since"].as_u64().unwrap();
        if page["more"] == false {
            break;
        }
    }
    assert_eq!((seen, since), (2_500, 2_500));
    let done = api.get_json("/api/v1/events?since=2500", 200).await;
    assert_eq!(done["events"].as_array().unwrap().len(), 0);
    assert_eq!(
        (done["more"].clone(), done["next_since"].clone()),
        (false.into(), 2_500.into())
    );

    for bad in ["limit=0", "limit=10001", "limit=x"] {
        api.get(&format!("/api/v1/events?{bad}"))
            .await
            .assert_error(400, "limit");
    }
}

#[tokio::test]
async fn the_event_log_is_bounded_by_bytes() {
    let api = Api::with_config(Config {
        max_event_bytes: 64 * 1024,
        ..Config::ephemeral()
    })
    .await;
    api.state
        .faults()
        .replace(vec![common::rule("mail:close")], None)
        .unwrap();
    let mut conn = api.state.faults().connection(1);
    for _ in 0..10_000 {
        api.state
            .faults()
            .decide(&mut conn, Stage::Mail, &FaultContext::default());
    }
    let log = api.state.faults().events();
    assert!(log.bytes() <= 64 * 1024, "{}", log.bytes());
    assert!(log.dropped() > 0 && log.len() as u64 + log.dropped() == 10_000);
    let page = api.get_json("/api/v1/events?since=0&limit=1", 200).await;
    assert_eq!(page["dropped"], log.dropped());
    assert_eq!(page["events"][0]["seq"], log.dropped() + 1);
}

#[tokio::test]
async fn waiters_get_exactly_the_messages_that_match_them() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], "Subject: Report 1\r\n\r\n.\r\n");
    let store = api.state.store().clone();
    let mut waits = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        waits.push(tokio::spawn(async move {
            let filter = mail_test_srv::store::Filter {
                subject: Some(if i % 2 == 0 {
                    "REPORT".into()
                } else {
                    "never".into()
                }),
                to: Some("b@x".into()),
                from: None,
            };
            store
                .wait(
                    &filter,
                    3,
                    Duration::from_secs(if i % 2 == 0 { 20 } else { 1 }),
                )
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.insert("a@x", &["c@x"], "Subject: report 2\r\n\r\n.\r\n");
    api.insert("a@x", &["b@x"], "Subject: other\r\n\r\n.\r\n");
    api.insert("a@x", &["b@x", "d@x"], "Subject: a report 4\r\n\r\n.\r\n");
    api.insert("a@x", &["b@x"], "Subject: report 5\r\n\r\n.\r\n");
    api.insert("a@x", &["b@x"], "Subject: report 6\r\n\r\n.\r\n");
    for (i, wait) in waits.into_iter().enumerate() {
        let got = wait.await.unwrap();
        if i % 2 == 0 {
            let ids: Vec<u64> = got.unwrap().iter().map(|m| m.id).collect();
            assert_eq!(ids, [1, 4, 5], "waiter {i}");
        } else {
            assert_eq!(got.unwrap_err(), 0, "waiter {i}");
        }
    }

    // A clear while waiting forgets what was collected, as the mailbox does.
    let filter = mail_test_srv::store::Filter::default();
    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { store.wait(&filter, 10, Duration::from_millis(500)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.clear();
    api.insert("a@x", &["b@x"], MIME);
    assert_eq!(waiting.await.unwrap().unwrap_err(), 1);
}
