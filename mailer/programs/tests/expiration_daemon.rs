//! `expiration-mailer --daemon`: runs again every --frequency and stops cleanly on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{DAY, EXPIRY, Scratch, TestServer, certificate, fakeclock, summary_field};

#[test]
fn daemon_repeats_and_stops_on_sigterm() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import(
        &db,
        "mailto:daemon@example.com",
        "d",
        &certificate(&["daemon.example.com"], EXPIRY - 90 * DAY, EXPIRY, 9),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_expiration-mailer"))
        .current_dir(scratch.dir.path())
        .env("FAKECLOCK", fakeclock(EXPIRY, 5))
        .args(["--db", &db, "--daemon", "--frequency", "100ms"])
        .args(server.smtp_flags())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first summary").expect("utf-8");
    assert_eq!(summary_field(&first, "sent"), 1, "{first}");
    let second = lines.next().expect("a second run").expect("utf-8");
    assert_eq!(
        summary_field(&second, "sent"),
        0,
        "already reminded: {second}"
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // Wait for the exit on another thread so a daemon that ignores SIGTERM fails the test
    // instead of hanging it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the daemon exits after SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    assert_eq!(server.messages(Some("daemon@example.com")).len(), 1);
}
