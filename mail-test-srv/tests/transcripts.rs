//! Session transcripts over raw SMTP and the HTTP API: the exact lines of a delivery, a
//! refusal under `--strict`, a fault close, the summary and outcome of each, the filters and
//! paging of `GET /api/v1/sessions`, the bounds, and `--transcripts off`.
//! Real clients (smtplib, lettre with STARTTLS, the Go client) are in `transcripts_clients.rs`.

mod common;
mod http_util;

use common::{Client, start, stored};
use mail_test_srv::{Config, Limits, ServerHandle};
use serde_json::Value;

fn api(server: &ServerHandle) -> http_util::Api {
    http_util::Api {
        addr: server.http_addr(),
        state: server.state().clone(),
    }
}

/// The text transcript of session `id` without the time prefixes: `C: EHLO me`.
async fn lines(server: &ServerHandle, id: u64) -> Vec<String> {
    let r = api(server)
        .get(&format!("/api/v1/sessions/{id}/transcript"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    r.text()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((t, rest)) if t.starts_with('+') && t.ends_with('s') => rest.to_owned(),
            _ => l.to_owned(),
        })
        .collect()
}

/// Waits until session `id` is closed and returns its JSON.
async fn closed(server: &ServerHandle, id: u64) -> Value {
    for _ in 0..200 {
        let v = api(server)
            .get_json(&format!("/api/v1/sessions/{id}"), 200)
            .await;
        if v["open"] == false {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("session {id} still open");
}

#[tokio::test]
async fn a_delivery_shows_every_line_in_order() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::connect(&server).await;
    c.expect("EHLO me", 250).await;
    let reply = c
        .send_mail(
            "a@b.example",
            &["c@d.example"],
            "Message-ID: <m1@x>\r\nSubject: hi\r\n\r\nbody\r\n",
        )
        .await;
    assert_eq!(reply.code, 250);
    c.expect("QUIT", 221).await;
    drop(c);
    let id = stored(&server)[0].connection;
    let v = closed(&server, id).await;
    let size = stored(&server)[0].data.len();
    let got = lines(&server, id).await;
    let ehlo_lines = got.iter().filter(|l| l.starts_with("S: 250-")).count();
    let mut want = vec![
        "S: 220 localhost ESMTP mail-test-srv".to_owned(),
        "C: EHLO me".to_owned(),
    ];
    want.extend(got[2..2 + ehlo_lines].iter().cloned());
    want.extend(
        [
            "S: 250 AUTH PLAIN LOGIN",
            "C: MAIL FROM:<a@b.example>",
            "S: 250 2.1.0 Ok",
            "C: RCPT TO:<c@d.example>",
            "S: 250 2.1.5 Ok",
            "C: DATA",
            "S: 354 End data with <CR><LF>.<CR><LF>",
        ]
        .map(str::to_owned),
    );
    want.push(format!("C: <{size} bytes, Message-ID <m1@x>>"));
    want.push("S: 250 2.0.0 Ok: queued as 1".to_owned());
    want.extend(["C: QUIT", "S: 221 2.0.0 Bye"].map(str::to_owned));
    assert_eq!(got, want);
    assert!(ehlo_lines >= 5, "{got:#?}");
    assert_eq!(v["helo"], "me");
    assert_eq!(v["messages"], serde_json::json!([1]));
    assert_eq!(v["outcome"], "client-quit");
    assert_eq!(v["commands"], 6);
    assert_eq!(v["faults"], 0);
    assert!(v["refusals"].as_array().unwrap().is_empty());
    assert!(v["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    // The JSON lines say the same, with direction and time.
    let json_lines = v["lines"].as_array().unwrap();
    assert_eq!(json_lines[1]["dir"], "c");
    assert_eq!(json_lines[1]["line"], "EHLO me");
    assert_eq!(json_lines[0]["dir"], "s");
    assert!(json_lines[0]["t"].as_f64().unwrap() >= 0.0);
    // The message and the session point at each other.
    let list = api(&server).get_json("/api/v1/messages", 200).await;
    assert_eq!(list["messages"][0]["session"], id);
}

#[tokio::test]
async fn a_strict_refusal_is_kept_with_its_envelope_and_reason() {
    let server = start(Config {
        strict: true,
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    let line = "MAIL FROM:<\"Expiry bot\" <test@example.com>> BODY=8BITMIME";
    c.expect(line, 501).await;
    c.expect("MAIL FROM:<ok@example.com>", 250).await;
    c.expect("RCPT TO:<b@example.com>", 250).await;
    c.expect("RCPT TO:<<c@example.com>>", 501).await;
    c.expect("QUIT", 221).await;
    drop(c);
    let id = 1;
    let v = closed(&server, id).await;
    let refusals = v["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 2, "{v:#}");
    assert_eq!(refusals[0]["stage"], "mail");
    assert_eq!(
        refusals[0]["from"],
        "<\"Expiry bot\" <test@example.com>> BODY=8BITMIME"
    );
    assert!(
        refusals[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("501 5.1.7")
    );
    assert_eq!(refusals[1]["stage"], "rcpt");
    assert_eq!(refusals[1]["from"], "ok@example.com");
    assert_eq!(
        refusals[1]["recipients"],
        serde_json::json!(["b@example.com"])
    );
    assert!(
        refusals[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("501 5.1.3")
    );
    let got = lines(&server, id).await;
    let at = got.iter().position(|l| *l == format!("C: {line}")).unwrap();
    assert!(got[at + 1].starts_with("S: 501 5.1.7 "), "{got:#?}");
    // Not in /count: nothing was stored.
    assert!(stored(&server).is_empty());
    let refused = api(&server)
        .get_json("/api/v1/sessions?refused=true", 200)
        .await;
    assert_eq!(refused["count"], 1);
}

#[tokio::test]
async fn a_fault_close_is_a_note_a_refusal_and_the_outcome() {
    let server = start(Config {
        faults: vec![common::rule("mail:close")],
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.send(b"MAIL FROM:<a@example.com>\r\n").await;
    assert!(c.read_to_end().await.unwrap().is_empty());
    // The server waits for the client's FIN before it lets the session go.
    drop(c);
    let v = closed(&server, 1).await;
    assert_eq!(v["outcome"], "server-fault (close)");
    assert_eq!(v["faults"], 1);
    assert_eq!(v["refusals"][0]["stage"], "mail");
    assert_eq!(v["refusals"][0]["reason"], "connection ended by a fault");
    let got = lines(&server, 1).await;
    assert_eq!(
        got[got.len() - 2..],
        [
            "C: MAIL FROM:<a@example.com>",
            "*: fault mail:close (close)"
        ]
    );
    let events = api(&server).get_json("/api/v1/events", 200).await;
    assert_eq!(events["events"][0]["session"], 1);
    let faulted = api(&server)
        .get_json("/api/v1/sessions?fault=true", 200)
        .await;
    assert_eq!(faulted["count"], 1);
    let clean = api(&server)
        .get_json("/api/v1/sessions?fault=false", 200)
        .await;
    assert_eq!(clean["count"], 0);
}

#[tokio::test]
async fn a_flood_of_commands_leaves_a_capped_transcript() {
    let server = start(Config {
        limits: Limits {
            max_errors: usize::MAX,
            ..Limits::default()
        },
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.send("NOOP\r\n".repeat(100_000).as_bytes()).await;
    for _ in 0..100_000 {
        assert_eq!(c.reply().await.unwrap().code, 250);
    }
    c.expect("QUIT", 221).await;
    drop(c);
    let v = closed(&server, 1).await;
    assert_eq!(v["commands"], 100_002);
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 500 + 1 + 100, "head, marker, tail");
    assert!(
        lines[500]["line"].as_str().unwrap().ends_with("lines ..."),
        "{}",
        lines[500]
    );
    assert_eq!(lines.last().unwrap()["line"], "221 2.0.0 Bye");
    assert!(server.state().sessions().bytes() < 200 * 1024);
}

#[tokio::test]
async fn lists_filter_page_and_reset() {
    let server = start(Config {
        limits: Limits {
            max_sessions: 3,
            ..Limits::default()
        },
        ..Config::ephemeral()
    })
    .await;
    for _ in 0..5 {
        let mut c = Client::ehlo(&server).await;
        c.expect("QUIT", 221).await;
    }
    let open = Client::ehlo(&server).await;
    let api = api(&server);
    // Closed sessions 1..=5 with 3 kept, and session 6 open.
    for _ in 0..100 {
        if server.state().sessions().kept_count() == 3 && server.state().sessions().evicted() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let all = api.get_json("/api/v1/sessions", 200).await;
    let ids: Vec<u64> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [6, 5, 4, 3], "newest first, the oldest two evicted");
    assert!(all["sessions"][0].get("lines").is_none(), "summaries only");
    let page = api.get_json("/api/v1/sessions?limit=2", 200).await;
    assert_eq!(page["next_before"], 5);
    let next = api.get_json("/api/v1/sessions?limit=2&before=5", 200).await;
    assert_eq!(next["sessions"][0]["id"], 4);
    let open_only = api.get_json("/api/v1/sessions?state=open", 200).await;
    assert_eq!(open_only["count"], 1);
    assert_eq!(open_only["sessions"][0]["open"], true);
    let by_peer = api.get_json("/api/v1/sessions?peer=127.0.0.2", 200).await;
    assert_eq!(by_peer["count"], 0);
    for bad in ["state=nope", "peer=x", "fault=maybe", "limit=100000"] {
        api.get(&format!("/api/v1/sessions?{bad}"))
            .await
            .assert_error(400, "");
    }
    api.get("/api/v1/sessions/1")
        .await
        .assert_error(404, "no session 1");
    api.get("/api/v1/sessions/x")
        .await
        .assert_error(400, "bad session id");
    let metrics = api.get("/metrics").await.text();
    assert!(
        metrics.contains("mail_test_srv_sessions_kept 3"),
        "{metrics}"
    );
    assert!(metrics.contains("mail_test_srv_sessions_evicted_total 2"));
    assert!(metrics.contains("mail_test_srv_sessions_open 1"));
    let r = api.request("POST", "/api/v1/reset", b"").await;
    assert_eq!(r.status, 200);
    let after = api.get_json("/api/v1/sessions", 200).await;
    assert_eq!(after["count"], 1, "only the open session is left");
    drop(open);
}

#[tokio::test]
async fn transcripts_off_records_nothing() {
    let server = start(Config {
        transcripts: false,
        ..Config::ephemeral()
    })
    .await;
    let mut c = Client::ehlo(&server).await;
    c.expect("QUIT", 221).await;
    let api = api(&server);
    assert_eq!(api.get_json("/api/v1/sessions", 200).await["count"], 0);
    api.get("/api/v1/sessions/1")
        .await
        .assert_error(404, "transcripts are off");
    assert_eq!(server.state().sessions().bytes(), 0);
}
