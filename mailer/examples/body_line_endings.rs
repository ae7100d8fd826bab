//! How long building one message takes for a body with LF line endings of 1, 2, 4 and 8 MB
//! (and, for comparison, the same body with CRLF). Run with
//! `cargo run --release -p mailer --example body_line_endings`; the figures are in
//! docs/RELIABILITY.md ("Mailers, round two").
//!
//! A dry-run mailer builds the whole message (headers, quoted-printable body, dot-stuffed
//! wire form) exactly as a real send would, and then sends nothing, so this times the
//! message handling alone, with no server in the way.

use std::sync::Arc;
use std::time::Instant;

use mailer::{Config, Mailer, SystemClock};

/// A body of about `bytes` bytes: 72-character lines ending with `eol`.
fn body(bytes: usize, eol: &str) -> String {
    let line = "x".repeat(72);
    let mut out = String::with_capacity(bytes + bytes / 36);
    while out.len() < bytes {
        out.push_str(&line);
        out.push_str(eol);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        from: "bench@example.com".to_owned(),
        dry_run: true,
        ..Config::default()
    };
    let mailer = Mailer::new(config, Arc::new(SystemClock))?;
    let mut conn = mailer.connect().await?;
    let to = ["to@example.com".to_owned()];
    println!("size   LF body    CRLF body");
    for mb in [1, 2, 4, 8] {
        let mut times = Vec::new();
        for eol in ["\n", "\r\n"] {
            let text = body(mb * 1_000_000, eol);
            let start = Instant::now();
            conn.send_mail(&to, "bench", &text).await?;
            times.push(start.elapsed());
        }
        println!(
            "{mb} MB   {:>7.3} s  {:>7.3} s",
            times[0].as_secs_f64(),
            times[1].as_secs_f64()
        );
    }
    Ok(())
}
