//! The exact command sequence, seen by a scripted server: step by step when PIPELINING is
//! not offered, batched when it is, and an RSET after a refused recipient either way.

mod support;

use mailer::Error;
use support::*;

async fn bad_then_good(server: &Scripted) {
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(server.config(), &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let err = conn
        .send_mail(&to(&["bad@example.com"]), "s", "b")
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::BadAddress { address, code: 550, .. } if address == "bad@example.com"),
        "{err}"
    );
    let sent = conn
        .send_mail(&to(&["good@example.com"]), "s", "b")
        .await
        .unwrap();
    assert_eq!(sent.attempts, 1);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn without_pipelining_each_command_waits_and_a_refusal_is_followed_by_rset() {
    let server = scripted_server(false, &["bad@example.com"]).await;
    bad_then_good(&server).await;
    // RCPT refused: no DATA is sent for that message, an RSET is.
    assert_eq!(
        server.verbs(),
        [
            "EHLO", "EHLO", "MAIL", "RCPT", "RSET", "MAIL", "RCPT", "DATA", "QUIT"
        ]
    );
}

#[tokio::test]
async fn with_pipelining_the_refused_batch_is_read_out_then_reset() {
    let server = scripted_server(true, &["bad@example.com"]).await;
    bad_then_good(&server).await;
    // The DATA of the batch was refused (no valid recipient), then RSET.
    assert_eq!(
        server.verbs(),
        [
            "EHLO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA", "QUIT"
        ]
    );
}

#[tokio::test]
async fn a_pipelined_data_accepted_after_a_refusal_abandons_the_session() {
    let server = scripted_server(true, &["bad@example.com"]).await;
    let sleeper = VirtualSleeper::new();
    let mailer = mailer(server.config(), &sleeper);
    let mut conn = mailer.connect().await.unwrap();
    let err = conn
        .send_mail(&to(&["ok@example.com", "bad@example.com"]), "s", "b")
        .await
        .expect_err("one refused");
    assert!(err.is_bad_address(), "{err}");
    // The 354 cannot be undone by RSET and the content must not go to ok@ alone.
    assert!(!conn.is_open());
    conn.send_mail(&to(&["ok@example.com"]), "s", "b")
        .await
        .expect("a fresh session");
    let verbs = server.verbs();
    assert_eq!(
        verbs.iter().filter(|v| *v == "RSET").count(),
        0,
        "{verbs:?}"
    );
    // Two EHLOs on the first session (the second asks for PIPELINING), one on the next:
    // the mailer remembers the answer.
    assert_eq!(
        verbs.iter().filter(|v| *v == "EHLO").count(),
        3,
        "{verbs:?}"
    );
}
