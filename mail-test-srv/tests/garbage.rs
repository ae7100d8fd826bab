//! Hostile input: random byte streams (binary garbage mixed with real commands, CRLFs, dots
//! and over-long lines) thrown at one live server. Whatever arrives, every byte the server
//! sends back is a well-formed reply line, the connection ends when the client does (with
//! or without a fault plan firing at every stage), and afterwards a normal client still delivers.

mod common;

use std::time::Duration;

use common::{Client, stored};
use mail_test_srv::{AuthMode, Config, Limits, ServerHandle};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn chunk() -> impl Strategy<Value = Vec<u8>> {
    let commands: Vec<&'static [u8]> = vec![
        b"EHLO x\r\n",
        b"HELO x\r\n",
        b"MAIL FROM:<a@b>\r\n",
        b"MAIL FROM:<>\r\n",
        b"RCPT TO:<x@y>\r\n",
        b"DATA\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"..\r\n",
        b"RSET\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH PLAIN\r\n",
        b"*\r\n",
        b"STARTTLS\r\n",
        b"VRFY x\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b"\x00\xff\xfe",
    ];
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..200),
        4 => proptest::sample::select(commands).prop_map(|c| c.to_vec()),
        1 => (600usize..3000).prop_map(|n| vec![b'A'; n]),
    ]
}

/// Sends `input`, half-closes, and reads everything the server answers until it closes.
async fn throw(server: &ServerHandle, input: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(server.smtp_addr()).await.unwrap();
    // The server may close first (e.g. after QUIT-like input); a failed write is fine then.
    let _ = tcp.write_all(input).await;
    let _ = tcp.shutdown().await;
    let mut out = Vec::new();
    // A reset fault ends the read with an error; what arrived before it still counts.
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "server did not close after client EOF");
    out
}

fn well_formed(output: &[u8]) -> bool {
    output.split_inclusive(|&b| b == b'\n').all(|line| {
        line.len() >= 6
            && line.ends_with(b"\r\n")
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
    })
}

#[test]
fn random_streams_never_break_the_server() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(common::start(Config {
        auth: AuthMode::AcceptAny,
        limits: Limits {
            max_line_length: 512,
            max_message_size: 4096,
            ..Limits::default()
        },
        ..Config::ephemeral()
    }));
    // The same input against a server whose fault plan fires everywhere.
    let faulty = runtime.block_on(common::start(Config {
        auth: AuthMode::AcceptAny,
        faults: [
            "connect:reply=554:5%",
            "ehlo:reply=451:10%",
            "auth:reset:10%",
            "mail:close:20%",
            "rcpt:421:10%",
            "data:hang:10%",
            "data-end:accept-close:30%",
            "quit:reset:50%",
        ]
        .iter()
        .map(|r| common::rule(r))
        .collect(),
        seed: Some(5),
        ..Config::ephemeral()
    }));
    let config = ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(chunks in proptest::collection::vec(chunk(), 0..40))| {
        let input = chunks.concat();
        let output = runtime.block_on(throw(&server, &input));
        prop_assert!(output.starts_with(b"220 "), "greeting first: {:?}", String::from_utf8_lossy(&output));
        prop_assert!(well_formed(&output), "malformed output: {:?}", String::from_utf8_lossy(&output));
        let output = runtime.block_on(throw(&faulty, &input));
        prop_assert!(well_formed(&output), "malformed output under faults: {:?}", String::from_utf8_lossy(&output));
    });
    runtime.block_on(async {
        let before = stored(&server).len();
        let mut c = Client::ehlo(&server).await;
        assert_eq!(
            c.send_mail("a@b", &["x@y"], "after the storm\r\n")
                .await
                .code,
            250
        );
        assert_eq!(stored(&server).len(), before + 1);
        assert!(
            !faulty.state().faults().events().is_empty(),
            "faults fired during the storm"
        );
    });
}
