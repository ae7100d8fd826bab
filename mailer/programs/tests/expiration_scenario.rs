//! expiration-mailer end to end against an in-process mail-test-srv, on an SQLite store:
//! the original integration scenario, what a reminder says, renewals, revocations.

mod common;

use common::{
    DAY, EXPIRY, Scratch, TestServer, block_on, certificate, fakeclock, run_at, summary_field,
};

/// The original: a certificate expiring at E, runs at E-31d, E-13d, E-2d give exactly two
/// reminders naming its domains and date; a fourth run at E-2d gives none.
#[test]
fn three_runs_give_two_reminders_and_a_repeat_gives_none() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let pem = certificate(
        &["www.example.net", "example.net"],
        EXPIRY - 90 * DAY,
        EXPIRY,
        0x1001,
    );
    scratch.import(&db, "mailto:owner@example.net", "cert", &pem);

    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 31), &[]);
    assert_eq!(summary_field(&out, "sent"), 0, "{out}");
    assert!(server.messages(None).is_empty());

    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 13), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 2), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 2), &[]);
    assert_eq!(summary_field(&out, "sent"), 0, "{out}");
    assert_eq!(summary_field(&out, "examined"), 0, "{out}");

    let mail = server.messages(Some("owner@example.net"));
    assert_eq!(mail.len(), 2, "{mail:?}");
    for message in &mail {
        let subject = message["subject"].as_str().unwrap_or_default();
        assert!(subject.contains("example.net"), "{subject}");
        assert!(subject.contains("(and 1 more)"), "{subject}");
        let text = server.text(message);
        assert!(text.contains("  example.net\n"), "{text}");
        assert!(text.contains("  www.example.net\n"), "{text}");
        assert!(text.contains("2030-01-01"), "{text}");
    }
    assert!(
        server.text(&mail[0]).contains("expire in\n13 days"),
        "{}",
        server.text(&mail[0])
    );
    assert!(
        server.text(&mail[1]).contains("expire in\n2 days"),
        "{}",
        server.text(&mail[1])
    );
}

/// One message per registration, naming every due certificate's domains and the soonest
/// expiry; long name lists are capped with "and N more".
#[test]
fn one_message_per_registration_with_all_domains() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let many: Vec<String> = (0..12).map(|i| format!("host{i:02}.example.org")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    scratch.import(
        &db,
        "mailto:ops@example.org",
        "a",
        &certificate(&many, EXPIRY - 90 * DAY, EXPIRY, 1),
    );
    scratch.import_until(
        &db,
        "mailto:ops@example.org",
        "api.example.org",
        EXPIRY - DAY,
        2,
    );
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "examined"), 2, "{out}");
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    let mail = server.messages(Some("ops@example.org"));
    assert_eq!(mail.len(), 1);
    let text = server.text(&mail[0]);
    assert!(text.contains("2029-12-31"), "the soonest expiry: {text}");
    assert!(text.contains("  api.example.org\n"), "{text}");
    assert!(text.contains("(and 3 more)"), "13 names, 10 listed: {text}");
    assert!(
        mail[0]["subject"]
            .as_str()
            .unwrap_or_default()
            .contains("(and 12 more)")
    );
}

/// A certificate renewed since (same names, issued later) gets no reminder but is marked.
#[test]
fn renewed_certificates_are_skipped_and_marked() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(&db, "mailto:r@example.com", "renew.example.com", EXPIRY, 10);
    scratch.import(
        &db,
        "mailto:r@example.com",
        "new",
        &certificate(
            &["RENEW.example.com"],
            EXPIRY - 30 * DAY,
            EXPIRY + 60 * DAY,
            11,
        ),
    );
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "renewed"), 1, "{out}");
    assert_eq!(summary_field(&out, "sent"), 0, "{out}");
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(
        summary_field(&out, "examined"),
        0,
        "marked, not examined again: {out}"
    );
    assert!(server.messages(None).is_empty());
}

/// Revoked certificates get no reminder.
#[test]
fn revoked_certificates_are_ignored() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(&db, "mailto:rev@example.com", "rev.example.com", EXPIRY, 60);
    block_on(async {
        let store = mailer_programs::db::Store::open(&db).await.unwrap();
        assert!(store.revoke("3c").await.unwrap());
        store.close().await;
    });
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "examined"), 0, "{out}");
}
