//! Slow and silent clients: 250 connections that say nothing after the greeting and 250
//! that trickle one byte a second (a command that never ends) do not keep a normal client
//! from delivering; once each goes quiet for the idle timeout (2 s here) it gets
//! `421 4.4.2` and is closed.
//!
//! Wall-clock time, on purpose: the point is how the real server shares two cores between
//! 500 stuck sockets and one useful one. The whole test takes about 9 s.
//!
//! What this does not claim: the idle timeout is an inactivity timeout (as Postfix's
//! `smtpd_timeout`), so a client that trickles a byte a second forever keeps its slot;
//! such clients are bounded by `max_connections` (see `reliability_load.rs`), not by time.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Client, stored};
use mail_test_srv::{Config, Limits};
use tokio::sync::Barrier;

const SILENT: usize = 250;
const TRICKLING: usize = 250;
const IDLE: Duration = Duration::from_secs(2);
/// What a trickling client sends, one byte a second, without ever ending the line.
const TRICKLE: &[u8] = b"NOOP x";

fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line.split_whitespace().nth(3)? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// After going quiet, the client must see exactly the idle-timeout notice and then EOF.
async fn expect_idle_close(client: &mut Client<tokio::net::TcpStream>, who: &str) {
    let reply = client.reply().await.expect("the idle timeout answers");
    assert_eq!(reply.code, 421, "{who}: {reply:?}");
    assert!(reply.text().starts_with("4.4.2"), "{who}: {reply:?}");
    let rest = client.read_to_end().await.expect("closed after 421");
    assert!(rest.is_empty(), "{who}: nothing after the 421: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_trickling_clients_do_not_block_a_normal_one_and_time_out() {
    let needed = 2 * (SILENT + TRICKLING) as u64 + 200;
    if open_files_limit().is_none_or(|limit| limit < needed) {
        eprintln!(
            "skipped: needs {needed} open files, the limit is {:?} (raise it with `ulimit -n 4096`)",
            open_files_limit()
        );
        return;
    }
    let server = Arc::new(
        common::start(Config {
            limits: Limits {
                idle_timeout: IDLE,
                ..Limits::default()
            },
            ..Config::ephemeral()
        })
        .await,
    );
    let greeted = Arc::new(Barrier::new(SILENT + TRICKLING + 1));
    let mut stuck = Vec::new();
    for i in 0..SILENT {
        let (server, greeted) = (server.clone(), greeted.clone());
        stuck.push(tokio::spawn(async move {
            let mut client = Client::connect(&server).await;
            greeted.wait().await;
            expect_idle_close(&mut client, &format!("silent {i}")).await;
        }));
    }
    for i in 0..TRICKLING {
        let (server, greeted) = (server.clone(), greeted.clone());
        stuck.push(tokio::spawn(async move {
            let mut client = Client::connect(&server).await;
            greeted.wait().await;
            for byte in TRICKLE {
                client.send(&[*byte]).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            expect_idle_close(&mut client, &format!("trickling {i}")).await;
        }));
    }
    greeted.wait().await;

    // A normal client, while all 500 hold their sockets: every message is accepted.
    let mut normal = Client::ehlo(&server).await;
    for n in 0..5 {
        let reply = normal
            .send_mail(
                "normal@example.com",
                &["rcpt@example.com"],
                &format!("Subject: normal {n}\r\n\r\nbody\r\n"),
            )
            .await;
        assert_eq!(reply.code, 250, "{reply:?}");
    }
    // The trickling clients sent a byte less than a second ago (idle is 2 s): they are
    // still connected, so the normal client really was served beside them.
    let open = server
        .state()
        .stats()
        .connections_open
        .load(Ordering::Relaxed);
    assert!(
        open > TRICKLING as u64,
        "only {open} sessions open while the normal client was served"
    );
    normal.expect("QUIT", 221).await;

    for task in stuck {
        task.await.expect("stuck client saw 421 and EOF");
    }
    assert_eq!(stored(&server).len(), 5);
    assert_eq!(
        server.state().stats().idle_timeouts.load(Ordering::Relaxed),
        (SILENT + TRICKLING) as u64
    );
}
