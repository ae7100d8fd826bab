//! The store behind both URLs: SQLite always, MySQL/MariaDB when `MAILER_TEST_MYSQL_URL` is
//! set (CI starts a MariaDB on 127.0.0.1 and sets it; under `CI` an unset URL is a failure);
//! each test gets its own database.

mod common;

use common::databases::{databases, runtime};
use common::{DAY, EXPIRY, Scratch, TestServer, certificate, fakeclock, run_at, summary_field};
use mailer_programs::db::{Imported, NewCertificate, Store, fqdn_set_hash};

fn cert(serial: &str, names: &[&str], issued: i64, expires: i64) -> NewCertificate {
    NewCertificate {
        serial: serial.to_owned(),
        der: vec![0x30, 0x00],
        names: names.iter().map(|n| n.to_string()).collect(),
        issued,
        expires,
    }
}

#[test]
fn store_queries_behave_the_same_on_every_backend() {
    for db in databases("queries") {
        runtime().block_on(async {
            let url = &db.url;
            let store = Store::open(url)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            // Opening again finds the schema in place.
            let again = Store::open(url).await.unwrap();
            again.close().await;

            let contact = vec!["mailto:q@example.com".to_owned()];
            let reg = store.registration_for_contact(&contact).await.unwrap();
            assert_eq!(store.registration_for_contact(&contact).await.unwrap(), reg);
            assert_eq!(
                store.registration_contacts(reg).await.unwrap(),
                Some(contact)
            );
            assert_eq!(store.registration_contacts(reg + 100).await.unwrap(), None);

            let e = 2_000_000_000i64;
            for c in [
                cert("0a", &["a.example"], e - 90 * 86_400, e),
                cert("0b", &["b.example"], e - 90 * 86_400, e - 100),
                cert("0c", &["c.example"], e - 90 * 86_400, e + 100),
                cert("0d", &["d.example"], e - 90 * 86_400, e + 10 * 86_400),
                // A renewal of 0c's names.
                cert("0e", &["C.example"], e - 10 * 86_400, e + 80 * 86_400),
            ] {
                assert_eq!(
                    store.import_certificate(reg, &c).await.unwrap(),
                    Imported::Added,
                    "{url}"
                );
            }
            assert_eq!(
                store
                    .import_certificate(reg, &cert("0a", &["x"], 0, 0))
                    .await
                    .unwrap(),
                Imported::AlreadyPresent
            );
            assert_eq!(store.certificate_count().await.unwrap(), 5);

            // Window (e-200, e+100]: 0b, 0a, 0c in expiry order; 0c renewed; the limit cuts.
            let due = store.expiring(e - 200, e + 100, 3600, 10).await.unwrap();
            let serials: Vec<&str> = due.iter().map(|c| c.serial.as_str()).collect();
            assert_eq!(serials, ["0b", "0a", "0c"], "{url}");
            assert_eq!(
                due.iter().map(|c| c.renewed).collect::<Vec<_>>(),
                [false, false, true]
            );
            assert_eq!(due[0].registration_id, reg);
            assert_eq!(due[0].der, vec![0x30, 0x00]);
            assert_eq!(
                store
                    .expiring(e - 200, e + 100, 3600, 2)
                    .await
                    .unwrap()
                    .len(),
                2
            );
            // The lower bound is exclusive, the upper inclusive.
            let serials: Vec<String> = store
                .expiring(e - 100, e, 3600, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.serial)
                .collect();
            assert_eq!(serials, ["0a"]);

            // A reminder sent 5 days before expiry is recent for a 10-day nag, not for 1 day.
            store
                .record_reminder(
                    &["0a".to_owned()],
                    e - 5 * 86_400,
                    &["q@example.com".to_owned()],
                    7,
                )
                .await
                .unwrap();
            assert_eq!(
                store.last_reminder("0a").await.unwrap(),
                Some(e - 5 * 86_400)
            );
            assert!(
                store
                    .expiring(e - 100, e, 10 * 86_400, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(
                store.expiring(e - 100, e, 86_400, 10).await.unwrap().len(),
                1
            );

            // Per-day counts add up per address and day.
            store
                .record_reminder(&[], e, &["q@example.com".to_owned()], 7)
                .await
                .unwrap();
            store
                .record_reminder(&[], e, &["q@example.com".to_owned()], 8)
                .await
                .unwrap();
            assert_eq!(store.sent_on_day("q@example.com", 7).await.unwrap(), 2);
            assert_eq!(store.sent_on_day("q@example.com", 8).await.unwrap(), 1);
            assert_eq!(store.sent_on_day("z@example.com", 7).await.unwrap(), 0);

            assert!(store.revoke("0b").await.unwrap());
            let serials: Vec<String> = store
                .expiring(e - 200, e + 100, 10 * 86_400, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.serial)
                .collect();
            assert_eq!(serials, ["0c"], "revoked 0b, recently reminded 0a: {url}");
            store.close().await;
        });
    }
}

#[test]
fn set_hash_is_stable() {
    // Pinned: a stored hash must still match after an upgrade.
    assert_eq!(
        fqdn_set_hash(&["b.example".into(), "A.example".into()]),
        fqdn_set_hash(&["a.example".into(), "b.example".into()])
    );
}

/// The original scenario through the binary, on each backend.
#[test]
fn scenario_runs_on_every_backend() {
    for db in databases("scenario") {
        let server = TestServer::start(&[]);
        let scratch = Scratch::new();
        let url = db.url.clone();
        let pem = certificate(&["store.example.com"], EXPIRY - 90 * DAY, EXPIRY, 0x77);
        scratch.import(&url, "mailto:store@example.com", "s", &pem);
        scratch.import(&url, "mailto:store@example.com", "s", &pem);
        let mut sent = 0;
        for days in [31, 13, 2, 2] {
            let out = run_at(
                &scratch,
                &server,
                &url,
                &fakeclock(EXPIRY, days),
                &["--parallel-sends", "2"],
            );
            sent += summary_field(&out, "sent");
        }
        assert_eq!(sent, 2, "{url}");
        assert_eq!(server.messages(Some("store@example.com")).len(), 2, "{url}");
    }
}

/// A store that cannot be reached is exit 1 (not a usage error).
#[test]
fn unreachable_store_exits_1() {
    let scratch = Scratch::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = scratch
        .expiration_mailer()
        .args([
            "--db",
            &format!("mysql://u:secret@127.0.0.1:{port}/db"),
            "--from",
            "a@b.example",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(
        !stderr.contains("secret"),
        "the password stays out of messages: {stderr}"
    );
    // A folder that does not exist cannot hold an SQLite file.
    scratch
        .expiration_mailer()
        .args([
            "--db",
            "sqlite://no/such/folder/x.sqlite",
            "--from",
            "a@b.example",
        ])
        .assert()
        .code(1);
}
