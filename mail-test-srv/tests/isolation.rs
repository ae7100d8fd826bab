//! Two servers in one process share nothing: each sees only its own mail, faults,
//! events, counters and connection ids.

mod common;

use std::sync::atomic::Ordering;

use common::{Client, start, stored};
use mail_test_srv::Config;

#[tokio::test]
async fn two_servers_with_different_fault_plans() {
    let faulty = start(Config {
        faults: vec![common::rule("rcpt:reply=550:to=x@y.example")],
        seed: Some(7),
        ..Config::ephemeral()
    })
    .await;
    let clean = start(Config {
        seed: Some(7),
        ..Config::ephemeral()
    })
    .await;

    let mut a = Client::ehlo(&faulty).await;
    let mut b = Client::ehlo(&clean).await;
    a.expect("MAIL FROM:<a@b.example>", 250).await;
    a.expect("RCPT TO:<x@y.example>", 550).await;
    a.expect("RSET", 250).await;
    assert_eq!(
        b.send_mail("a@b.example", &["x@y.example"], "to clean\r\n")
            .await
            .code,
        250
    );
    assert_eq!(
        a.send_mail("a@b.example", &["other@y.example"], "to faulty\r\n")
            .await
            .code,
        250
    );

    let faulty_mail = stored(&faulty);
    let clean_mail = stored(&clean);
    assert_eq!(faulty_mail.len(), 1);
    assert_eq!(&faulty_mail[0].data[..], b"to faulty\r\n");
    assert_eq!(clean_mail.len(), 1);
    assert_eq!(&clean_mail[0].data[..], b"to clean\r\n");
    // Connection ids count per server.
    assert_eq!(faulty_mail[0].connection, 1);
    assert_eq!(clean_mail[0].connection, 1);

    assert_eq!(faulty.state().faults().events().since(0).events.len(), 1);
    assert!(clean.state().faults().events().since(0).events.is_empty());
    assert_eq!(faulty.state().stats().messages.load(Ordering::Relaxed), 1);
    assert_eq!(clean.state().stats().messages.load(Ordering::Relaxed), 1);

    // Stopping one leaves the other serving.
    faulty.shutdown().await;
    let mut b2 = Client::ehlo(&clean).await;
    assert_eq!(
        b2.send_mail("a@b", &["z@y"], "still here\r\n").await.code,
        250
    );
    assert_eq!(stored(&clean).len(), 2);
}
