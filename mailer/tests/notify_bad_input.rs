//! Bad input to notify-mailer: one clear line on stderr, exit 2, nothing sent.

mod common;

use common::{Scratch, TestServer};

fn refused(scratch: &Scratch, server: &TestServer, args: &[&str], expected: &[&str]) {
    let output = scratch
        .notify_mailer()
        .args(args)
        .args(server.smtp_flags())
        .arg("--dry-run=false")
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

#[test]
fn malformed_csv_row_names_file_and_line() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let body = scratch.write("body.txt", "Hi\n");
    let body = body.to_str().unwrap();
    let list = scratch.write(
        "rows.csv",
        "email,name\na@example.com,A\nb@example.com,B,extra\n",
    );
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list.to_str().unwrap(),
            "--body",
            body,
            "--subject",
            "s",
        ],
        &["rows.csv, line 3"],
    );
    let list = scratch.write("addr.csv", "email\na@example.com\nnot-an-address\n");
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list.to_str().unwrap(),
            "--body",
            body,
            "--subject",
            "s",
        ],
        &["addr.csv, line 3", "not-an-address"],
    );
    let list = scratch.write("header.csv", "name,email\nA,a@example.com\n");
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list.to_str().unwrap(),
            "--body",
            body,
            "--subject",
            "s",
        ],
        &["header.csv, line 1", "\"email\" or \"id\""],
    );
    let list = scratch.write("ids.csv", "id\n12x\n");
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list.to_str().unwrap(),
            "--body",
            body,
            "--subject",
            "s",
        ],
        &["ids.csv, line 2"],
    );
    refused(
        &scratch,
        &server,
        &["--recipients", "nope.csv", "--body", body, "--subject", "s"],
        &["nope.csv"],
    );
}

#[test]
fn template_errors_name_template_and_line() {
    let server = TestServer::start(&[]);
    let scratch = Scratch::new();
    let list = scratch.write("list.csv", "email,name\na@example.com,A\n");
    let list = list.to_str().unwrap();
    let body = scratch.write("broken.txt", "Hello\n\n{% if name %}\nno endif\n");
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list,
            "--body",
            body.to_str().unwrap(),
            "--subject",
            "s",
        ],
        &["broken.txt", "line"],
    );
    // A column the list does not have.
    let body = scratch.write("unknown.txt", "Hello {{ name }}\nyour {{ plan }}\n");
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list,
            "--body",
            body.to_str().unwrap(),
            "--subject",
            "s",
        ],
        &["unknown.txt, line 2", "a@example.com"],
    );
    let body = scratch.write("fine.txt", "Hello\n");
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list,
            "--body",
            body.to_str().unwrap(),
            "--subject",
            "{{ x",
        ],
        &["--subject, line 1"],
    );
    refused(
        &scratch,
        &server,
        &[
            "--recipients",
            list,
            "--body",
            "absent.txt",
            "--subject",
            "s",
        ],
        &["absent.txt"],
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
    let base = ["--recipients", list, "--body", body, "--subject", "s"];
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
