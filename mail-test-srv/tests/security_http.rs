//! Hostile HTTP against a whole running server (`mail_test_srv::start`, its real listener):
//! malformed and pathological JSON, an oversized body, unknown routes and methods, huge
//! (up to a 1 MiB request line) and massively repeated query parameters, bad ids, a raw non-HTTP byte stream. Each is
//! answered with a 4xx (or the connection is refused at the HTTP layer), nothing changes
//! the fault plan or the mailbox, and after every one of them `/healthz` is still 200.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one raw request and returns the status code (`None` when the server closed
/// without a response, which hyper does for some unparseable requests) and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> (Option<u16>, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect to HTTP");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The server may answer and close before reading a huge body: a failed write is fine.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    raw_response(stream).await
}

async fn raw_response(mut stream: TcpStream) -> (Option<u16>, String) {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server neither answered nor closed within 10 s"
    );
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

async fn assert_healthy(addr: SocketAddr, after: &str) {
    let (status, body) = request(addr, "GET", "/healthz", b"").await;
    assert_eq!(status, Some(200), "healthz after {after}: {body}");
}

/// `want` is a 4xx status, or `None` for "4xx or closed without a response".
async fn expect_refused(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
    want: Option<u16>,
) {
    let (status, text) = request(addr, method, target, body).await;
    let shown = if target.len() > 80 {
        &target[..80]
    } else {
        target
    };
    match want {
        Some(code) => assert_eq!(status, Some(code), "{method} {shown}: {text}"),
        None => assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{method} {shown}: {status:?} {text}"
        ),
    }
    assert_healthy(addr, &format!("{method} {shown}")).await;
}

#[tokio::test]
async fn malformed_json_unknown_routes_and_bad_ids_get_4xx_and_the_server_keeps_serving() {
    let server = common::start_with_faults(&["mail:close:first=1"]).await;
    let addr = server.http_addr();
    let plan_before = request(addr, "GET", "/api/v1/faults", b"").await;

    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"rules\":".repeat(10_000);
    let nul_rules = b"{\"rules\":[\"mail:close\0\"]}".to_vec();
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"{\"rules\": [".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"{\"rules\": \"mail:close\"}".to_vec(),
        b"{\"rules\": [42]}".to_vec(),
        b"{\"rules\": [], \"seed\": 1e400}".to_vec(),
        b"{\"rules\": [], \"seed\": 18446744073709551616}".to_vec(),
        deep_array.into_bytes(),
        deep_object.into_bytes(),
        nul_rules,
    ];
    for body in &bodies {
        expect_refused(addr, "PUT", "/api/v1/faults", body, Some(400)).await;
    }
    // A body past the router's limit (axum's default is 2 MB) is refused whole.
    let huge = vec![b' '; 8 * 1024 * 1024];
    expect_refused(addr, "PUT", "/api/v1/faults", &huge, None).await;
    assert_eq!(
        request(addr, "GET", "/api/v1/faults", b"").await,
        plan_before,
        "no refused request changed the plan"
    );

    for target in [
        "/api/v1/nope",
        "/api/v1/messages/1/raw/more",
        "/api/v2/messages",
    ] {
        expect_refused(addr, "GET", target, b"", Some(404)).await;
    }
    // Path tricks reach no file and no other route: 404, or 400 where `/mail/N` sees a bad N.
    for target in [
        "/../../etc/passwd",
        "/api/v1/%2e%2e/%2e%2e/etc/passwd",
        "/mail/../count/../../x",
        "/mail/%2e%2e%2fcount",
    ] {
        expect_refused(addr, "GET", target, b"", None).await;
    }
    expect_refused(addr, "DELETE", "/api/v1/faults/1", b"", Some(404)).await;
    expect_refused(addr, "PATCH", "/api/v1/messages", b"", Some(405)).await;
    expect_refused(addr, "BREW", "/api/v1/messages", b"", None).await;

    for id in [
        "abc",
        "-1",
        "1.5",
        "0x10",
        "%00",
        "%ff%fe",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
        "1%20OR%201=1",
        "%E2%80%AE1",
    ] {
        expect_refused(
            addr,
            "GET",
            &format!("/api/v1/messages/{id}"),
            b"",
            Some(400),
        )
        .await;
        expect_refused(
            addr,
            "GET",
            &format!("/api/v1/messages/{id}/raw"),
            b"",
            Some(400),
        )
        .await;
    }
    for n in ["x", "1.0", "99999999999999999999999", "%ff", "%00"] {
        expect_refused(addr, "GET", &format!("/mail/{n}"), b"", Some(400)).await;
    }
    // Ids that parse but do not exist are 404, not 500.
    expect_refused(
        addr,
        "GET",
        "/api/v1/messages/18446744073709551615",
        b"",
        Some(404),
    )
    .await;
    // `/mail/N` keeps the Go server's answers: a negative N is simply not found.
    expect_refused(addr, "GET", "/mail/9223372036854775807", b"", Some(404)).await;
    expect_refused(addr, "GET", "/mail/-1", b"", Some(404)).await;
}

#[tokio::test]
async fn huge_and_repeated_query_parameters_get_4xx_or_a_bounded_answer() {
    let server = common::start(mail_test_srv::Config::ephemeral()).await;
    let addr = server.http_addr();

    // Bad values, repeated 5,000 times (40 KB): the first one decides (Go's url.Values.Get)
    // and is refused.
    let repeated_bad = vec!["limit=x"; 5_000].join("&");
    expect_refused(
        addr,
        "GET",
        &format!("/api/v1/messages?{repeated_bad}"),
        b"",
        Some(400),
    )
    .await;
    let repeated_since = vec!["since=-5"; 5_000].join("&");
    expect_refused(
        addr,
        "GET",
        &format!("/api/v1/events?{repeated_since}"),
        b"",
        Some(400),
    )
    .await;
    // Undecodable percent-escapes and a NUL inside a value.
    expect_refused(addr, "GET", "/api/v1/messages?limit=%ff%fe", b"", Some(400)).await;
    expect_refused(
        addr,
        "GET",
        "/api/v1/wait?count=1%00&timeout=1ms",
        b"",
        Some(400),
    )
    .await;

    // A 50 KB value: still parsed, and refused as a number too large.
    let long_value = "9".repeat(50_000);
    expect_refused(
        addr,
        "GET",
        &format!("/api/v1/messages?limit={long_value}"),
        b"",
        Some(400),
    )
    .await;
    // Past hyper's URI limit (64 KiB): 414 URI Too Long, before any handler runs.
    let long_query = vec!["limit=x"; 20_000].join("&");
    expect_refused(
        addr,
        "GET",
        &format!("/api/v1/messages?{long_query}"),
        b"",
        Some(414),
    )
    .await;
    // A 1 MiB request line, past hyper's whole header buffer: refused at the HTTP layer.
    let too_long = "a".repeat(1024 * 1024);
    expect_refused(
        addr,
        "GET",
        &format!("/api/v1/messages?to={too_long}"),
        b"",
        None,
    )
    .await;

    // Valid but repeated filters are answered, bounded and consistent: the first value wins.
    let repeated_to = vec!["to=a@example.com"; 3_000].join("&");
    let (status, body) =
        request(addr, "GET", &format!("/api/v1/messages?{repeated_to}"), b"").await;
    assert_eq!(status, Some(200), "{body}");
    let (status, body) = request(addr, "GET", &format!("/count?{repeated_to}"), b"").await;
    assert_eq!((status, body.as_str()), (Some(200), "0\n"));

    // Not HTTP at all, and a request that never finishes its headers.
    let mut garbage = TcpStream::connect(addr).await.expect("connect");
    garbage
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .await
        .expect("write");
    let _ = raw_response(garbage).await;
    assert_healthy(addr, "a TLS ClientHello on the plain HTTP port").await;
    let mut half = TcpStream::connect(addr).await.expect("connect");
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    assert_healthy(addr, "a request with unfinished headers still open").await;
    drop(half);
}
