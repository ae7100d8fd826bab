//! The server gone away (`/api/v1/outage`), over raw sockets on 127.0.0.1: connects refused
//! and sessions reset (`refuse`), connections accepted and never answered (`blackhole`), the
//! listener back on the same port, and what the API, events, stats and transcripts say.

mod common;
mod http_util;

use std::io::ErrorKind;
use std::time::Duration;

use common::{Client, ended_session, start};
use http_util::Api;
use mail_test_srv::{Config, ServerHandle};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn api(server: &ServerHandle) -> Api {
    Api {
        addr: server.http_addr(),
        state: server.state().clone(),
    }
}

async fn post_outage(api: &Api, body: &str) -> serde_json::Value {
    let r = api.request("POST", "/api/v1/outage", body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// `stage action definition` of every fault event (an outage's rule is `outage`).
fn events(server: &ServerHandle) -> Vec<String> {
    server
        .state()
        .faults()
        .events()
        .since(0)
        .events
        .iter()
        .map(|e| {
            assert_eq!(e.rule, "outage");
            format!("{} {} {}", e.stage, e.action, e.definition)
        })
        .collect()
}

/// Connects, retrying for up to 5 s while refused: the listener comes back a moment after
/// the outage's state has changed.
async fn connect_when_back(server: &ServerHandle) -> TcpStream {
    for _ in 0..250 {
        match TcpStream::connect(server.smtp_addr()).await {
            Ok(tcp) => return tcp,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
    panic!("the listener did not come back");
}

/// Waits until no outage is on (up to 10 s).
async fn wait_until_over(server: &ServerHandle) {
    for _ in 0..1000 {
        if server.state().outages().current().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the outage did not end");
}

/// Asserts that `tcp` receives nothing for `quiet`.
async fn assert_silent(tcp: &mut TcpStream, quiet: Duration) {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(quiet, tcp.read(&mut byte)).await {
        Err(_) => {}
        Ok(read) => panic!("expected silence, got {read:?} ({:?})", &byte[..]),
    }
}

#[tokio::test]
async fn refuse_closes_the_listener_resets_sessions_and_comes_back_on_the_same_port() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    let addr = server.smtp_addr();
    let mut open = Client::ehlo(&server).await;

    let status = post_outage(&api, r#"{"for": "1s", "mode": "refuse"}"#).await;
    assert_eq!(status["active"], true);
    assert_eq!(status["mode"], "refuse");
    assert_eq!(status["for"], "1s");
    assert!(status["until"].as_str().unwrap().ends_with('Z'), "{status}");

    // The open session is cut with a reset and gets no reply. (Nothing is sent first: a
    // write after the reset arrived would fail, which is not what this test is about.)
    let cut = open.reply().await.expect_err("no reply during the outage");
    assert_eq!(cut.kind(), ErrorKind::ConnectionReset, "{cut}");
    // Nothing listens.
    let refused = TcpStream::connect(addr).await.expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    // The HTTP port stays up, and reports the outage.
    let stats = api.get_json("/api/v1/stats", 200).await;
    assert_eq!(stats["outage"]["active"], true, "{stats}");
    assert_eq!(stats["outage"]["mode"], "refuse");
    assert_eq!(stats["outage"]["until"], status["until"]);
    let metrics = api.get("/metrics").await.text();
    assert!(
        metrics.contains("\nmail_test_srv_outage_active 1\n"),
        "{metrics}"
    );

    // Back after `for`, on the same address, greeting as usual.
    wait_until_over(&server).await;
    let tcp = connect_when_back(&server).await;
    assert_eq!(tcp.peer_addr().unwrap(), addr);
    let mut back = Client::new(tcp);
    assert_eq!(back.reply().await.unwrap().code, 220);
    let stats = api.get_json("/api/v1/stats", 200).await;
    assert!(stats["outage"].is_null(), "{stats}");
    let metrics = api.get("/metrics").await.text();
    assert!(
        metrics.contains("\nmail_test_srv_outage_active 0\n"),
        "{metrics}"
    );

    assert_eq!(
        events(&server),
        [
            "outage start outage refuse for 1s",
            "outage end outage refuse for 1s"
        ]
    );
    let record = ended_session(&server, 1).await;
    let outcome = record.outcome.map(|o| o.name());
    assert_eq!(outcome.as_deref(), Some("server-fault (outage)"));
    assert_eq!(record.faults, 1);
}

#[tokio::test]
async fn blackhole_accepts_and_never_answers_then_closes_without_a_word() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    let mut open = Client::ehlo(&server).await;

    // Mode left out is refuse; here it is given.
    let status = post_outage(&api, r#"{"for": "1500ms", "mode": "blackhole"}"#).await;
    assert_eq!(status["mode"], "blackhole");

    // A new connection is accepted, but no greeting comes.
    let mut fresh = TcpStream::connect(server.smtp_addr())
        .await
        .expect("accepted");
    // The open session's command gets no reply either.
    open.send(b"NOOP\r\n").await;
    assert_silent(&mut fresh, Duration::from_millis(500)).await;
    let mut open = open.into_inner();
    assert_silent(&mut open, Duration::from_millis(100)).await;
    let stats = api.get_json("/api/v1/stats", 200).await;
    assert_eq!(stats["outage"]["mode"], "blackhole", "{stats}");

    // At the end both are closed without a byte (FIN, not a reply).
    for tcp in [&mut fresh, &mut open] {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
            .await
            .expect("closed when the outage ends");
        assert_eq!(read.unwrap(), 0, "{rest:?}");
    }
    let mut back = Client::connect(&server).await;
    back.expect("NOOP", 250).await;
    assert_eq!(
        events(&server),
        [
            "outage start outage blackhole for 1s 500ms",
            "outage end outage blackhole for 1s 500ms"
        ]
    );
    for id in [1, 2] {
        let record = ended_session(&server, id).await;
        let outcome = record.outcome.map(|o| o.name());
        assert_eq!(
            outcome.as_deref(),
            Some("server-fault (outage)"),
            "session {id}"
        );
    }
}

#[tokio::test]
async fn delete_ends_an_outage_early_and_404_when_none() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    let none = api.request("DELETE", "/api/v1/outage", b"").await;
    none.assert_error(404, "no outage");
    assert_eq!(api.get_json("/api/v1/outage", 200).await["active"], false);

    // `mode` left out: refuse.
    let status = post_outage(&api, r#"{"for": "1h"}"#).await;
    assert_eq!(status["mode"], "refuse");
    assert_eq!(api.get_json("/api/v1/outage", 200).await["mode"], "refuse");
    let refused = TcpStream::connect(server.smtp_addr())
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);

    let ended = api.request("DELETE", "/api/v1/outage", b"").await;
    assert_eq!(ended.status, 200, "{}", ended.text());
    assert_eq!(ended.json()["active"], false);
    let mut back = Client::new(connect_when_back(&server).await);
    assert_eq!(back.reply().await.unwrap().code, 220);
    api.request("DELETE", "/api/v1/outage", b"")
        .await
        .assert_error(404, "no outage");
    assert_eq!(
        events(&server),
        [
            "outage start outage refuse for 1h",
            "outage end outage refuse for 1h (ended early)"
        ]
    );
}

#[tokio::test]
async fn a_second_post_replaces_the_outage_on() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    post_outage(&api, r#"{"for": "1h", "mode": "refuse"}"#).await;
    let status = post_outage(&api, r#"{"for": "1s", "mode": "blackhole"}"#).await;
    assert_eq!(status["mode"], "blackhole");
    let stats = api.get_json("/api/v1/stats", 200).await;
    assert_eq!(stats["outage"]["mode"], "blackhole");
    assert_eq!(stats["outage"]["until"], status["until"]);

    // The listener is back for the blackhole, which greets nobody.
    let mut swallowed = connect_when_back(&server).await;
    assert_silent(&mut swallowed, Duration::from_millis(300)).await;
    // Its shorter end holds: the server is back within seconds, not an hour.
    wait_until_over(&server).await;
    Client::connect(&server).await.expect("NOOP", 250).await;
    assert_eq!(
        events(&server),
        [
            "outage start outage refuse for 1h",
            "outage end outage refuse for 1h (replaced)",
            "outage start outage blackhole for 1s",
            "outage end outage blackhole for 1s"
        ]
    );
}

#[tokio::test]
async fn bad_outage_requests_are_400_with_a_json_error() {
    let server = start(Config::ephemeral()).await;
    let api = api(&server);
    for (body, want) in [
        ("{}", "missing field `for`"),
        (r#"{"mode": "refuse"}"#, "missing field `for`"),
        (r#"{"for": "soon"}"#, "bad duration"),
        (r#"{"for": 10}"#, "bad outage"),
        (r#"{"for": "0s"}"#, "more than zero"),
        (r#"{"for": "2h"}"#, "at most 1h"),
        (
            r#"{"for": "1s", "mode": "sideways"}"#,
            "unknown outage mode",
        ),
        (r#"{"for": "1s", "until": "later"}"#, "unknown field"),
        ("not json", "bad outage"),
    ] {
        let r = api.request("POST", "/api/v1/outage", body.as_bytes()).await;
        r.assert_error(400, want);
    }
    assert!(server.state().outages().current().is_none());
    assert!(events(&server).is_empty());
    Client::connect(&server).await;
}
