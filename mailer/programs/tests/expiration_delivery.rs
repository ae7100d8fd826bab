//! expiration-mailer's delivery rules against an in-process mail-test-srv, on an SQLite
//! store: bad addresses, missing contacts, the per-day limit, --cert-limit, parallel sends,
//! dry runs, an unreachable server.

mod common;

use common::{
    DAY, EXPIRY, Scratch, TestServer, block_on, certificate, fakeclock, run_at, run_output,
    summary_field,
};

/// A 550 for the address marks the certificate (no retry); the run still exits 0, and other
/// registrations get their reminders.
#[test]
fn bad_address_marks_and_is_not_retried() {
    let server = TestServer::start(&["rcpt:reply=550:to=gone@example.com"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(
        &db,
        "mailto:gone@example.com",
        "bad.example.com",
        EXPIRY,
        20,
    );
    scratch.import_until(
        &db,
        "mailto:fine@example.com",
        "good.example.com",
        EXPIRY + 60,
        21,
    );
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "bad_addresses"), 1, "{out}");
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    assert_eq!(summary_field(&out, "failures"), 0, "{out}");
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 4), &[]);
    assert_eq!(
        summary_field(&out, "examined"),
        0,
        "the bad address is not retried: {out}"
    );
    assert_eq!(server.messages(Some("fine@example.com")).len(), 1);
    assert!(server.messages(Some("gone@example.com")).is_empty());
}

/// 450 on RCPT is one of the bad-address codes, but temporary: the reminder is not marked,
/// the run fails (exit 1), and the next run sends it. It used to be marked done for good.
#[test]
fn a_temporary_refusal_is_retried_on_the_next_run() {
    let busy = TestServer::start(&["rcpt:reply=450:to=busy@example.com"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(
        &db,
        "mailto:busy@example.com",
        "busy.example.com",
        EXPIRY,
        40,
    );
    let output = run_output(&scratch, &busy, &db, &fakeclock(EXPIRY, 5), &[]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(summary_field(&out, "failures"), 1, "{out}");
    assert_eq!(summary_field(&out, "bad_addresses"), 0, "{out}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("450"), "the reason is logged: {stderr}");

    // The mailbox is fine again (another server without the fault): the next run sends.
    let fine = TestServer::start(&[]);
    let out = run_at(&scratch, &fine, &db, &fakeclock(EXPIRY, 4), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    assert_eq!(fine.messages(Some("busy@example.com")).len(), 1);
}

/// When every reminder fails, the run says so and exits 1 (it used to exit 0 with
/// `sent=0 failures=2`); the reminders stay due.
#[test]
fn a_run_where_every_send_failed_exits_1() {
    let server = TestServer::start(&["data-end:reply=554"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    for i in 0..2u64 {
        scratch.import_until(
            &db,
            &format!("mailto:fail{i}@example.com"),
            &format!("fail{i}.example.com"),
            EXPIRY + i * 60,
            50 + i,
        );
    }
    let output = run_output(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(summary_field(&out, "sent"), 0, "{out}");
    assert_eq!(summary_field(&out, "failures"), 2, "{out}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("2 reminder(s) not delivered"),
        "{stderr}"
    );
    let fine = TestServer::start(&[]);
    let out = run_at(&scratch, &fine, &db, &fakeclock(EXPIRY, 4), &[]);
    assert_eq!(summary_field(&out, "sent"), 2, "still due: {out}");
}

/// A registration without a usable mailto: contact is marked like a bad address.
#[test]
fn no_usable_contact_is_marked() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    // import insists on mailto:, so the contacts are changed with SQL afterwards, as
    // another tool (or a damaged row) would leave them.
    scratch.import_until(&db, "mailto:one@example.com", "tel.example.com", EXPIRY, 30);
    scratch.import_until(
        &db,
        "mailto:two@example.com",
        "junk.example.com",
        EXPIRY,
        31,
    );
    scratch.import_until(
        &db,
        "mailto:fine@example.com",
        "fine.example.com",
        EXPIRY,
        32,
    );
    block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db).await.unwrap();
        sqlx::query("UPDATE registrations SET contact = '[\"tel:+15550100\"]' WHERE id = 1")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE registrations SET contact = 'not json' WHERE id = 2")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "bad_addresses"), 2, "{out}");
    assert_eq!(
        summary_field(&out, "sent"),
        1,
        "the others still get theirs: {out}"
    );
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "examined"), 0, "{out}");
    assert_eq!(server.messages(None).len(), 1);
}

/// `--mails-per-address-per-day 1`: a registration whose only address already had its
/// message today waits for the next day, also across separate runs; a registration with
/// another address still reaches that one.
#[test]
fn per_address_daily_limit_holds_across_runs() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let import = |contacts: &[&str], name: &str, expires: u64, serial: u64| {
        let pem = certificate(
            &[&format!("{name}.example.com")],
            EXPIRY - 90 * DAY,
            expires,
            serial,
        );
        let path = scratch.write(&format!("{name}.pem"), &pem);
        let mut cmd = scratch.expiration_mailer();
        cmd.args(["import", "--db", &db]);
        for contact in contacts {
            cmd.args(["--contact", contact]);
        }
        cmd.arg("--pem").arg(&path).assert().success();
    };
    // Three registrations (different contact lists) sharing one address.
    import(&["mailto:busy@example.com"], "a", EXPIRY, 40);
    import(
        &["mailto:busy@example.com", "mailto:other@example.com"],
        "b",
        EXPIRY + 100,
        41,
    );
    import(&["mailto:BUSY@example.com"], "c", EXPIRY + 200, 42);
    let limit = ["--mails-per-address-per-day", "1"];
    // 5 days before expiry at noon, later the same day, then the next day.
    let noon = EXPIRY - 5 * DAY + DAY / 2;
    let out = run_at(&scratch, &server, &db, &common::rfc3339(noon), &limit);
    assert_eq!(summary_field(&out, "sent"), 2, "{out}");
    assert_eq!(summary_field(&out, "deferred_by_limit"), 1, "{out}");
    assert_eq!(server.messages(Some("busy@example.com")).len(), 1);
    assert_eq!(server.messages(Some("other@example.com")).len(), 1);

    let out = run_at(
        &scratch,
        &server,
        &db,
        &common::rfc3339(noon + 3600),
        &limit,
    );
    assert_eq!(
        summary_field(&out, "sent"),
        0,
        "the count is kept in the store: {out}"
    );
    assert_eq!(summary_field(&out, "deferred_by_limit"), 1, "{out}");

    let out = run_at(&scratch, &server, &db, &common::rfc3339(noon + DAY), &limit);
    assert_eq!(summary_field(&out, "sent"), 1, "a new day: {out}");
    assert_eq!(server.messages(None).len(), 3);
}

/// Many registrations over four connections, with the server closing a third of the
/// sessions at MAIL: every contact gets exactly one reminder.
#[test]
fn parallel_sends_deliver_each_reminder_once() {
    let server = TestServer::start(&["mail:close:35%"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    for i in 0..24u64 {
        scratch.import_until(
            &db,
            &format!("mailto:user{i}@example.com"),
            &format!("site{i}.example.com"),
            EXPIRY + i * 60,
            100 + i,
        );
    }
    let out = run_at(
        &scratch,
        &server,
        &db,
        &fakeclock(EXPIRY, 5),
        &["--parallel-sends", "4"],
    );
    assert_eq!(summary_field(&out, "sent"), 24, "{out}");
    assert_eq!(summary_field(&out, "failures"), 0, "{out}");
    for i in 0..24 {
        let mail = server.messages(Some(&format!("user{i}@example.com")));
        assert_eq!(mail.len(), 1, "user{i}: {mail:?}");
    }
    assert!(
        server.faults_injected() > 0,
        "the server really closed connections"
    );
}

/// --dry-run sends nothing and records nothing: a real run afterwards still sends.
#[test]
fn dry_run_sends_and_records_nothing() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(&db, "mailto:dry@example.com", "dry.example.com", EXPIRY, 50);
    let out = run_at(
        &scratch,
        &server,
        &db,
        &fakeclock(EXPIRY, 5),
        &["--dry-run"],
    );
    assert!(
        out.contains("dry run: would remind dry@example.com"),
        "{out}"
    );
    assert!(server.messages(None).is_empty());
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    assert_eq!(server.messages(Some("dry@example.com")).len(), 1);
}

/// The server cannot be reached at all: exit 1 with one line on stderr; nothing recorded.
#[test]
fn unreachable_server_exits_1() {
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(&db, "mailto:x@example.com", "x.example.com", EXPIRY, 70);
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = scratch
        .expiration_mailer()
        .env("FAKECLOCK", fakeclock(EXPIRY, 5))
        .args([
            "--db",
            &db,
            "--smtp-server",
            "127.0.0.1",
            "--smtp-port",
            &port.to_string(),
        ])
        .args([
            "--from",
            "bot@example.com",
            "--reconnect-base",
            "1ms",
            "--reconnect-max",
            "2ms",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("expiration-mailer: error: cannot connect to the SMTP server"),
        "{stderr}"
    );
    block_on(async {
        let store = mailer_programs::db::Store::open(&db).await.unwrap();
        assert_eq!(store.last_reminder("46").await.unwrap(), None);
        store.close().await;
    });
}

/// --cert-limit bounds the certificates examined per window and run; the rest wait for the
/// next run, oldest expiry first.
#[test]
fn cert_limit_caps_each_run() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    for i in 0..3u64 {
        scratch.import_until(
            &db,
            &format!("mailto:limit{i}@example.com"),
            &format!("l{i}.example.com"),
            EXPIRY + i * 60,
            80 + i,
        );
    }
    let now = fakeclock(EXPIRY, 5);
    let out = run_at(&scratch, &server, &db, &now, &["--cert-limit", "2"]);
    assert_eq!(summary_field(&out, "examined"), 2, "{out}");
    assert_eq!(server.messages(Some("limit0@example.com")).len(), 1);
    assert_eq!(server.messages(Some("limit1@example.com")).len(), 1);
    assert!(server.messages(Some("limit2@example.com")).is_empty());
    let out = run_at(&scratch, &server, &db, &now, &["--cert-limit", "2"]);
    assert_eq!(summary_field(&out, "examined"), 1, "{out}");
    assert_eq!(server.messages(Some("limit2@example.com")).len(), 1);
}

/// The server stores the message but its reply is lost (`data-end:accept-close`): the
/// mailer sends it again, so the contact may get a duplicate (same Message-ID) but never
/// misses the reminder, and it is recorded once.
#[test]
fn lost_reply_repeats_rather_than_skips() {
    let server = TestServer::start(&["data-end:accept-close:first=1"]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import_until(
        &db,
        "mailto:lost@example.com",
        "lost.example.com",
        EXPIRY,
        90,
    );
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "sent"), 1, "{out}");
    let mail = server.messages(Some("lost@example.com"));
    assert_eq!(mail.len(), 2, "the first copy was stored before the close");
    assert_eq!(mail[0]["message_id"], mail[1]["message_id"]);
    let out = run_at(&scratch, &server, &db, &fakeclock(EXPIRY, 5), &[]);
    assert_eq!(summary_field(&out, "examined"), 0, "recorded once: {out}");
}
