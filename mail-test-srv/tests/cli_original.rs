//! The original Go server's command lines, verbatim: `--closeFirst N` and `-closeFirst N`,
//! `-closeChance N -smtp ADDR -http ADDR`, and `--cert F --key F` without `--tls`.

mod cli_util;
mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;

use cli_util::{connect, http_get, line, spawn, spawn_exactly, spawn_with_stderr};

/// Greets, sends MAIL, and returns what the server sent after the HELO reply until EOF
/// (or until its reply to MAIL, when it answers one).
fn after_mail(smtp: &str) -> String {
    let (mut reader, mut writer) = connect(smtp);
    assert!(line(&mut reader).starts_with("220 "));
    writer.write_all(b"HELO me\r\nMAIL FROM:<a@b>\r\n").unwrap();
    assert!(line(&mut reader).starts_with("250 "));
    let reply = line(&mut reader);
    if reply.is_empty() {
        return reply;
    }
    writer.write_all(b"QUIT\r\n").unwrap();
    reply
}

#[test]
fn close_first_closes_mail_without_a_reply_on_each_of_the_first_connections() {
    for spelling in ["--closeFirst", "-closeFirst"] {
        let running = spawn(&[spelling, "2"]);
        for n in 1..=2 {
            assert_eq!(after_mail(&running.smtp), "", "{spelling}: connection {n}");
        }
        for n in 3..=4 {
            let reply = after_mail(&running.smtp);
            assert!(
                reply.starts_with("250 "),
                "{spelling}: connection {n}: {reply:?}"
            );
        }
    }
    // `--closeFirst 5`, as the original start script typed it.
    let running = spawn(&["--closeFirst", "5"]);
    let replies: Vec<String> = (0..6).map(|_| after_mail(&running.smtp)).collect();
    assert!(replies[..5].iter().all(String::is_empty), "{replies:?}");
    assert!(replies[5].starts_with("250 "), "{replies:?}");
}

#[test]
fn go_spellings_of_close_chance_and_addresses() {
    let running = spawn_exactly(&[
        "-closeChance",
        "35",
        "-smtp",
        "127.0.0.1:0",
        "-http",
        "127.0.0.1:0",
        "-seed=7",
    ]);
    let plan = http_get(&running.http, "/api/v1/faults");
    assert!(
        plan.contains(r#"{"name":"mail-close-1","stage":"mail","action":"close","chance":35}"#),
        "{plan}"
    );
    let replies: Vec<String> = (0..40).map(|_| after_mail(&running.smtp)).collect();
    let closed = replies.iter().filter(|r| r.is_empty()).count();
    let served = replies.iter().filter(|r| r.starts_with("250 ")).count();
    assert_eq!(closed + served, 40, "{replies:?}");
    // Seed 7 is fixed, so this is exact run after run; 35% of 40 is 14.
    assert!((5..=25).contains(&closed), "closed {closed} of 40");
}

/// Reads the greeting over implicit TLS, trusting `ca`.
fn implicit_tls_greeting(smtp: &str, ca: &Path) -> String {
    let config = common::trusting(&std::fs::read(ca).unwrap());
    let mut conn = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    let mut tcp = TcpStream::connect(smtp).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    let mut greeting = [0u8; 256];
    let n = tls.read(&mut greeting).unwrap();
    String::from_utf8_lossy(&greeting[..n]).into_owned()
}

#[test]
fn tls_material_without_tls_serves_implicit_tls_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let log = dir.path().join("stderr");
    // `--generate-cert` alone used to write nothing: now it implies implicit TLS.
    let generated = spawn_with_stderr(
        &[
            "--smtp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--generate-cert",
        ]
        .into_iter()
        .chain([certs.to_str().unwrap()])
        .collect::<Vec<_>>(),
        Stdio::null(),
    );
    let ca = certs.join("ca.pem");
    assert!(implicit_tls_greeting(&generated.smtp, &ca).starts_with("220 "));
    drop(generated);

    let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
    let running = spawn_with_stderr(
        &[
            "-smtp",
            "127.0.0.1:0",
            "-http",
            "127.0.0.1:0",
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
        Stdio::from(File::create(&log).unwrap()),
    );
    assert!(implicit_tls_greeting(&running.smtp, &ca).starts_with("220 "));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr
            .lines()
            .next()
            .is_some_and(|l| l.contains("serving implicit TLS")),
        "{stderr}"
    );
}

#[test]
fn tls_material_with_tls_none_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_cmd::Command::new(cli_util::BIN)
        .args(["--tls", "none", "--generate-cert"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicates::function::function(|s: &str| {
            s.lines().count() == 1 && s.contains("--tls none")
        }));
}

#[test]
fn help_lists_the_go_spellings() {
    let output = assert_cmd::Command::new(cli_util::BIN)
        .arg("--help")
        .assert()
        .success();
    let help = String::from_utf8_lossy(&output.get_output().stdout).into_owned();
    for spelling in [
        "--closeFirst",
        "closeChance",
        "-closeFirst N",
        "-smtp ADDR",
        "--strict",
    ] {
        assert!(
            help.contains(spelling),
            "{spelling} missing from --help:\n{help}"
        );
    }
}

#[test]
fn a_mistyped_go_flag_is_one_line_with_a_suggestion() {
    assert_cmd::Command::new(cli_util::BIN)
        .args(["-closefirst", "5"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicates::function::function(|s: &str| {
            s.lines().count() == 1
                && s.contains("'--closefirst'")
                && s.contains("similar flag exists: '--close")
        }));
}
