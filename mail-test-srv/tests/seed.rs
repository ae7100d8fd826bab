//! Reproducibility: the same seed and the same sequence of connections give the same
//! faults, run after run; a random seed is reported so a run can be replayed.

mod common;

use common::{Client, start};
use mail_test_srv::{Config, ServerHandle};

/// Twenty sequential sessions, each trying one message; returns (connection, stage, action)
/// of every fault and how many messages got through.
async fn scenario(seed: Option<u64>) -> (u64, Vec<(u64, String, String)>, usize) {
    let server: ServerHandle = start(Config {
        faults: vec![
            common::rule("mail:close:40%"),
            common::rule("rcpt:reply=451:30%"),
            common::rule("data-end:accept-close:10%"),
        ],
        seed,
        ..Config::ephemeral()
    })
    .await;
    for _ in 0..20 {
        let mut c = Client::ehlo(&server).await;
        c.send(b"MAIL FROM:<a@b.example>\r\n").await;
        let Ok(mail) = c.reply().await else { continue };
        assert_eq!(mail.code, 250);
        if c.cmd("RCPT TO:<x@y.example>").await.code != 250 {
            continue;
        }
        c.expect("DATA", 354).await;
        c.send(b"hi\r\n.\r\n").await;
        if c.reply().await.is_ok() {
            c.expect("QUIT", 221).await;
        }
    }
    let events = server
        .state()
        .faults()
        .events()
        .since(0)
        .events
        .into_iter()
        .map(|e| (e.connection, e.stage, e.action))
        .collect();
    let stored = server.state().store().len();
    (server.seed(), events, stored)
}

#[tokio::test]
async fn same_seed_same_faults() {
    let (seed, first, stored_first) = scenario(Some(42)).await;
    assert_eq!(seed, 42);
    let (_, second, stored_second) = scenario(Some(42)).await;
    assert!(!first.is_empty(), "the chance rules fired at all");
    assert_eq!(first, second);
    assert_eq!(stored_first, stored_second);
    let (_, other, _) = scenario(Some(43)).await;
    assert_ne!(
        first, other,
        "another seed gives another sequence (2^-20 chance of a clash)"
    );
}

#[tokio::test]
async fn random_seed_is_reported_and_replays() {
    let (seed, first, _) = scenario(None).await;
    let (_, replay, _) = scenario(Some(seed)).await;
    assert_eq!(first, replay, "seed {seed}");
}
