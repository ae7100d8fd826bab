//! `expiration-mailer import`: certificates in, idempotently; bad PEM input named.

mod common;

use common::{DAY, EXPIRY, Scratch, certificate};
use predicates::prelude::*;

fn count_certificates(db: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = mailer::db::Store::open(db).await.unwrap();
        let n = store.certificate_count().await.unwrap();
        store.close().await;
        n
    })
}

#[test]
fn importing_twice_changes_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let pem = scratch.write(
        "a.pem",
        &certificate(&["a.example.com"], EXPIRY - 90 * DAY, EXPIRY, 1),
    );
    let import = || {
        scratch
            .expiration_mailer()
            .args([
                "import",
                "--db",
                &db,
                "--contact",
                "mailto:a@example.com",
                "--pem",
            ])
            .arg(&pem)
            .assert()
            .success()
    };
    import().stdout(predicate::str::contains(
        "imported 1 certificate(s), 0 already present, registration 1",
    ));
    let before = std::fs::read(scratch.path("store.sqlite")).unwrap();
    import().stdout(predicate::str::contains(
        "imported 0 certificate(s), 1 already present, registration 1",
    ));
    assert_eq!(count_certificates(&db), 1);
    // SQLite rewrites nothing when nothing changed.
    assert_eq!(before, std::fs::read(scratch.path("store.sqlite")).unwrap());
}

#[test]
fn one_file_may_hold_several_certificates_and_a_contact_keeps_its_registration() {
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let chain = format!(
        "{}{}",
        certificate(&["one.example.com"], EXPIRY - 90 * DAY, EXPIRY, 2),
        certificate(&["two.example.com"], EXPIRY - 90 * DAY, EXPIRY, 3)
    );
    let pem = scratch.write("chain.pem", &chain);
    scratch
        .expiration_mailer()
        .args([
            "import",
            "--db",
            &db,
            "--contact",
            "mailto:b@example.com",
            "--pem",
        ])
        .arg(&pem)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 2 certificate(s)"));
    let other = scratch.write(
        "three.pem",
        &certificate(&["three.example.com"], EXPIRY - 90 * DAY, EXPIRY, 4),
    );
    scratch
        .expiration_mailer()
        .args([
            "import",
            "--db",
            &db,
            "--contact",
            "mailto:c@example.com",
            "--pem",
        ])
        .arg(&other)
        .assert()
        .success()
        .stdout(predicate::str::contains("registration 2"));
    // --db is accepted before the subcommand too.
    scratch
        .expiration_mailer()
        .args([
            "--db",
            &db,
            "import",
            "--contact",
            "mailto:b@example.com",
            "--pem",
        ])
        .arg(&other)
        .assert()
        .success()
        .stdout(predicate::str::contains("registration 1"));
    assert_eq!(count_certificates(&db), 3);
}

/// The default store is `expiration-mailer.sqlite` in the working folder, created on first use.
#[test]
fn default_store_is_created_in_the_working_folder() {
    let scratch = Scratch::new();
    let pem = scratch.write(
        "d.pem",
        &certificate(&["d.example.com"], EXPIRY - 90 * DAY, EXPIRY, 5),
    );
    scratch
        .expiration_mailer()
        .args(["import", "--contact", "mailto:d@example.com", "--pem"])
        .arg(&pem)
        .assert()
        .success();
    assert!(scratch.path("expiration-mailer.sqlite").exists());
}

#[test]
fn unparseable_pem_names_the_file_and_imports_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let good = scratch.write(
        "good.pem",
        &certificate(&["g.example.com"], EXPIRY - 90 * DAY, EXPIRY, 6),
    );
    let bad = scratch.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let output = scratch
        .expiration_mailer()
        .args([
            "import",
            "--db",
            &db,
            "--contact",
            "mailto:e@example.com",
            "--pem",
        ])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("broken.pem"), "{stderr}");
    assert_eq!(count_certificates(&db), 0, "nothing half-imported");

    for (name, text) in [
        ("empty.pem", ""),
        (
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
    ] {
        let path = scratch.write(name, text);
        scratch
            .expiration_mailer()
            .args([
                "import",
                "--db",
                &db,
                "--contact",
                "mailto:e@example.com",
                "--pem",
            ])
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(name));
    }
    scratch
        .expiration_mailer()
        .args([
            "import",
            "--db",
            &db,
            "--contact",
            "mailto:e@example.com",
            "--pem",
            "missing.pem",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.pem"));
}

#[test]
fn contact_must_be_mailto() {
    let scratch = Scratch::new();
    let pem = scratch.write(
        "f.pem",
        &certificate(&["f.example.com"], EXPIRY - 90 * DAY, EXPIRY, 7),
    );
    scratch
        .expiration_mailer()
        .args([
            "import",
            "--db",
            &scratch.db_url(),
            "--contact",
            "tel:+1555",
            "--pem",
        ])
        .arg(&pem)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a mailto: URL"));
}
