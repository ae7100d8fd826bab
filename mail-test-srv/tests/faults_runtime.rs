//! Fault plans changed over HTTP take effect on real SMTP sessions, are recorded as
//! events, and are reproducible from the seed.

mod http_util;

use std::time::Duration;

use mail_test_srv::{Config, ServerHandle};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const STEP: Duration = Duration::from_secs(10);

async fn server(seed: u64) -> (ServerHandle, http_util::Api) {
    let handle = mail_test_srv::start(Config {
        seed: Some(seed),
        ..Config::ephemeral()
    })
    .await
    .expect("server starts");
    let api = http_util::Api {
        addr: handle.http_addr(),
        state: handle.state().clone(),
    };
    (handle, api)
}

/// A line-oriented SMTP client: `None` when the server closed the connection.
struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    async fn connect(handle: &ServerHandle) -> Smtp {
        let stream = TcpStream::connect(handle.smtp_addr()).await.unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream),
        };
        assert_eq!(smtp.reply().await, Some(220));
        smtp
    }

    /// The code of the next (possibly multi-line) reply.
    async fn reply(&mut self) -> Option<u16> {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(STEP, self.reader.read_line(&mut line))
                .await
                .expect("reply in time")
                .ok()?;
            if n == 0 {
                return None;
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.get(..3)?.parse().ok();
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> Option<u16> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .ok()?;
        self.reply().await
    }

    /// True when the server closed without sending anything more.
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(STEP, self.reader.read_to_end(&mut rest)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

async fn put_faults(api: &http_util::Api, body: serde_json::Value) {
    let r = api
        .request("PUT", "/api/v1/faults", body.to_string().as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn a_plan_put_over_http_applies_to_new_sessions() {
    let (handle, api) = server(1).await;
    put_faults(&api, json!({"rules": ["mail:421"]})).await;
    let mut s = Smtp::connect(&handle).await;
    assert_eq!(s.cmd("EHLO client").await, Some(250));
    assert_eq!(s.cmd("MAIL FROM:<a@example.com>").await, Some(421));
    assert!(s.closed().await);

    let v = api.get_json("/api/v1/events", 200).await;
    assert_eq!(v["events"][0]["stage"], "mail");
    assert_eq!(v["events"][0]["rule"], "mail-421-1");
    assert_eq!(v["events"][0]["definition"], "mail:421");
    assert_eq!(v["events"][0]["action"], "421");
    assert_eq!(
        api.get_json("/api/v1/stats", 200).await["faults"]["by_stage"]["mail"],
        1
    );

    // DELETE: no faults any more.
    api.request("DELETE", "/api/v1/faults", b"").await;
    let mut s = Smtp::connect(&handle).await;
    assert_eq!(s.cmd("EHLO client").await, Some(250));
    assert_eq!(s.cmd("MAIL FROM:<a@example.com>").await, Some(250));
    handle.shutdown().await;
}

#[tokio::test]
async fn rcpt_reply_by_address_and_accept_close() {
    let (handle, api) = server(1).await;
    put_faults(
        &api,
        json!({"rules": [
            {"stage": "rcpt", "action": {"reply": 550}, "to": "bad@example.com"},
            "data-end:accept-close:first=1",
        ]}),
    )
    .await;
    let mut s = Smtp::connect(&handle).await;
    assert_eq!(s.cmd("EHLO client").await, Some(250));
    assert_eq!(s.cmd("MAIL FROM:<a@example.com>").await, Some(250));
    assert_eq!(s.cmd("RCPT TO:<bad@example.com>").await, Some(550));
    assert_eq!(s.cmd("RCPT TO:<good@example.com>").await, Some(250));
    assert_eq!(s.cmd("DATA").await, Some(354));
    // Stored, then closed without a reply: the lost-reply case.
    assert_eq!(s.cmd("Subject: hi\r\n\r\nbody\r\n.").await, None);
    assert_eq!(api.get("/count?to=good@example.com").await.text(), "1\n");
    assert_eq!(api.get("/count?to=bad@example.com").await.text(), "0\n");
    let events = api.get_json("/api/v1/events", 200).await["events"].clone();
    assert_eq!(events.as_array().unwrap().len(), 2);
    assert_eq!(events[1]["stored"], true);
    handle.shutdown().await;
}

/// For each of `n` connections in turn: did MAIL get closed?
async fn close_pattern(seed: u64, n: usize) -> Vec<bool> {
    let (handle, api) = server(seed).await;
    put_faults(&api, json!({"rules": ["mail:close:50%"]})).await;
    let mut pattern = Vec::new();
    for _ in 0..n {
        let mut s = Smtp::connect(&handle).await;
        assert_eq!(s.cmd("EHLO client").await, Some(250));
        let reply = s.cmd("MAIL FROM:<a@example.com>").await;
        pattern.push(reply.is_none());
        if reply.is_some() {
            s.cmd("QUIT").await;
        }
    }
    let events = api.get_json("/api/v1/events", 200).await["events"].clone();
    assert_eq!(
        events.as_array().unwrap().len(),
        pattern.iter().filter(|&&c| c).count()
    );
    handle.shutdown().await;
    pattern
}

#[tokio::test]
async fn same_seed_same_faults() {
    let a = close_pattern(1234, 16).await;
    assert_eq!(a, close_pattern(1234, 16).await);
    assert!(a.contains(&true) && a.contains(&false), "{a:?}");
    assert_ne!(a, close_pattern(4321, 16).await);
}
