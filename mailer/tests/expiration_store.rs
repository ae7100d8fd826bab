//! The store behind both URLs: SQLite always, MySQL/MariaDB when `MAILER_TEST_MYSQL_URL` is
//! set (CI starts a MariaDB on 127.0.0.1 and sets it; under `CI` an unset URL is a failure);
//! each test gets its own database.

mod common;

use common::{DAY, EXPIRY, Scratch, TestServer, certificate, fakeclock, run_at, summary_field};
use mailer::db::{Imported, NewCertificate, Store, fqdn_set_hash};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A database of one backend for one test, dropped afterwards (MariaDB) or deleted with
/// its folder (SQLite).
struct TestDb {
    url: String,
    /// MariaDB: the server URL without a database and the database name, to drop it.
    mysql: Option<(String, String)>,
    _scratch: Option<Scratch>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.mysql.take() {
            runtime().block_on(async {
                if let Ok(pool) = sqlx::AnyPool::connect(&server).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name}"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        }
    }
}

/// SQLite, and MariaDB when configured.
fn databases(test: &str) -> Vec<TestDb> {
    let scratch = Scratch::new();
    let mut dbs = vec![TestDb {
        url: scratch.db_url(),
        mysql: None,
        _scratch: Some(scratch),
    }];
    match std::env::var("MAILER_TEST_MYSQL_URL") {
        Ok(url) if !url.is_empty() => dbs.push(mysql_database(&url, test)),
        // CI starts a MariaDB (.ci/start-mariadb); a run there without one would pass having
        // tested SQLite only, so under CI a missing URL is a failure, not a skip.
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: MAILER_TEST_MYSQL_URL is not set, so the MariaDB part cannot run; \
             run `eval \"$(.ci/start-mariadb)\"` first (CI is set, so this is a failure)"
        ),
        _ => {
            eprintln!(
                "{test}: MariaDB part skipped: MAILER_TEST_MYSQL_URL is not set \
                 (eval \"$(.ci/start-mariadb)\"; with CI set this fails)"
            )
        }
    }
    dbs
}

fn mysql_database(url: &str, test: &str) -> TestDb {
    // The URL names a database the user may use; a fresh one beside it isolates this test.
    let (server, _) = url.rsplit_once('/').expect("mysql://USER:PASS@HOST/DB");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("mailer_{test}_{}_{nanos}", std::process::id());
    runtime().block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(url)
            .await
            .expect("connect to MAILER_TEST_MYSQL_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create a test database");
        pool.close().await;
    });
    TestDb {
        url: format!("{server}/{name}"),
        mysql: Some((format!("{server}/"), name)),
        _scratch: None,
    }
}

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
