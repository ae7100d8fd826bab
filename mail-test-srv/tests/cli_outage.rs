//! `--outage-at AFTER:FOR[:MODE]` through the binary: the listener goes away after AFTER,
//! comes back on the same port after FOR, and the events say so; bad values are one line on
//! stderr and exit 2.

mod cli_util;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cli_util::{BIN, connect, line, spawn};
use predicates::prelude::*;

/// Polls `connect` every 20 ms until it gives `want` (refused or not), for up to 10 s.
fn until_connect(addr: &str, refused: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let got = match TcpStream::connect(addr) {
            Ok(_) => false,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => true,
            Err(e) => panic!("connect {addr}: {e}"),
        };
        if got == refused {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("connects to {addr} never became refused={refused}");
}

/// A blocking `GET` on the HTTP port; the body as JSON.
fn http_get(addr: &str, path: &str) -> serde_json::Value {
    serde_json::from_str(&cli_util::http_get(addr, path)).unwrap()
}

#[test]
fn outage_at_goes_away_and_comes_back_on_the_same_port() {
    let running = spawn(&["--outage-at", "1s:1s"]);
    // Up at READY: the outage is a second away.
    let (mut reader, _tcp) = connect(&running.smtp);
    assert!(line(&mut reader).starts_with("220 "));
    until_connect(&running.smtp, true);
    let stats = http_get(&running.http, "/api/v1/stats");
    assert_eq!(stats["outage"]["active"], true, "{stats}");
    assert_eq!(stats["outage"]["mode"], "refuse");
    until_connect(&running.smtp, false);
    let (mut reader, _tcp) = connect(&running.smtp);
    assert!(line(&mut reader).starts_with("220 "));
    let events = http_get(&running.http, "/api/v1/events");
    let seen: Vec<String> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {} {}", e["stage"], e["action"], e["definition"]))
        .collect();
    assert_eq!(
        seen,
        [
            r#""outage" "start" "outage refuse for 1s""#,
            r#""outage" "end" "outage refuse for 1s""#
        ]
    );
}

#[test]
fn bad_outage_at_is_one_line_and_exit_2() {
    for bad in [
        "1s",
        "1s:0s",
        "soon:1s",
        "1s:2h",
        "1s:1s:sideways",
        "1s:1s:refuse:x",
    ] {
        assert_cmd::Command::new(BIN)
            .args(["--outage-at", bad])
            .assert()
            .code(2)
            .stdout("")
            .stderr(
                predicate::str::contains("--outage-at")
                    .and(predicate::function(|s: &str| s.lines().count() == 1)),
            );
    }
}
