//! The server side of the web page: the embedded page and its headers, the event stream
//! (`/api/v1/stream`) against a whole server with real SMTP clients, the per-second series,
//! the list's search and order, a message's parts, HTML, attachments, `.eml` and deletion,
//! and hostile content served safely.

mod common;
mod http_util;

use std::time::Duration;

use common::{Client, start};
use http_util::{Api, Response};
use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mail_test_srv::{Config, HttpConfig, ServerHandle};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
const HTML_CSP: &str =
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:";

/// How long a test waits for an event before failing.
const EVENT_DEADLINE: Duration = Duration::from_secs(5);

fn api_of(server: &ServerHandle) -> Api {
    Api {
        addr: server.http_addr(),
        state: server.state().clone(),
    }
}

async fn send_with_lettre(server: &ServerHandle, subject: &str) {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .build();
    let message = lettre::Message::builder()
        .from("Alice <alice@example.com>".parse().unwrap())
        .to("bob@example.com".parse().unwrap())
        .subject(subject)
        .body(String::from("hello from lettre"))
        .unwrap();
    mailer.send(message).await.expect("lettre sends");
}

/// One server-sent event.
#[derive(Debug)]
struct Event {
    name: String,
    data: Value,
}

/// A client of `GET /api/v1/stream` over a raw socket: de-chunks the body as it comes.
struct Stream {
    tcp: TcpStream,
    raw: Vec<u8>,
    text: String,
    pub status: u16,
    pub head: String,
    ended: bool,
}

impl Stream {
    async fn open(addr: std::net::SocketAddr) -> Stream {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET /api/v1/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let head_end = loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(EVENT_DEADLINE, tcp.read(&mut buf))
                .await
                .expect("response head in time")
                .unwrap();
            assert!(n > 0, "closed before the head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let raw = raw[head_end + 4..].to_vec();
        Stream {
            tcp,
            raw,
            text: String::new(),
            status,
            head: head.to_ascii_lowercase(),
            ended: false,
        }
    }

    /// Moves whole chunks from `raw` to `text`.
    fn dechunk(&mut self) {
        loop {
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&self.raw[..eol]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                self.ended = true;
                return;
            }
            if self.raw.len() < eol + 2 + size + 2 {
                return;
            }
            self.text
                .push_str(std::str::from_utf8(&self.raw[eol + 2..eol + 2 + size]).unwrap());
            self.raw.drain(..eol + 2 + size + 2);
        }
    }

    /// The next event (comments and `retry:` skipped); `None` when the stream ended.
    async fn next(&mut self, deadline: tokio::time::Instant) -> Option<Event> {
        loop {
            self.dechunk();
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).expect("data is JSON"));
                    }
                }
                if let (Some(name), Some(data)) = (name, data) {
                    return Some(Event { name, data });
                }
            }
            if self.ended {
                return None;
            }
            let mut buf = [0u8; 16384];
            let n = tokio::time::timeout_at(deadline, self.tcp.read(&mut buf))
                .await
                .expect("an event before the deadline")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// Reads until an event named `name` for which `check` holds; returns it.
    async fn until(&mut self, name: &str, check: impl Fn(&Value) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
        loop {
            match self.next(deadline).await {
                Some(e) if e.name == name && check(&e.data) => return e,
                Some(_) => {}
                None => panic!("stream ended before event {name}"),
            }
        }
    }
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_headers() {
    let api = Api::start().await;
    let page = api.get("/").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("content-security-policy"), Some(PAGE_CSP));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.text().contains("/ui/app.js"), "{}", page.text());
    let etag = page.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // Revalidation: 304 without a body, same ETag; another tag gets the page again.
    let host = format!("Host: {}\r\n", api.addr);
    let again = api
        .request_with("GET", "/", &format!("{host}If-None-Match: {etag}\r\n"), b"")
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = api
        .request_with(
            "GET",
            "/",
            &format!("{host}If-None-Match: \"nope\"\r\n"),
            b"",
        )
        .await;
    assert_eq!(other.status, 200);

    for (path, kind) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = api.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(kind), "{path}");
        assert_eq!(r.header("content-security-policy"), Some(PAGE_CSP));
        assert!(r.header("etag").is_some_and(|t| t != etag), "{path}");
    }
    let svg = api.get("/ui/favicon.svg").await;
    assert!(svg.text().starts_with("<svg"));

    // Unknown files and routes keep the Go server's answer; the old routes are unchanged.
    for path in ["/ui/nope.js", "/ui/", "/ui/a/b", "/nope", "/index.html"] {
        let r = api.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.text(), "404 page not found\n", "{path}");
    }
    assert_eq!(api.get("/count").await.text(), "0\n");
}

#[tokio::test]
async fn the_stream_says_hello_then_delivers_what_happens() {
    let server = start(Config {
        seed: Some(1),
        ..Config::ephemeral()
    })
    .await;
    let api = api_of(&server);
    let mut stream = Stream::open(server.http_addr()).await;
    assert_eq!(stream.status, 200);
    assert!(
        stream.head.contains("content-type: text/event-stream"),
        "{}",
        stream.head
    );
    assert!(stream.head.contains("cache-control: no-cache"));
    let hello = stream.until("hello", |_| true).await;
    assert_eq!(hello.data["messages"], 0);
    assert_eq!(hello.data["event_seq"], 0);
    assert_eq!(hello.data["stats"]["stored"]["messages"], 0);

    // A message sent with lettre arrives as a list item, as GET /messages shows it.
    let sent = tokio::time::Instant::now();
    send_with_lettre(&server, "live one").await;
    let event = stream.until("messages", |_| true).await;
    let waited = sent.elapsed();
    assert!(waited < Duration::from_secs(2), "took {waited:?}");
    let items = event.data["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(event.data["total"], 1);
    assert!(event.data.get("skipped").is_none());
    let listed = api.get_json("/api/v1/messages", 200).await;
    assert_eq!(items[0], listed["messages"][0], "the same JSON as the list");
    assert_eq!(items[0]["subject"], "live one");

    // Its session, opened and closed.
    stream
        .until("sessions", |d| {
            d["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["open"] == false && s["messages"] == serde_json::json!([1]))
        })
        .await;

    // A rule added through the API: other pages are told to reload the rules.
    let r = api
        .request("PUT", "/api/v1/faults/nope", br#""mail:reply=451""#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    stream.until("rules", |_| true).await;

    // The fault it injects appears as an event like GET /events shows it.
    let mut client = Client::ehlo(&server).await;
    client.expect("MAIL FROM:<a@x>", 451).await;
    let faults = stream.until("faults", |_| true).await;
    let events = api.get_json("/api/v1/events", 200).await;
    assert_eq!(faults.data["items"][0], events["events"][0]);
    assert_eq!(faults.data["items"][0]["rule"], "nope");
    drop(client);

    // Counters once a second, with the second's activity.
    let stats = stream.until("stats", |_| true).await;
    assert!(stats.data["stored"]["messages"].is_number());
    for key in ["t", "messages", "faults", "sessions"] {
        assert!(stats.data["point"][key].is_u64(), "{key}: {}", stats.data);
    }

    // Reset: every page empties its lists.
    let r = api.request("POST", "/api/v1/reset", b"").await;
    assert_eq!(r.status, 200);
    stream.until("reset", |_| true).await;
    // Deleting the rule is a change of the rules too.
    assert_eq!(
        api.request("DELETE", "/api/v1/faults/nope", b"")
            .await
            .status,
        204
    );
    stream.until("rules", |_| true).await;
    // A legacy clear and a DELETE of the list empty the lists as well.
    send_with_lettre(&server, "two").await;
    stream.until("messages", |_| true).await;
    assert_eq!(api.request("POST", "/clear", b"").await.status, 200);
    stream.until("reset", |_| true).await;
    send_with_lettre(&server, "three").await;
    send_with_lettre(&server, "four").await;
    let batch = stream.until("messages", |d| d["total"] == 2).await;
    let last = batch.data["items"].as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();
    // Deleting one message tells every page which one went, at once.
    assert_eq!(
        delete(&api, &format!("/api/v1/messages/{last}"))
            .await
            .status,
        204
    );
    let deleted = stream.until("deleted", |_| true).await;
    assert_eq!(deleted.data, serde_json::json!({"id": last, "total": 1}));
    // A delete of what is not there says nothing on the stream.
    assert_eq!(
        delete(&api, &format!("/api/v1/messages/{last}"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.request("DELETE", "/api/v1/messages", b"").await.status,
        200
    );
    // Up to the clear's reset, no second `deleted` (the 404 deleted nothing).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = stream.next(deadline).await.expect("the reset event");
        assert_ne!(event.name, "deleted", "{:?}", event.data);
        if event.name == "reset" {
            break;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_burst_sends_the_newest_items_and_counts_the_rest() {
    let server = start(Config::ephemeral()).await;
    let mut stream = Stream::open(server.http_addr()).await;
    stream.until("hello", |_| true).await;
    // Stored in one go, faster than a batch: more than one batch may hold them.
    let api = api_of(&server);
    for i in 0..450 {
        api.insert("a@x", &["b@x"], &format!("Subject: burst {i}\r\n\r\nx\r\n"));
    }
    let mut seen = 0;
    let mut skipped = 0;
    let mut last_id = 0;
    while seen + skipped < 450 {
        let e = stream.until("messages", |_| true).await;
        let items = e.data["items"].as_array().unwrap();
        assert!(items.len() <= 200);
        for item in items {
            let id = item["id"].as_u64().unwrap();
            assert!(id > last_id, "oldest first, never twice");
            last_id = id;
        }
        seen += items.len();
        skipped += e.data["skipped"].as_u64().unwrap_or(0) as usize;
    }
    assert_eq!(last_id, 450, "the newest is always sent");
    assert_eq!(seen + skipped, 450);
}

#[tokio::test]
async fn streams_are_capped_and_free_their_place() {
    let server = start(Config::ephemeral()).await;
    let mut open = Vec::new();
    for _ in 0..32 {
        let mut s = Stream::open(server.http_addr()).await;
        assert_eq!(s.status, 200);
        s.until("hello", |_| true).await;
        open.push(s);
    }
    let api = api_of(&server);
    let refused = api.get("/api/v1/stream").await;
    refused.assert_error(503, "too many event streams");
    // The rest of the API still answers.
    assert_eq!(api.get("/api/v1/stats").await.status, 200);
    // A page that goes away gives its place back.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    loop {
        let s = Stream::open(server.http_addr()).await;
        if s.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "place not given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stream_outlives_the_http_timeouts_and_ends_at_shutdown() {
    let server = start(Config {
        http: HttpConfig {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        },
        ..Config::ephemeral()
    })
    .await;
    let mut stream = Stream::open(server.http_addr()).await;
    stream.until("hello", |_| true).await;
    let start = tokio::time::Instant::now();
    // Three stats events: well past both timeouts, the stream is still open.
    for _ in 0..3 {
        stream.until("stats", |_| true).await;
    }
    assert!(start.elapsed() > Duration::from_millis(1500));
    let stopped = tokio::time::Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    while stream.next(deadline).await.is_some() {}
    assert!(stream.ended, "the chunked body ends cleanly");
    tokio::time::timeout(EVENT_DEADLINE, shutdown)
        .await
        .expect("shutdown does not wait for the stream")
        .unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn series_counts_each_second() {
    let server = start(Config::ephemeral()).await;
    let api = api_of(&server);
    for i in 0..3 {
        send_with_lettre(&server, &format!("series {i}")).await;
    }
    // Two samples at least.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let v = api.get_json("/api/v1/stats/series?seconds=10", 200).await;
    assert_eq!(v["interval_ms"], 1000);
    let points = v["points"].as_array().unwrap();
    assert!((2..=10).contains(&points.len()), "{v}");
    let sum = |key: &str| points.iter().map(|p| p[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("messages"), 3);
    assert_eq!(sum("sessions"), 3);
    assert_eq!(sum("faults"), 0);
    let times: Vec<u64> = points.iter().map(|p| p["t"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let one = api.get_json("/api/v1/stats/series?seconds=1", 200).await;
    assert_eq!(one["points"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get_json("/api/v1/stats/series", 200).await["points"],
        v["points"],
        "default 300 s holds them all"
    );
    api.get("/api/v1/stats/series?seconds=601")
        .await
        .assert_error(400, "at most 600");
    api.get("/api/v1/stats/series?seconds=x")
        .await
        .assert_error(400, "seconds");
}

#[tokio::test]
async fn list_newest_first_with_total_and_search() {
    let api = Api::start().await;
    api.insert("alice@x", &["bob@x"], "Subject: Invoice 1\r\n\r\nx\r\n");
    api.insert("carol@x", &["DAVE@x"], "Subject: hello\r\n\r\nx\r\n");
    api.insert(
        "erin@x",
        &["frank@x", "bob@x"],
        "Subject: invoice 2\r\n\r\nx\r\n",
    );
    let ids = |v: &Value| -> Vec<u64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect()
    };
    let v = api
        .get_json("/api/v1/messages?order=newest&limit=2", 200)
        .await;
    assert_eq!(ids(&v), [3, 2]);
    assert_eq!(
        (v["count"].clone(), v["total"].clone()),
        (2.into(), 3.into())
    );
    let v = api
        .get_json("/api/v1/messages?order=newest&limit=2&offset=2", 200)
        .await;
    assert_eq!(ids(&v), [1]);
    assert_eq!(v["total"], 3);
    // The old default stays: oldest first.
    assert_eq!(ids(&api.get_json("/api/v1/messages", 200).await), [1, 2, 3]);
    for (q, want) in [
        ("INVOICE", vec![3, 1]),
        ("bob", vec![3, 1]),
        ("dave@", vec![2]),
        ("carol", vec![2]),
        ("nobody", vec![]),
    ] {
        let v = api
            .get_json(&format!("/api/v1/messages?order=newest&q={q}"), 200)
            .await;
        assert_eq!(ids(&v), want, "q={q}");
        assert_eq!(v["total"], want.len(), "q={q}");
    }
    // q together with the exact filters.
    let v = api
        .get_json("/api/v1/messages?to=bob@x&q=invoice%202", 200)
        .await;
    assert_eq!(ids(&v), [3]);
    api.get("/api/v1/messages?order=sideways")
        .await
        .assert_error(400, "order");
}

/// A message with a text part, an HTML part with a script and a `cid:` image, the image
/// inline, and an attachment whose name tries to escape.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\nnot really a png";

async fn hostile_message(server: &ServerHandle) {
    let html = "<html><body><script>alert(1)</script><p onclick=\"x()\">Hi</p>\
                <img src=\"cid:logo@x\"><img src='CID:missing@x'></body></html>";
    let message = lettre::Message::builder()
        .from("alice@example.com".parse().unwrap())
        .to("bob@example.com".parse().unwrap())
        .subject("parts")
        .multipart(
            MultiPart::mixed()
                .multipart(
                    MultiPart::alternative()
                        .singlepart(SinglePart::plain(String::from("the text part")))
                        .multipart(
                            MultiPart::related()
                                .singlepart(SinglePart::html(String::from(html)))
                                .singlepart(
                                    Attachment::new_inline(String::from("logo@x")).body(
                                        PNG.to_vec(),
                                        ContentType::parse("image/png").unwrap(),
                                    ),
                                ),
                        ),
                )
                .singlepart(
                    Attachment::new(String::from("../../etc/pa\"ss wd\u{e9}.sh")).body(
                        b"#!/bin/sh\n".to_vec(),
                        ContentType::parse("text/x-sh").unwrap(),
                    ),
                ),
        )
        .unwrap();
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.smtp_addr().port())
        .build()
        .send(message)
        .await
        .expect("sent");
}

#[tokio::test]
async fn parts_html_attachments_eml_and_delete() {
    let server = start(Config::ephemeral()).await;
    let api = api_of(&server);
    hostile_message(&server).await;
    let detail = api.get_json("/api/v1/messages/1", 200).await;
    let parts = &detail["parts"];
    assert_eq!(parts["text"].as_str().unwrap().trim(), "the text part");
    assert_eq!(parts["html"], true);
    let attachments = parts["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "{parts}");
    let logo = &attachments[0];
    assert_eq!(logo["index"], 0);
    assert_eq!(logo["content_type"], "image/png");
    assert_eq!(logo["size"], PNG.len());
    assert_eq!(logo["inline"], true);
    assert_eq!(logo["content_id"], "logo@x");
    let file = &attachments[1];
    assert_eq!(file["index"], 1);
    assert_eq!(file["filename"], "../../etc/pa\"ss wd\u{e9}.sh");
    assert_eq!(file["content_type"], "text/x-sh");
    assert_eq!(file["inline"], false);
    assert_eq!(file["content_id"], Value::Null);
    assert_eq!(file["size"], 10);

    // The HTML part: its own policy, the inline image as data:, the script left inert.
    let html = api.get("/api/v1/messages/1/html").await;
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(html.header("content-security-policy"), Some(HTML_CSP));
    assert_eq!(html.header("x-content-type-options"), Some("nosniff"));
    let body = html.text();
    use base64::Engine as _;
    let inline = format!(
        "<img src=\"data:image/png;base64,{}\">",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    assert!(body.contains(&inline), "{body}");
    assert!(
        body.contains("'CID:missing@x'"),
        "an unknown cid stays: {body}"
    );
    assert!(!body.contains("cid:logo"));

    // The attachment: bytes as sent, never a type a browser would render, a safe name.
    let a = api.get("/api/v1/messages/1/attachments/1").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"#!/bin/sh\n");
    assert_eq!(a.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        a.header("content-disposition"),
        Some("attachment; filename=\"pa_ss wd_.sh\"; filename*=UTF-8''pa%22ss%20wd%C3%A9.sh")
    );
    let logo = api.get("/api/v1/messages/1/attachments/0").await;
    assert_eq!(logo.body, PNG);
    assert_eq!(
        logo.header("content-type"),
        Some("application/octet-stream")
    );
    api.get("/api/v1/messages/1/attachments/2")
        .await
        .assert_error(404, "no attachment 2");
    api.get("/api/v1/messages/1/attachments/x")
        .await
        .assert_error(400, "attachment index");

    // The whole message as a file.
    let eml = api.get("/api/v1/messages/1/eml").await;
    assert_eq!(eml.status, 200);
    assert_eq!(eml.header("content-type"), Some("message/rfc822"));
    assert!(
        eml.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment; filename=\"message-1.eml\"")),
        "{:?}",
        eml.headers
    );
    assert_eq!(eml.body, api.get("/api/v1/messages/1/raw").await.body);

    // A text-only message has no HTML part to show.
    api.insert("a@x", &["b@x"], "Subject: plain\r\n\r\njust text\r\n");
    api.get("/api/v1/messages/2/html")
        .await
        .assert_error(404, "no HTML part");
    assert_eq!(
        api.get_json("/api/v1/messages/2", 200).await["parts"]["html"],
        false
    );

    // Delete one: gone from every view, the byte count follows.
    let bytes_before = server.state().store().bytes();
    let r = delete(&api, "/api/v1/messages/1").await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    api.get("/api/v1/messages/1")
        .await
        .assert_error(404, "no message 1");
    delete(&api, "/api/v1/messages/1")
        .await
        .assert_error(404, "no message 1");
    assert_eq!(api.get("/count").await.text(), "1\n");
    assert!(api.get("/mail/0").await.text().contains("just text"));
    assert_eq!(api.get("/mail/1").await.status, 404);
    let v = api.get_json("/api/v1/messages", 200).await;
    assert_eq!(
        (v["total"].clone(), v["messages"][0]["id"].clone()),
        (1.into(), 2.into())
    );
    assert!(server.state().store().bytes() < bytes_before);
    assert_eq!(
        api.get_json("/api/v1/stats", 200).await["stored"]["messages"],
        1
    );
    delete(&api, "/api/v1/messages/x")
        .await
        .assert_error(400, "bad message id");
}

/// A DELETE as the page's `fetch` sends it: same origin, no body, no content type.
async fn delete(api: &Api, path: &str) -> Response {
    let headers = format!(
        "Host: {addr}\r\nOrigin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n",
        addr = api.addr
    );
    api.request_with("DELETE", path, &headers, b"").await
}

#[tokio::test]
async fn a_cross_site_delete_is_refused() {
    let api = Api::start().await;
    api.insert("a@x", &["b@x"], "Subject: keep\r\n\r\nx\r\n");
    let headers = format!(
        "Host: {}\r\nOrigin: http://evil.example\r\nSec-Fetch-Site: cross-site\r\n",
        api.addr
    );
    let r = api
        .request_with("DELETE", "/api/v1/messages/1", &headers, b"")
        .await;
    r.assert_error(403, "cross-site");
    // A form post cannot reach it either (no JSON body).
    let r = api
        .request_with(
            "DELETE",
            "/api/v1/messages/1",
            &format!("Host: {}\r\nContent-Type: text/plain\r\n", api.addr),
            b"x",
        )
        .await;
    r.assert_error(415, "JSON");
    assert_eq!(api.state.store().len(), 1);
}

#[tokio::test]
async fn reconnects_after_a_fault_are_counted() {
    let server = common::start_with_faults(&["mail:close"]).await;
    let api = api_of(&server);
    let mut client = Client::ehlo(&server).await;
    client.send(b"MAIL FROM:<a@x>\r\n").await;
    let _ = client.read_to_end().await;
    // Our FIN too: the server lingers for it before the session (and its record) ends.
    drop(client);
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    while server.state().sessions().open_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        api.get_json("/api/v1/stats", 200).await["reconnects_seen"],
        0
    );
    let again = Client::ehlo(&server).await;
    drop(again);
    let _third = Client::ehlo(&server).await;
    assert_eq!(
        api.get_json("/api/v1/stats", 200).await["reconnects_seen"],
        1,
        "one failure, one reconnect"
    );
    let metrics = api.get("/metrics").await.text();
    assert!(
        metrics.contains("\nmail_test_srv_reconnects_seen_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stream_ends_when_the_http_listener_alone_stops() {
    // `http::serve` without the rest of the server (no live task): its own stop ends the
    // stream, so its graceful shutdown does not wait for ever.
    let state = mail_test_srv::State::new(Config::ephemeral(), 1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(mail_test_srv::http::serve(listener, state, stop.clone()));
    let mut stream = Stream::open(addr).await;
    stream.until("hello", |_| true).await;
    stop.cancel();
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    while stream.next(deadline).await.is_some() {}
    assert!(stream.ended, "the chunked body ends cleanly");
    tokio::time::timeout(EVENT_DEADLINE, served)
        .await
        .expect("serve returns")
        .unwrap();
}
