//! Overlapping expiration-mailer runs (a cron job starting again before the last one ended)
//! on one store: each reminder is claimed before it is sent, so it goes out once; a run
//! that died leaves its claim only until the lease ends. On SQLite, and on MariaDB when
//! `MAILER_TEST_MYSQL_URL` is set.

mod common;

use std::process::{Command, Stdio};

use common::databases::{databases, runtime};
use common::{DAY, EXPIRY, Scratch, TestServer, fakeclock, now_seconds, run_at, summary_field};
use mailer_programs::db::{NewCertificate, Store};

const NAG: i64 = 10 * DAY as i64;

/// Registers `contact` with one certificate `serial` expiring at `expires`.
async fn add(store: &Store, contact: &str, serial: &str, expires: i64) {
    let registration = store
        .registration_for_contact(&[format!("mailto:{contact}")])
        .await
        .expect("registration");
    let cert = NewCertificate {
        serial: serial.to_owned(),
        der: vec![0x30, 0x00],
        names: vec![format!("{serial}.example.com")],
        issued: expires - 90 * DAY as i64,
        expires,
    };
    store
        .import_certificate(registration, &cert)
        .await
        .expect("import");
}

fn serials(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn claims_are_exclusive_all_or_none_and_expire() {
    for db in databases("claims") {
        runtime().block_on(async {
            let url = &db.url;
            let store = Store::open(url).await.unwrap();
            let e = EXPIRY as i64;
            for serial in ["c1", "c2", "c3"] {
                add(&store, &format!("{serial}@example.com"), serial, e).await;
            }
            let c1 = serials(&["c1"]);
            assert!(
                store
                    .claim_reminder(&c1, "A", 1000, 2000, NAG)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .claim_reminder(&c1, "B", 1999, 3000, NAG)
                    .await
                    .unwrap(),
                "held by A: {url}"
            );
            // A's lease is over (A died): B takes it; A can no longer give it back.
            assert!(
                store
                    .claim_reminder(&c1, "B", 2000, 3000, NAG)
                    .await
                    .unwrap()
            );
            store.release_claim(&c1, "A").await.unwrap();
            assert_eq!(
                store.claim_of("c1").await.unwrap(),
                Some(("B".to_owned(), 3000))
            );
            // Recorded: the claim ends, and the reminder is no longer due for this window.
            store
                .record_reminder(&c1, e - 5 * DAY as i64, &[], 1)
                .await
                .unwrap();
            assert_eq!(store.claim_of("c1").await.unwrap(), None);
            assert!(
                !store
                    .claim_reminder(&c1, "C", 5000, 6000, NAG)
                    .await
                    .unwrap()
            );

            // All or none: c2 is held, so a reminder of c2 and c3 claims neither.
            let both = serials(&["c2", "c3"]);
            assert!(
                store
                    .claim_reminder(&both[..1], "A", 1000, 2000, NAG)
                    .await
                    .unwrap()
            );
            assert!(
                !store
                    .claim_reminder(&both, "B", 1000, 2000, NAG)
                    .await
                    .unwrap()
            );
            assert_eq!(store.claim_of("c3").await.unwrap(), None, "{url}");
            store.release_claim(&both[..1], "A").await.unwrap();
            assert!(
                store
                    .claim_reminder(&both, "B", 1000, 2000, NAG)
                    .await
                    .unwrap()
            );
            store.close().await;
        });
    }
}

/// Two runs started together on one store, each over two connections to a server that
/// takes 25 ms per message: every contact gets exactly one reminder (each got two before
/// claims), and each run accounts for every reminder as sent or claimed by the other.
#[test]
fn two_runs_at_once_send_each_reminder_once() {
    const CONTACTS: u64 = 40;
    for db in databases("overlap") {
        let server = TestServer::start(&["data-end:delay=25ms"]);
        let scratch = Scratch::new();
        runtime().block_on(async {
            let store = Store::open(&db.url).await.unwrap();
            for i in 0..CONTACTS {
                let expires = (EXPIRY + i * 60) as i64;
                add(
                    &store,
                    &format!("u{i}@example.com"),
                    &format!("s{i}"),
                    expires,
                )
                .await;
            }
            store.close().await;
        });
        let start = || {
            Command::new(env!("CARGO_BIN_EXE_expiration-mailer"))
                .current_dir(scratch.dir.path())
                .env("FAKECLOCK", fakeclock(EXPIRY, 5))
                .env_remove("RUST_LOG")
                .args(["--db", &db.url, "--parallel-sends", "2"])
                .args(server.smtp_flags())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start expiration-mailer")
        };
        let runs = [start(), start()];
        let outputs: Vec<_> = runs
            .into_iter()
            .map(|run| run.wait_with_output().expect("wait"))
            .collect();
        for i in 0..CONTACTS {
            let mail = server.messages(Some(&format!("u{i}@example.com")));
            assert_eq!(mail.len(), 1, "u{i}, {}: {outputs:?}", db.url);
        }
        let mut sent = 0;
        for output in &outputs {
            assert!(output.status.success(), "{output:?}");
            let out = String::from_utf8_lossy(&output.stdout);
            let (mine, theirs) = (
                summary_field(&out, "sent"),
                summary_field(&out, "claimed_by_other_run"),
            );
            assert_eq!(mine + theirs, summary_field(&out, "examined"), "{out}");
            sent += mine;
        }
        assert_eq!(sent, CONTACTS, "{outputs:?}");
    }
}

/// A run killed while holding a claim: the reminder waits until the lease ends, then the
/// next run sends it.
#[test]
fn a_killed_runs_claim_holds_until_its_lease_ends() {
    for db in databases("lease") {
        let server = TestServer::start(&[]);
        let scratch = Scratch::new();
        let killed = serials(&["k1"]);
        let now = now_seconds() as i64;
        runtime().block_on(async {
            let store = Store::open(&db.url).await.unwrap();
            add(&store, "k@example.com", "k1", EXPIRY as i64).await;
            assert!(
                store
                    .claim_reminder(&killed, "killed-run", now, now + 3600, NAG)
                    .await
                    .unwrap()
            );
            store.close().await;
        });
        let out = run_at(&scratch, &server, &db.url, &fakeclock(EXPIRY, 5), &[]);
        assert_eq!(summary_field(&out, "sent"), 0, "{out}");
        assert_eq!(summary_field(&out, "claimed_by_other_run"), 1, "{out}");
        assert!(server.messages(None).is_empty());

        // The hour has passed (set back with SQL rather than waited for).
        runtime().block_on(async {
            let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
            sqlx::query("UPDATE certificate_status SET claimed_until = ? WHERE serial = 'k1'")
                .bind(now - 1)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        });
        let out = run_at(&scratch, &server, &db.url, &fakeclock(EXPIRY, 5), &[]);
        assert_eq!(summary_field(&out, "sent"), 1, "{out}");
        assert_eq!(server.messages(Some("k@example.com")).len(), 1);
    }
}
