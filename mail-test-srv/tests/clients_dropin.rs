//! The clients people really run, unchanged, against an in-process server: a Go program on
//! `net/smtp` that behaves like the original boulder mailer (`test/clients/go-netsmtp`), curl,
//! Python's smtplib and nodemailer (`test/clients/nodemailer`). Each one names its sender with a
//! display name, and each writes that sender on the wire in its own way. Every test checks what
//! the server stored, so it fails when a client's dialogue stops working.
//!
//! A missing client is skipped with a printed reason, unless `CI` is set (`.ci/install-deps`
//! installs them all).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{program, start, stored};
use mail_test_srv::fault::{Action, Stage};
use mail_test_srv::{AuthMode, Config, ServerHandle};
use tokio::process::Command;

/// A client that is still running after this has hung; the test fails instead of waiting forever.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("mail-test-srv sits in the workspace")
}

/// Runs `command` to its end with no stdin, and returns its output, whatever the exit status.
async fn output(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{command:?} still runs after {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    eprintln!(
        "{command:?}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Like [`output`], and the command must succeed.
async fn run(command: &mut Command) -> Output {
    let output = output(command).await;
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The go-netsmtp binary, built once per test run; `None` (skipped) when Go is not installed.
///
/// Built under Cargo's target tmpdir, cache included, so a second run is quick and the build
/// needs neither a writable HOME nor the network (standard library only: `GOPROXY=off`).
fn go_netsmtp() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let go = program("/usr/bin/go")?;
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-netsmtp");
            let binary = out.join("go-netsmtp");
            let build = std::process::Command::new(go)
                .args(["build", "-o"])
                .arg(&binary)
                .arg("./")
                .current_dir(workspace().join("test/clients/go-netsmtp"))
                .env("GOTOOLCHAIN", "local")
                .env("GOFLAGS", "-mod=mod")
                .env("GOPROXY", "off")
                .env("GOENV", "off")
                .env("GOCACHE", out.join("cache"))
                .env("GOPATH", out.join("gopath"))
                .output()
                .expect("go starts");
            assert!(
                build.status.success(),
                "go build of test/clients/go-netsmtp failed: {}",
                String::from_utf8_lossy(&build.stderr)
            );
            Some(binary)
        })
        .clone()
}

/// The `sent=N failed=M reconnects=R` summary go-netsmtp prints last.
fn summary(stdout: &[u8]) -> HashMap<String, u64> {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().expect("a summary line on stdout");
    line.split_whitespace()
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("bad summary {line:?}"));
            (key.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Runs go-netsmtp with the sender `Expiry bot <test@example.com>` and user `expiry`
/// against `server`, one message to each of `recipients`; returns its summary.
async fn go_send(
    binary: &Path,
    server: &ServerHandle,
    recipients: &[String],
) -> HashMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("recipients.txt");
    std::fs::write(&list, recipients.join("\n") + "\n").unwrap();
    let out = run(Command::new(binary)
        .arg("-addr")
        .arg(server.smtp_addr().to_string())
        .args(["-from", "Expiry bot <test@example.com>"])
        .args(["-user", "expiry", "-password", "secret"])
        .arg("-recipients")
        .arg(&list)
        .args(["-max-attempts", "50", "-timeout", "30s"]))
    .await;
    summary(&out.stdout)
}

/// What net/smtp's `c.Mail(from.String())` writes, given EHLO's 8BITMIME and SMTPUTF8.
const GO_MAIL_LINE: &str = r#"MAIL FROM:<"Expiry bot" <test@example.com>> BODY=8BITMIME SMTPUTF8"#;

/// Checks that each recipient holds exactly one message (by recipient and by Message-ID),
/// sent by go-netsmtp as `test@example.com` after AUTH as `expiry`.
fn assert_one_each_from_go(server: &ServerHandle, recipients: &[String]) {
    let mail = stored(server);
    assert_eq!(mail.len(), recipients.len(), "messages stored");
    let mut by_id = HashMap::new();
    for message in &mail {
        // The wire said <"Expiry bot" <test@example.com>>: the envelope keeps the address only.
        assert_eq!(message.from, "test@example.com", "message {}", message.id);
        assert_eq!(message.auth_user.as_deref(), Some("expiry"));
        // The server keeps the lines only the lenient syntax took: proof that the client
        // really sent the boulder quirk, not a plain path.
        assert_eq!(
            message.lenient_lines,
            [GO_MAIL_LINE],
            "message {}",
            message.id
        );
        let id = message.message_id.clone().expect("a Message-ID");
        if let Some(first) = by_id.insert(id.clone(), message.id) {
            panic!(
                "Message-ID {id} stored twice (messages {first} and {})",
                message.id
            );
        }
    }
    for to in recipients {
        let theirs: Vec<_> = mail
            .iter()
            .filter(|m| m.recipients == [to.as_str()])
            .collect();
        assert_eq!(theirs.len(), 1, "messages for {to}");
        let body = String::from_utf8_lossy(&theirs[0].data);
        assert!(
            body.contains(&format!("sent by go-netsmtp to {to}.")),
            "{body}"
        );
        assert_eq!(
            theirs[0].subject.as_deref(),
            Some(format!("Test message for {to}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_net_smtp_resends_through_mail_stage_closes() {
    let Some(binary) = go_netsmtp() else {
        return;
    };
    let server = start(Config {
        faults: vec!["mail:close:35%".parse().unwrap()],
        seed: Some(7),
        auth: AuthMode::AcceptAny,
        ..Config::ephemeral()
    })
    .await;
    let recipients: Vec<String> = (0..200).map(|i| format!("r{i:03}@example.com")).collect();
    let summary = go_send(&binary, &server, &recipients).await;
    assert_eq!(summary["sent"], 200, "{summary:?}");
    assert_eq!(summary["failed"], 0, "{summary:?}");
    assert_one_each_from_go(&server, &recipients);

    // The faults really fired, and each close at MAIL cost the client exactly one reconnect.
    let faults = server.state().faults();
    let close = Action::KINDS.iter().position(|k| *k == "close").unwrap();
    let closes = faults.injected(Stage::Mail, close);
    let events = faults.events().since(0).events;
    let close_events = events
        .iter()
        .filter(|e| e.stage == "mail" && e.action == "close")
        .count() as u64;
    assert!(closes > 0, "no MAIL-stage close was injected");
    assert_eq!(close_events, closes, "{events:?}");
    assert!(summary["reconnects"] > 0, "{summary:?}");
    assert_eq!(summary["reconnects"], closes, "one reconnect per close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_net_smtp_needs_no_server_setup() {
    let Some(binary) = go_netsmtp() else {
        return;
    };
    // The defaults only: net/smtp's client always authenticates and always sends the display
    // name, and both must just work.
    let server = start(Config::ephemeral()).await;
    let recipients: Vec<String> = (0..5).map(|i| format!("d{i}@example.com")).collect();
    let summary = go_send(&binary, &server, &recipients).await;
    assert_eq!(summary["sent"], 5, "{summary:?}");
    assert_eq!(summary["reconnects"], 0, "{summary:?}");
    assert_one_each_from_go(&server, &recipients);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_net_smtp_transcripts_show_the_fault_close_and_the_resend() {
    let Some(binary) = go_netsmtp() else {
        return;
    };
    let server = start(Config {
        faults: vec!["mail:close:first-conns=1".parse().unwrap()],
        ..Config::ephemeral()
    })
    .await;
    let summary = go_send(&binary, &server, &["t@example.com".to_owned()]).await;
    assert_eq!(summary["reconnects"], 1, "{summary:?}");
    let first = common::ended_session(&server, 1).await;
    common::assert_lines_in_order(
        &first.text(),
        &[
            "C: EHLO localhost",
            "C: AUTH PLAIN ",
            "S: 235 2.7.0 authentication successful",
            &format!("C: {GO_MAIL_LINE}"),
            "*: fault mail:close:first-conns=1 (close)",
        ],
    );
    assert_eq!(first.refusals[0].stage, "mail");
    let second = common::ended_session(&server, 2).await;
    common::assert_lines_in_order(
        &second.text(),
        &[
            &format!("C: {GO_MAIL_LINE}"),
            "S: 250 2.1.0 Ok",
            "C: RCPT TO:<t@example.com>",
            "S: 250 2.1.5 Ok",
            "C: DATA",
            "C: <",
            "S: 250 2.0.0 Ok: queued as 1",
            "C: QUIT",
        ],
    );
    assert_eq!(second.auth_user.as_deref(), Some("expiry"));
    assert_eq!(second.helo.as_deref(), Some("localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_net_smtp_under_strict_is_refused_and_the_transcript_says_why() {
    let Some(binary) = go_netsmtp() else {
        return;
    };
    let server = start(Config {
        strict: true,
        ..Config::ephemeral()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("recipients.txt");
    std::fs::write(&list, "s@example.com\n").unwrap();
    let out = output(
        Command::new(&binary)
            .arg("-addr")
            .arg(server.smtp_addr().to_string())
            .args(["-from", "Expiry bot <test@example.com>"])
            .args(["-user", "expiry", "-password", "secret"])
            .arg("-recipients")
            .arg(&list),
    )
    .await;
    assert!(!out.status.success(), "a 501 fails the Go client");
    assert!(stored(&server).is_empty());
    let session = common::ended_session(&server, 1).await;
    common::assert_lines_in_order(
        &session.text(),
        &[&format!("C: {GO_MAIL_LINE}"), "S: 501 5.1.7 "],
    );
    assert_eq!(session.refusals.len(), 1, "{:?}", session.refusals);
    assert_eq!(session.refusals[0].stage, "mail");
    assert!(session.refusals[0].reason.starts_with("501 5.1.7"));
}

/// Sends `message.eml` (From: "Curl Bot" <curl@example.com>) with curl, `--mail-from` as given.
async fn curl_send(curl: &str, server: &ServerHandle, mail_from: &str) {
    let dir = tempfile::tempdir().unwrap();
    let message = dir.path().join("message.eml");
    std::fs::write(
        &message,
        "From: \"Curl Bot\" <curl@example.com>\r\nTo: curl-to@example.com\r\n\
         Subject: sent by curl\r\n\r\nHello from curl.\r\n",
    )
    .unwrap();
    run(Command::new(curl)
        .args(["-sS", "--max-time", "30"])
        .arg("--url")
        .arg(format!("smtp://127.0.0.1:{}", server.smtp_addr().port()))
        .args(["--mail-from", mail_from])
        .args(["--mail-rcpt", "curl-to@example.com"])
        .arg("--upload-file")
        .arg(&message))
    .await;
}

fn assert_one_from_curl(server: &ServerHandle) {
    let mail = stored(server);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].from, "curl@example.com");
    assert_eq!(mail[0].recipients, ["curl-to@example.com"]);
    assert_eq!(mail[0].subject.as_deref(), Some("sent by curl"));
    assert!(mail[0].data.ends_with(b"\r\nHello from curl.\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_a_display_name_in_the_header() {
    let Some(curl) = program("/usr/bin/curl") else {
        return;
    };
    let server = start(Config::ephemeral()).await;
    // As curl's manual has it: an address for the envelope, the name in the From header.
    // On the wire: MAIL FROM:<curl@example.com> SIZE=...
    curl_send(curl, &server, "curl@example.com").await;
    assert_one_from_curl(&server);
    assert!(stored(&server)[0].lenient_lines.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_a_display_name_sender() {
    let Some(curl) = program("/usr/bin/curl") else {
        return;
    };
    let server = start(Config::ephemeral()).await;
    // curl strips one leading '<' and one trailing '>' and brackets what is left, so this
    // goes out as MAIL FROM:<"Curl Bot" <curl@example.com> SIZE=..., one '>' short.
    curl_send(curl, &server, "\"Curl Bot\" <curl@example.com>").await;
    assert_one_from_curl(&server);
    let lines = &stored(&server)[0].lenient_lines;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(r#"MAIL FROM:<"Curl Bot" <curl@example.com> SIZE="#),
        "{lines:?}"
    );
}

/// `sendmail` with a display-name sender (smtplib sends only the address, as
/// `mail FROM:<py@example.com> size=N`), then `send_message`, which takes the sender from the
/// From header.
const PYTHON: &str = r#"
import smtplib, sys
from email.message import EmailMessage
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30) as s:
    s.sendmail('"Py Bot" <py@example.com>', ["py-a@example.com"],
               "From: \"Py Bot\" <py@example.com>\r\nSubject: py sendmail\r\n\r\nhello\r\n")
    m = EmailMessage()
    m["From"] = '"Py Bot" <py@example.com>'
    m["To"] = "py-b@example.com"
    m["Subject"] = "py send_message"
    m.set_content("hello again")
    s.send_message(m)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_with_a_display_name_sender() {
    let Some(python) = program("/usr/bin/python3") else {
        return;
    };
    let server = start(Config::ephemeral()).await;
    run(Command::new(python)
        .args(["-c", PYTHON])
        .arg(server.smtp_addr().port().to_string()))
    .await;
    let mail = stored(&server);
    assert_eq!(mail.len(), 2);
    assert!(mail.iter().all(|m| m.from == "py@example.com"), "{mail:?}");
    assert_eq!(mail[0].recipients, ["py-a@example.com"]);
    assert_eq!(mail[0].subject.as_deref(), Some("py sendmail"));
    assert_eq!(mail[1].recipients, ["py-b@example.com"]);
    assert_eq!(mail[1].subject.as_deref(), Some("py send_message"));
    // smtplib reduces the sender to its address itself: mail FROM:<py@example.com> size=N.
    assert!(mail.iter().all(|m| m.lenient_lines.is_empty()), "{mail:?}");
    // The transcript shows the delivery as smtplib wrote it, lower-case verbs and all.
    let session = common::ended_session(&server, mail[0].connection).await;
    common::assert_lines_in_order(
        &session.text(),
        &[
            "S: 220 localhost ESMTP mail-test-srv",
            "C: ehlo ",
            "S: 250 AUTH PLAIN LOGIN",
            "C: mail FROM:<py@example.com> size=",
            "S: 250 2.1.0 Ok",
            "C: rcpt TO:<py-a@example.com>",
            "S: 250 2.1.5 Ok",
            "C: data",
            "S: 354 End data with <CR><LF>.<CR><LF>",
            "C: <",
            "S: 250 2.0.0 Ok: queued as 1",
            "C: mail FROM:<py@example.com> size=",
            "C: rcpt TO:<py-b@example.com>",
            "S: 250 2.0.0 Ok: queued as 2",
            "C: QUIT",
            "S: 221 2.0.0 Bye",
        ],
    );
    assert_eq!(session.messages, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodemailer_with_a_display_name_sender() {
    let Some(node) = program("/usr/bin/node") else {
        return;
    };
    let client = workspace().join("test/clients/nodemailer");
    let module = client.join("node_modules/nodemailer/package.json");
    if program(module.to_str().unwrap()).is_none() {
        return;
    }
    let server = start(Config {
        auth: AuthMode::AcceptAny,
        ..Config::ephemeral()
    })
    .await;
    run(Command::new(node)
        .arg(client.join("send.js"))
        .arg(server.smtp_addr().port().to_string())
        .args([
            "\"Node Bot\" <node@example.com>",
            "node-to@example.com",
            "sent by nodemailer",
            "node-user",
            "node-pass",
        ]))
    .await;
    let mail = stored(&server);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].from, "node@example.com");
    assert_eq!(mail[0].recipients, ["node-to@example.com"]);
    assert_eq!(mail[0].subject.as_deref(), Some("sent by nodemailer"));
    assert_eq!(mail[0].auth_user.as_deref(), Some("node-user"));
    // nodemailer sends the address alone: MAIL FROM:<node@example.com>.
    assert!(
        mail[0].lenient_lines.is_empty(),
        "{:?}",
        mail[0].lenient_lines
    );
    let raw = String::from_utf8_lossy(&mail[0].data);
    // nodemailer quotes the name only when it must: `From: Node Bot <node@example.com>`.
    assert!(raw.contains("Node Bot <node@example.com>"), "{raw}");
}
