//! Bad input to notify-mailer: one clear line on stderr, exit 2, nothing sent.

mod common;

use std::time::Duration;

use common::{Scratch, TestServer};

fn refused(scratch: &Scratch, server: &TestServer, args: &[&str], expected: &[&str]) {
    let output = scratch
        .notify_mailer()
        .args(args)
        .args(server.smtp_flags())
        .arg("--dry-run=false")
        // A guard for a program that never stops (a runaway template did), not a measure.
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
    for piece in expected {
        assert!(
            stderr.contains(piece),
            "{args:?}: {piece:?} not in {stderr:?}"
        );
    }
    assert!(server.messages(None).is_empty(), "nothing sent");
}

/// The flags of a run sending `body` to `recipients` with this subject.
fn run_args<'a>(recipients: &'a str, body: &'a str, subject: &'a str) -> [&'a str; 6] {
    [
        "--recipients",
        recipients,
        "--body",
        body,
        "--subject",
        subject,
    ]
}

#[test]
fn malformed_csv_row_names_file_and_line() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let body = scratch.write("body.txt", "Hi\n");
    let body = body.to_str().unwrap();
    for (file, contents, expected) in [
        (
            "rows.csv",
            "email,name\na@example.com,A\nb@example.com,B,extra\n",
            &["rows.csv, line 3"][..],
        ),
        (
            "addr.csv",
            "email\na@example.com\nnot-an-address\n",
            &["addr.csv, line 3", "not-an-address"],
        ),
        (
            "header.csv",
            "name,email\nA,a@example.com\n",
            &["header.csv, line 1", "\"email\" or \"id\""],
        ),
        ("ids.csv", "id\n12x\n", &["ids.csv, line 2"]),
    ] {
        let list = scratch.write(file, contents);
        let list = list.to_str().unwrap();
        refused(&scratch, &server, &run_args(list, body, "s"), expected);
    }
    refused(
        &scratch,
        &server,
        &run_args("nope.csv", body, "s"),
        &["nope.csv"],
    );
}

#[test]
fn template_errors_name_template_and_line() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "email,name\na@example.com,A\n");
    let list = list.to_str().unwrap();
    for (file, contents, subject, expected) in [
        (
            "broken.txt",
            "Hello\n\n{% if name %}\nno endif\n",
            "s",
            &["broken.txt", "line"][..],
        ),
        // A column the list does not have.
        (
            "unknown.txt",
            "Hello {{ name }}\nyour {{ plan }}\n",
            "s",
            &["unknown.txt, line 2", "a@example.com"],
        ),
        ("fine.txt", "Hello\n", "{{ x", &["--subject, line 1"]),
    ] {
        let body = scratch.write(file, contents);
        let body = body.to_str().unwrap();
        refused(&scratch, &server, &run_args(list, body, subject), expected);
    }
    refused(
        &scratch,
        &server,
        &run_args(list, "absent.txt", "s"),
        &["absent.txt"],
    );
}

/// A template that would loop 10^10 times, or write more than the output cap, is stopped
/// with a clear error (exit 2) before anything is sent; it used to run until memory ran out.
#[test]
fn runaway_templates_stop_with_exit_2() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "email\na@example.com\n");
    let list = list.to_str().unwrap();
    let kilobyte = "y".repeat(1000);
    let looping = scratch.write(
        "loop.txt",
        "{% for a in range(100000) %}{% for b in range(100000) %}y{% endfor %}{% endfor %}\n",
    );
    let looping = looping.to_str().unwrap();
    refused(
        &scratch,
        &server,
        &run_args(list, looping, "s"),
        &["template", "loop.txt", "--template-fuel"],
    );
    let big = scratch.write("big.txt", &format!("{kilobyte}{kilobyte}\n"));
    let big = big.to_str().unwrap();
    let mut args = run_args(list, big, "s").to_vec();
    args.extend(["--template-max-output", "1KB"]);
    refused(
        &scratch,
        &server,
        &args,
        &["big.txt", "larger than 1000 bytes", "--template-max-output"],
    );
}

#[test]
fn bad_flags_fakeclock_password_and_db() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "id\n1\n");
    let list = list.to_str().unwrap();
    let body = scratch.write("body.txt", "Hello\n");
    let body = body.to_str().unwrap();
    let base = run_args(list, body, "s");
    refused(
        &scratch,
        &server,
        &[&base[..], &["--sleep", "forever"]].concat(),
        &["forever"],
    );
    refused(
        &scratch,
        &server,
        &[&base[..], &["--whatever"]].concat(),
        &["--whatever"],
    );
    refused(
        &scratch,
        &server,
        &[&base[..], &["--db", "oracle://x"]].concat(),
        &["--db"],
    );
    refused(
        &scratch,
        &server,
        &[
            &base[..],
            &["--smtp-user", "u", "--smtp-password-file", "gone.txt"],
        ]
        .concat(),
        &["gone.txt"],
    );
    let output = scratch
        .notify_mailer()
        .env("FAKECLOCK", "Mon Jan 99 15:04:05 UTC 2006")
        .args(base)
        .args(server.smtp_flags())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("FAKECLOCK"));
}
