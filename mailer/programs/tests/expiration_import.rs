//! `expiration-mailer import`: certificates in, idempotently; bad PEM input named.

mod common;

use std::path::PathBuf;

use assert_cmd::Command;
use common::{DAY, EXPIRY, Scratch, block_on, certificate};
use predicates::prelude::*;

/// Writes `FILE` holding a certificate for `name`, valid for the 90 days up to `EXPIRY`.
fn write_certificate(scratch: &Scratch, file: &str, name: &str, serial: u64) -> PathBuf {
    scratch.write(
        file,
        &certificate(&[name], EXPIRY - 90 * DAY, EXPIRY, serial),
    )
}

/// `expiration-mailer import --db DB --contact CONTACT --pem`, files still to add.
fn import(scratch: &Scratch, db: &str, contact: &str) -> Command {
    let mut cmd = scratch.expiration_mailer();
    cmd.args(["import", "--db", db, "--contact", contact, "--pem"]);
    cmd
}

fn count_certificates(db: &str) -> i64 {
    block_on(async {
        let store = mailer_programs::db::Store::open(db).await.unwrap();
        let n = store.certificate_count().await.unwrap();
        store.close().await;
        n
    })
}

#[test]
fn importing_twice_changes_nothing() {
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let pem = write_certificate(&scratch, "a.pem", "a.example.com", 1);
    let import_again = || {
        import(&scratch, &db, "mailto:a@example.com")
            .arg(&pem)
            .assert()
            .success()
    };
    import_again().stdout(predicate::str::contains(
        "imported 1 certificate(s), 0 already present, registration 1",
    ));
    let before = std::fs::read(scratch.path("store.sqlite")).unwrap();
    import_again().stdout(predicate::str::contains(
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
    import(&scratch, &db, "mailto:b@example.com")
        .arg(&pem)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 2 certificate(s)"));
    let other = write_certificate(&scratch, "three.pem", "three.example.com", 4);
    import(&scratch, &db, "mailto:c@example.com")
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
    let pem = write_certificate(&scratch, "d.pem", "d.example.com", 5);
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
    let good = write_certificate(&scratch, "good.pem", "g.example.com", 6);
    let bad = scratch.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    let output = import(&scratch, &db, "mailto:e@example.com")
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
        import(&scratch, &db, "mailto:e@example.com")
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(name));
    }
    import(&scratch, &db, "mailto:e@example.com")
        .arg("missing.pem")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.pem"));
}

#[test]
fn contact_must_be_mailto() {
    let scratch = Scratch::new();
    let pem = write_certificate(&scratch, "f.pem", "f.example.com", 7);
    import(&scratch, &scratch.db_url(), "tel:+1555")
        .arg(&pem)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a mailto: URL"));
}
