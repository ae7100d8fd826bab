//! expiration-mailer meets temporary refusals: greylisting is retried within the run (the
//! reminder goes out, the summary counts the retries and prints the sleeps); a 451 that lasts
//! past the bound is still a failure left for the next run (exit 1, not marked done).

mod common;

use common::{EXPIRY, Scratch, TestServer, fakeclock, run_at, run_output, summary_field};

#[test]
fn a_greylisted_reminder_goes_out_in_the_same_run() {
    let server = TestServer::start(&["rcpt:greylist=300ms"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(
        &db,
        "mailto:grey@example.com",
        "grey.example.com",
        EXPIRY,
        41,
    );
    // Backoff 5 ms .. 50 ms (the common flags), so a 300 ms window takes several retries.
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    assert_eq!(summary_field(&out, "failures"), 0, "{out}");
    assert!(summary_field(&out, "retries_4xx") >= 1, "{out}");
    assert_eq!(summary_field(&out, "reconnect_attempts"), 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("expiration-mailer: backoff: t1=")),
        "the retry sleeps are listed: {out}"
    );
    assert_eq!(server.messages(Some("grey@example.com")).len(), 1);
}

#[test]
fn a_451_past_the_bound_is_left_for_the_next_run() {
    let server = TestServer::start(&["rcpt:reply=451:to=later@example.com"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(
        &db,
        "mailto:later@example.com",
        "later.example.com",
        EXPIRY,
        42,
    );
    let output = run_output(
        &scratch,
        &server,
        &db,
        &fakeclock(EXPIRY, 5),
        &["--max-reconnects", "2"],
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(summary_field(&out, "failures"), 1, "{out}");
    assert_eq!(summary_field(&out, "retries_4xx"), 2, "{out}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("451"), "the reason is logged: {stderr}");

    // Not marked: the next run, against a server without the fault, sends it.
    let fine = TestServer::start(&[]);
    let out = run_at(&scratch, &fine, &db, &fakeclock(EXPIRY, 4), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    assert_eq!(fine.messages(Some("later@example.com")).len(), 1);
}
