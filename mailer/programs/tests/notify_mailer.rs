//! notify-mailer end to end against an in-process mail-test-srv.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{DAY, EXPIRY, Scratch, TestServer, certificate, summary_field};
use predicates::prelude::*;

/// notify-mailer sending `body` to the recipients in `list`; subject and the rest to add.
fn notify(scratch: &Scratch, list: &Path, body: &Path) -> Command {
    let mut cmd = scratch.notify_mailer();
    cmd.arg("--recipients").arg(list).arg("--body").arg(body);
    cmd
}

fn send_flags(server: &TestServer) -> Vec<String> {
    let mut flags = server.smtp_flags();
    flags.push("--dry-run=false".to_owned());
    flags
}

/// 120 recipients (some listed twice) with a per-recipient body, over three connections,
/// while the server closes 35% of the sessions at MAIL: each address gets exactly one
/// message with its own data, the duplicates with all of their rows.
#[test]
fn hundred_and_twenty_recipients_each_get_exactly_one_message_under_faults() {
    let server = TestServer::start(&["mail:close:35%"]);
    let scratch = Scratch::new();
    let mut csv = String::from("email,name,code\n");
    for i in 0..120 {
        csv.push_str(&format!("user{i:03}@example.com,User {i},C{i:03}\n"));
    }
    // A second row for two addresses (one in another case): still one message each.
    csv.push_str("user007@example.com,User 7,EXTRA7\n");
    csv.push_str("USER042@example.com,User 42,EXTRA42\n");
    let list = scratch.write("list.csv", &csv);
    let body = scratch.write(
        "body.txt",
        "Hello {{ name }},\n\nyour codes:{% for row in rows %} {{ row.code }}{% endfor %}\nsent to {{ email }}\n",
    );
    let output = notify(&scratch, &list, &body)
        .args(["--subject", "News for {{ name }}", "--parallel-sends", "3"])
        .args(send_flags(&server))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(summary_field(&stdout, "recipients"), 120, "{stdout}");
    assert_eq!(summary_field(&stdout, "sent"), 120, "{stdout}");
    assert_eq!(summary_field(&stdout, "failed"), 0, "{stdout}");

    let all = server.messages(None);
    assert_eq!(all.len(), 120, "each exactly once");
    for i in 0..120 {
        let address = format!("user{i:03}@example.com");
        let mail = server.messages(Some(&address));
        assert_eq!(mail.len(), 1, "{address}");
        assert_eq!(mail[0]["subject"], format!("News for User {i}"));
        let text = server.text(&mail[0]);
        let codes = match i {
            7 => "C007 EXTRA7".to_owned(),
            42 => "C042 EXTRA42".to_owned(),
            _ => format!("C{i:03}"),
        };
        assert_eq!(
            text.trim_end(),
            format!("Hello User {i},\n\nyour codes: {codes}\nsent to {address}"),
        );
    }
    assert!(server.faults_injected() > 0, "faults were really injected");
}

/// Without --dry-run=false nothing is sent (the original's default).
#[test]
fn dry_run_is_the_default() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "email\na@example.com\nb@example.com\n");
    let body = scratch.write("body.txt", "Hi {{ email }}\n");
    notify(&scratch, &list, &body)
        .args(["--subject", "Hi"])
        .args(server.smtp_flags())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "dry run: would send \"Hi\" to a@example.com",
        ))
        .stdout(predicate::str::contains("dry run: nothing was sent"));
    assert!(server.messages(None).is_empty());
}

/// TSV input and the alphabetical --start (inclusive) / --end (exclusive) range.
#[test]
fn tsv_and_address_range() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let list = scratch.write(
        "list.tsv",
        "email\tnote\nd@example.com\tfour\na@example.com\tone, with a comma\nc@example.com\tthree\nb@example.com\ttwo\n",
    );
    let body = scratch.write("body.txt", "{{ note }}\n");
    let output = notify(&scratch, &list, &body)
        .arg("--tsv")
        .args([
            "--subject",
            "Range",
            "--start",
            "a@example.com",
            "--end",
            "c@example.com",
        ])
        .args(send_flags(&server))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let mail = server.messages(None);
    let mut to: Vec<String> = mail
        .iter()
        .map(|m| m["recipients"][0].as_str().unwrap_or_default().to_owned())
        .collect();
    to.sort();
    assert_eq!(to, ["a@example.com", "b@example.com"]);
    let first = server.messages(Some("a@example.com"));
    assert_eq!(server.text(&first[0]).trim_end(), "one, with a comma");
}

/// An `id` column is resolved through --db to the registration's mailto: contacts.
#[test]
fn registration_ids_resolve_through_the_store() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    let pem = scratch.write(
        "a.pem",
        &certificate(&["a.example.com"], EXPIRY - 90 * DAY, EXPIRY, 1),
    );
    scratch
        .expiration_mailer()
        .args([
            "import",
            "--db",
            &db,
            "--contact",
            "mailto:one@example.com",
            "--contact",
            "mailto:two@example.com",
            "--pem",
        ])
        .arg(&pem)
        .assert()
        .success();
    let list = scratch.write("ids.csv", "id,plan\n1,gold\n");
    let body = scratch.write("body.txt", "Plan {{ plan }} for account {{ id }}\n");
    notify(&scratch, &list, &body)
        .args(["--subject", "Plan", "--db", &db])
        .args(send_flags(&server))
        .assert()
        .success();
    for address in ["one@example.com", "two@example.com"] {
        let mail = server.messages(Some(address));
        assert_eq!(mail.len(), 1, "{address}");
        assert_eq!(server.text(&mail[0]).trim_end(), "Plan gold for account 1");
    }
    // Without a store there is nothing to resolve: exit 1, and no empty store is left behind.
    notify(&scratch, &list, &body)
        .args(["--subject", "Plan"])
        .args(send_flags(&server))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot open the store"));
    assert!(!scratch.path("expiration-mailer.sqlite").exists());
    // An id with no registration is an error naming the line.
    let list = scratch.write("missing.csv", "id\n1\n99\n");
    notify(&scratch, &list, &body)
        .args(["--subject", "Plan", "--db", &db])
        .args(send_flags(&server))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.csv, line 3"));
}

/// A refused address is listed as failed (exit 1); the others are sent.
#[test]
fn failed_addresses_are_listed() {
    let server = TestServer::start(&["rcpt:reply=550:to=nobody@example.com"]);
    let scratch = Scratch::new();
    let list = scratch.write(
        "list.csv",
        "email\nok1@example.com\nnobody@example.com\nok2@example.com\n",
    );
    let body = scratch.write("body.txt", "Hello\n");
    let output = notify(&scratch, &list, &body)
        .args(["--subject", "Hello", "--sleep", "1ms"])
        .args(send_flags(&server))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(summary_field(&stdout, "sent"), 2, "{stdout}");
    assert_eq!(summary_field(&stdout, "failed"), 1, "{stdout}");
    assert!(
        stdout.contains("failed: nobody@example.com: bad address"),
        "{stdout}"
    );
    assert_eq!(server.messages(None).len(), 2);
}

/// Every send refused: exit 1, with the summary and every address listed.
#[test]
fn a_run_where_every_send_failed_exits_1() {
    let server = TestServer::start(&["data-end:reply=554"]);
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "email\na@example.com\nb@example.com\n");
    let body = scratch.write("body.txt", "Hello\n");
    let output = notify(&scratch, &list, &body)
        .args(["--subject", "Hello"])
        .args(send_flags(&server))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(summary_field(&stdout, "sent"), 0, "{stdout}");
    assert_eq!(summary_field(&stdout, "failed"), 2, "{stdout}");
    for address in ["a@example.com", "b@example.com"] {
        assert!(stdout.contains(&format!("failed: {address}: ")), "{stdout}");
    }
}

/// No server at all: exit 1, one line.
#[test]
fn unreachable_server_exits_1() {
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "email\na@example.com\n");
    let body = scratch.write("body.txt", "Hello\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = notify(&scratch, &list, &body)
        .args([
            "--subject",
            "Hello",
            "--dry-run=false",
            "--from",
            "x@example.com",
        ])
        .args([
            "--smtp-server",
            "127.0.0.1",
            "--smtp-port",
            &port.to_string(),
        ])
        .args(["--reconnect-base", "1ms", "--reconnect-max", "2ms"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .contains("cannot connect to the SMTP server"),
        "{stderr}"
    );
}
