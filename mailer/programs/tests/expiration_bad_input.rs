//! Bad input to expiration-mailer: each is one clear line on stderr and exit 2, before any
//! mail is sent.

mod common;

use std::time::Duration;

use common::{DAY, EXPIRY, Scratch, TestServer, certificate, fakeclock};

/// Runs expiration-mailer with `args` (and FAKECLOCK when given) and checks exit 2 and a
/// single stderr line containing every `expected` piece; returns that line.
fn refused(scratch: &Scratch, fakeclock: Option<&str>, args: &[&str], expected: &[&str]) -> String {
    let mut cmd = scratch.expiration_mailer();
    if let Some(value) = fakeclock {
        cmd.env("FAKECLOCK", value);
    }
    // A guard for a program that never stops (a runaway template did), not a measure.
    let output = cmd
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: one line, got {stderr:?}"
    );
    for piece in expected {
        assert!(
            stderr.contains(piece),
            "{args:?}: {piece:?} not in {stderr:?}"
        );
    }
    stderr
}

#[test]
fn unknown_flag() {
    let scratch = Scratch::new();
    refused(&scratch, None, &["--frobnicate"], &["--frobnicate"]);
    refused(
        &scratch,
        None,
        &["--nag-times", "soon", "--from", "a@b.example"],
        &["soon"],
    );
}

#[test]
fn bad_db_url() {
    let scratch = Scratch::new();
    for (url, expected) in [
        ("postgres://u@h/db", &["--db", "postgres"][..]),
        ("sqlite://", &["--db"]),
        ("not a url", &["--db"]),
    ] {
        refused(
            &scratch,
            None,
            &["--db", url, "--from", "a@b.example"],
            expected,
        );
    }
}

#[test]
fn unparseable_fakeclock() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        Some("next tuesday"),
        &["--from", "a@b.example"],
        &["FAKECLOCK", "next tuesday"],
    );
}

#[test]
fn unreadable_password_file() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        None,
        &[
            "--from",
            "a@b.example",
            "--smtp-user",
            "u",
            "--smtp-password-file",
            "no-such-secret",
        ],
        &["no-such-secret"],
    );
}

#[test]
fn unreadable_root_ca() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        None,
        &[
            "--from",
            "a@b.example",
            "--smtp-tls",
            "starttls",
            "--smtp-root-ca",
            "no-ca.pem",
        ],
        &["no-ca.pem"],
    );
    refused(
        &scratch,
        None,
        &["--from", "a@b.example", "--smtp-tls", "ssl"],
        &["ssl"],
    );
}

#[test]
fn missing_from() {
    let scratch = Scratch::new();
    refused(&scratch, None, &[], &["--from"]);
}

/// Like `refused`, 5 days before `EXPIRY`, with `--db DB FLAG VALUE` and the SMTP flags.
fn refused_at_5_days(
    scratch: &Scratch,
    server: &TestServer,
    db: &str,
    flag: &str,
    value: &str,
    expected: &[&str],
) {
    let mut args = vec!["--db", db, flag, value];
    let smtp = server.smtp_flags();
    args.extend(smtp.iter().map(String::as_str));
    refused(scratch, Some(&fakeclock(EXPIRY, 5)), &args, expected);
}

/// A template error names the template and the line; nothing is sent even though a
/// reminder is due.
#[test]
fn template_errors_name_template_and_line() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import(
        &db,
        "mailto:t@example.com",
        "t",
        &certificate(&["t.example.com"], EXPIRY - 90 * DAY, EXPIRY, 1),
    );
    let template = scratch.write(
        "reminder.txt",
        "Hello,\n\nyour names:\n{% for d in domains %}{{ d }\n{% endfor %}\n",
    );
    let template = template.to_string_lossy().into_owned();
    refused_at_5_days(
        &scratch,
        &server,
        &db,
        "--email-template",
        &template,
        &["reminder.txt", "line 4"],
    );

    // A misspelt variable is caught before sending too.
    let misspelt = scratch.write("misspelt.txt", "Expiring:\n{{ domians }}\n");
    let misspelt = misspelt.to_string_lossy().into_owned();
    refused_at_5_days(
        &scratch,
        &server,
        &db,
        "--email-template",
        &misspelt,
        &["misspelt.txt", "line 2"],
    );

    refused_at_5_days(
        &scratch,
        &server,
        &db,
        "--subject",
        "Expiry {% if %}",
        &["--subject", "line 1"],
    );
    assert!(server.messages(None).is_empty());
}

/// A template that would loop 10^10 times, or write more than the output cap, is stopped
/// with a clear error (exit 2) before anything is sent; it used to run until memory ran out.
#[test]
fn runaway_templates_stop_with_exit_2() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import(
        &db,
        "mailto:t@example.com",
        "t",
        &certificate(&["t.example.com"], EXPIRY - 90 * DAY, EXPIRY, 1),
    );
    let kilobyte = "y".repeat(1000);
    let looping = scratch.write(
        "loop.txt",
        "{% for a in range(100000) %}{% for b in range(100000) %}y{% endfor %}{% endfor %}\n",
    );
    refused_at_5_days(
        &scratch,
        &server,
        &db,
        "--email-template",
        &looping.to_string_lossy(),
        &["loop.txt", "--template-fuel"],
    );
    refused_at_5_days(
        &scratch,
        &server,
        &db,
        "--subject",
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        &["--subject", "--template-fuel"],
    );
    let big = scratch.write("big.txt", &format!("{kilobyte}{kilobyte}\n"));
    let mut args = vec!["--db", &db, "--email-template"];
    let big = big.to_string_lossy();
    args.extend([big.as_ref(), "--template-max-output", "1KB"]);
    let smtp = server.smtp_flags();
    args.extend(smtp.iter().map(String::as_str));
    refused(
        &scratch,
        Some(&fakeclock(EXPIRY, 5)),
        &args,
        &["big.txt", "larger than 1000 bytes"],
    );
    assert!(server.messages(None).is_empty());
}

/// --subject and --email-template replace the built-in templates.
#[test]
fn custom_templates_are_used() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let db = scratch.db_url();
    scratch.import(
        &db,
        "mailto:c@example.com",
        "c",
        &certificate(
            &["c.example.com", "d.example.com"],
            EXPIRY - 90 * DAY,
            EXPIRY,
            2,
        ),
    );
    let template = scratch.write(
        "custom.txt",
        "Names: {{ domains | join(\", \") }}; expires {{ expiration_date }}.\n",
    );
    let template = template.to_string_lossy().into_owned();
    common::run_at(
        &scratch,
        &server,
        &db,
        &fakeclock(EXPIRY, 5),
        &[
            "--email-template",
            &template,
            "--subject",
            "Renew {{ domains[0] }} within {{ days_left }} days",
        ],
    );
    let mail = server.messages(Some("c@example.com"));
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0]["subject"], "Renew c.example.com within 5 days");
    assert_eq!(
        server.text(&mail[0]).trim_end(),
        "Names: c.example.com, d.example.com; expires 2030-01-01."
    );
}
