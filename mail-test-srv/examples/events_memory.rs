//! Memory of the fault event log and the size of one `GET /api/v1/events?since=0`, with a
//! 4 KB rule text: the figure of issue 11.
//!
//! ```sh
//! cargo run --release -p mail-test-srv --example events_memory [-- EVENTS RULE_BYTES]
//! ```
//! Defaults: 100,000 events of one rule whose text is about 4 KB (a `from=` trigger with a
//! 4 KB address; the engine is driven directly, as SMTP's stage checks would, so the
//! address limits of the SMTP parser do not get in the way). Printed: RSS before and after
//! recording (VmRSS from /proc), the response size of `GET /api/v1/events?since=0` over
//! the real HTTP listener, and the peak RSS (VmHWM).

use std::io::{Read, Write};
use std::net::TcpStream;

use mail_test_srv::Config;
use mail_test_srv::fault::{FaultContext, Stage};

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (events, rule_bytes) = (arg(1, 100_000), arg(2, 4096));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime
        .block_on(mail_test_srv::start(Config::ephemeral()))
        .expect("server starts");
    let address = format!("{}@example.com", "x".repeat(rule_bytes.saturating_sub(40)));
    let rule = format!("mail:reply=451:from={address}");
    let faults = server.state().faults();
    faults
        .replace(vec![rule.parse().expect("rule")], None)
        .expect("a valid plan");
    println!("rule text {} bytes", rule.len());
    println!("RSS before {}", status("VmRSS"));
    let ctx = FaultContext {
        from: Some(&address),
        to: &[],
    };
    let mut conn = faults.connection(1);
    for _ in 0..events {
        faults.decide(&mut conn, Stage::Mail, &ctx).expect("fires");
    }
    println!(
        "RSS after {events} events {} ({} held)",
        status("VmRSS"),
        faults.events().len()
    );
    let addr = server.http_addr();
    let mut tcp = TcpStream::connect(addr).expect("connect");
    write!(
        tcp,
        "GET /api/v1/events?since=0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Counted, not kept: the client's copy must not add to this process's peak.
    let mut first = [0u8; 4096];
    let mut total = tcp.read(&mut first).expect("response");
    let head_end = first[..total]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match tcp.read(&mut chunk).expect("response") {
            0 => break,
            n => total += n,
        }
    }
    println!(
        "GET /api/v1/events?since=0: {} bytes of response body, with the head: {}",
        total - head_end,
        String::from_utf8_lossy(&first[..12])
    );
    println!("RSS peak {}", status("VmHWM"));
}

/// A line of /proc/self/status, e.g. `VmRSS:  1234 kB`, as MiB.
fn status(key: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or("?".to_owned(), |kb| format!("{:.1} MiB", kb / 1024.0))
}
