//! The binary as a user runs it: the READY line, flags, usage errors, signals.

mod cli_util;

use std::io::{Read, Write};

use predicates::prelude::*;

use cli_util::{BIN, connect, line, sigterm, spawn, wait_exit};

#[test]
fn ready_line_then_serves_then_sigterm_exits_zero() {
    let mut running = spawn(&["--seed", "99"]);
    assert_eq!(running.seed, 99);
    assert!(running.smtp.starts_with("127.0.0.1:") && running.http.starts_with("127.0.0.1:"));
    let (mut reader, mut writer) = connect(&running.smtp);
    assert!(line(&mut reader).starts_with("220 "));
    writer.write_all(b"EHLO me\r\n").unwrap();
    // Skip the multi-line EHLO reply.
    while !line(&mut reader).starts_with("250 ") {}
    sigterm(&running.child);
    assert!(
        line(&mut reader).starts_with("421 4.3.0"),
        "open session told of the shutdown"
    );
    let status = wait_exit(&mut running.child);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn random_seed_is_printed() {
    let a = spawn(&[]);
    let b = spawn(&[]);
    assert_ne!(a.seed, b.seed);
}

#[test]
fn close_first_alternates_421_and_bare_close() {
    let running = spawn(&["--close-first", "2"]);
    let mail = || {
        let (mut reader, mut writer) = connect(&running.smtp);
        line(&mut reader);
        writer.write_all(b"HELO me\r\nMAIL FROM:<a@b>\r\n").unwrap();
        line(&mut reader);
        (reader, writer)
    };
    // First MAIL: 421, then EOF.
    let (mut reader, _w) = mail();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("421 "), "{rest:?}");
    assert_eq!(rest.lines().count(), 1);
    // Second: a bare close.
    let (mut reader, _w) = mail();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    // Third: served.
    let (mut reader, _w) = mail();
    assert!(line(&mut reader).starts_with("250 "));
}

#[test]
fn bad_flag_is_one_line_and_exit_2() {
    assert_cmd::Command::new(BIN)
        .arg("--no-such-flag")
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("--no-such-flag")
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        );
}

#[test]
fn bad_fault_rule_is_one_line_and_exit_2() {
    assert_cmd::Command::new(BIN)
        .args(["--fault", "mail:explode"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("explode")
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        );
}

#[test]
fn unreadable_certificate_is_one_line_and_exit_2() {
    assert_cmd::Command::new(BIN)
        .args([
            "--tls",
            "starttls",
            "--cert",
            "/nonexistent/c.pem",
            "--key",
            "/nonexistent/k.pem",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("/nonexistent/c.pem")
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        );
}

#[test]
fn close_chance_out_of_range_is_refused() {
    assert_cmd::Command::new(BIN)
        .args(["--close-chance", "101"])
        .assert()
        .code(2);
}

#[test]
fn help_shows_every_default() {
    assert_cmd::Command::new(BIN)
        .arg("--help")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("[default: 127.0.0.1:9380]")
                .and(predicate::str::contains("[default: 127.0.0.1:9381]"))
                .and(predicate::str::contains("[default: 5m]"))
                .and(predicate::str::contains("[default: 10MiB]"))
                .and(predicate::str::contains("[default: 256MiB]"))
                .and(predicate::str::contains("[default: 10m]"))
                .and(predicate::str::contains("--close-chance"))
                .and(predicate::str::contains("--fault")),
        );
}

#[test]
fn generated_certificate_folder_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let running = spawn(&["--tls", "implicit", "--generate-cert", path]);
    for name in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    drop(running);
}
