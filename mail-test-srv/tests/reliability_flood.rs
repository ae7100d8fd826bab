//! Flood: far more mail than the storage caps allow. 2,000 messages of 64 KiB (125 MiB in
//! all) go through 8 connections into a server capped at 4 MiB of stored mail: every
//! message is accepted, the oldest are evicted and counted, what is left is exactly the
//! newest ones, and the process's resident memory grows by far less than what went through.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, stored};
use mail_test_srv::{Config, Limits};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 8;
const PER_CONNECTION: usize = 250;
const TOTAL: usize = CONNECTIONS * PER_CONNECTION;
const BODY_LINES: usize = 1024;
/// Each body line is 62 characters + CRLF: a message is a little over 64 KiB.
const LINE: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const MAX_STORED_BYTES: usize = 4 * 1024 * 1024;
/// The stated bound: resident memory grows by less than 48 MiB while 125 MiB of mail pass
/// through (without eviction the growth would be at least the 125 MiB).
const RSS_GROWTH_BOUND_KIB: u64 = 48 * 1024;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

async fn flood(client: &mut Client<TcpStream>, conn: usize, body: &str) {
    for n in 0..PER_CONNECTION {
        client
            .send(b"MAIL FROM:<flood@example.com>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n")
            .await;
        for expected in [250, 250, 354] {
            assert_eq!(client.reply().await.expect("reply").code, expected);
        }
        let message = format!("Subject: flood {conn}.{n}\r\n\r\n{body}.\r\n");
        client.send(message.as_bytes()).await;
        let reply = client.reply().await.expect("reply after the dot");
        assert_eq!(reply.code, 250, "conn {conn} msg {n}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_storage_cap_the_oldest_are_evicted_and_memory_stays_bounded() {
    let body: String = (0..BODY_LINES).map(|_| format!("{LINE}\r\n")).collect();
    let body = Arc::new(body);
    let rss_before = status_kib("VmRSS");
    let server = Arc::new(
        common::start(Config {
            limits: Limits {
                max_stored_bytes: MAX_STORED_BYTES,
                ..Limits::default()
            },
            ..Config::ephemeral()
        })
        .await,
    );
    let mut tasks = Vec::new();
    for conn in 0..CONNECTIONS {
        let (server, body) = (server.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::ehlo(&server).await;
            flood(&mut client, conn, &body).await;
            client.expect("QUIT", 221).await;
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("flood finished")
            .expect("flood task");
    }

    let store = server.state().store();
    let kept = stored(&server);
    assert!(
        store.bytes() <= MAX_STORED_BYTES,
        "{} bytes kept",
        store.bytes()
    );
    assert!(!kept.is_empty());
    // Every accepted message is either kept or counted as evicted: none vanished.
    assert_eq!(kept.len() as u64 + store.evictions(), TOTAL as u64);
    assert!(store.evictions() > 0);
    // The ones kept are the newest: ids are given in arrival order and only grow.
    let ids: Vec<u64> = kept.iter().map(|m| m.id).collect();
    let newest: Vec<u64> = ((TOTAL - kept.len() + 1) as u64..=TOTAL as u64).collect();
    assert_eq!(ids, newest);
    assert!(
        kept.iter().all(|m| m.data.len() > BODY_LINES * 64),
        "whole messages kept"
    );

    let rss_after = status_kib("VmRSS");
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "{TOTAL} messages, {} kept, {} evicted; VmRSS {rss_before} -> {rss_after} KiB, VmHWM {} KiB",
        kept.len(),
        store.evictions(),
        status_kib("VmHWM")
    );
    assert!(
        growth < RSS_GROWTH_BOUND_KIB,
        "resident memory grew by {growth} KiB, bound {RSS_GROWTH_BOUND_KIB} KiB"
    );
}
