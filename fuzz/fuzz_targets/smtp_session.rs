//! Fuzzes a whole SMTP session fed arbitrary bytes, in memory: no socket, no server task.
//!
//! The target drives `smtp::Session` the way the connection loop does (greet, then `step`
//! over the read buffer until it needs more input, which arrives in chunks of a size the
//! input chooses, so split commands, split DATA end markers and split AUTH exchanges are
//! covered). A STARTTLS that the session accepts is treated as a completed handshake.
//!
//! Input layout: byte 0 picks the server configuration (AUTH mode, TLS, a fault plan, strict
//! paths, bare-LF rejection, the seed), byte 1 the chunk size (0 = everything at once), the rest is what the client sends.
//!
//! Checked: no panic, no endless loop (libFuzzer's timeout), every byte the server would
//! write is a well-formed reply line, every stored envelope address is free of the bytes
//! that would corrupt the text records of `/mail/N`, and the session's transcript stays
//! within its bounds.

#![no_main]

use std::sync::Arc;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mail_test_srv::State;
use mail_test_srv::config::{AuthMode, BareLf, Config, Limits, TlsMode};
use mail_test_srv::smtp::{Flow, Session, Settings};
use mail_test_srv::store::Filter;
use tokio_util::sync::CancellationToken;

/// Fault rules firing at every stage, delays included (time is paused, so they cost nothing).
const FAULTS: &[&str] = &[
    "connect:reply=554:5%",
    "connect:delay=1s:5%",
    "ehlo:reply=451:10%",
    "auth:reset:10%",
    "mail:close:10%",
    "mail:delay=2s:10%",
    "rcpt:421:10%",
    "rcpt:reply=550:to=bad@x.example",
    "data:hang:5%",
    "data:reply=452:10%",
    "data-end:accept-close:20%",
    "data-end:reply=554:10%",
    "quit:reset:50%",
];

fn config(selector: u8) -> Config {
    let auth = match selector & 3 {
        0 => AuthMode::Off,
        1 => AuthMode::AcceptAny,
        _ => AuthMode::Required {
            user: "user".into(),
            password: "secret".into(),
        },
    };
    let tls = if selector & 4 != 0 {
        TlsMode::StartTls
    } else {
        TlsMode::None
    };
    let faults = if selector & 8 != 0 {
        FAULTS
            .iter()
            .map(|r| r.parse().expect("valid rule"))
            .collect()
    } else {
        Vec::new()
    };
    Config {
        auth,
        tls,
        require_tls: selector & 16 != 0,
        strict: selector & 32 != 0,
        bare_lf: if selector & 64 != 0 {
            BareLf::Reject
        } else {
            BareLf::Keep
        },
        faults,
        seed: Some(u64::from(selector >> 7)),
        limits: Limits {
            max_line_length: 512,
            max_message_size: 2048,
            max_recipients: 5,
            ..Limits::default()
        },
        ..Config::ephemeral()
    }
}

fn well_formed(output: &[u8]) -> bool {
    output.split_inclusive(|&b| b == b'\n').all(|line| {
        line.len() >= 6
            && line.ends_with(b"\r\n")
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
    })
}

/// No control character or angle bracket; a space only inside a quoted local part.
fn clean(addr: &str) -> bool {
    let forbidden = addr
        .bytes()
        .any(|b| b < b' ' || b == b'<' || b == b'>' || b == 0x7f);
    !forbidden && (!addr.contains(' ') || addr.contains('"'))
}

async fn drive(selector: u8, chunk: usize, mut input: &[u8]) {
    let config = config(selector);
    let settings = Arc::new(Settings::new(&config, None));
    let state = State::new(config, 0);
    let recorder = state
        .sessions()
        .open(1, "127.0.0.1:25".parse().expect("an address"));
    let mut session = Session::new(settings, state.clone(), 1, false, CancellationToken::new())
        .with_recorder(recorder);
    let mut buf = BytesMut::new();
    let mut output = Vec::new();
    let mut flow = session.greet().await;
    loop {
        match flow {
            Flow::Continue => {}
            // What the connection loop does after a successful handshake (RFC 3207 4.2).
            Flow::StartTls => {
                buf.clear();
                session.tls_started();
            }
            Flow::Close | Flow::Reset | Flow::Hang | Flow::AbortTls => break,
        }
        if let Some(next) = session.step(&mut buf).await {
            flow = next;
            continue;
        }
        output.append(&mut session.out);
        if input.is_empty() {
            break;
        }
        let n = input.len().min(chunk);
        buf.extend_from_slice(&input[..n]);
        input = &input[n..];
    }
    output.append(&mut session.out);
    assert!(
        well_formed(&output),
        "malformed server output: {:?}",
        String::from_utf8_lossy(&output)
    );
    drop(session);
    let record = state.sessions().get(1).expect("the transcript is kept");
    assert!(record.lines().count() <= 601, "transcript past its bounds");
    assert!(record.outcome.is_some(), "a closed session has an outcome");
    for message in state.store().messages(&Filter::default(), 0, usize::MAX) {
        assert!(clean(&message.from), "stored sender {:?}", message.from);
        for to in &message.recipients {
            assert!(clean(to), "stored recipient {to:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, chunk, input @ ..] = data else {
        return;
    };
    let chunk = if *chunk == 0 {
        usize::MAX
    } else {
        usize::from(*chunk)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(drive(*selector, chunk, input));
});
