//! Hot paths of the SMTP side: the command parser, the DATA receiver (end marker,
//! dot-unstuffing), and a whole pipelined session over a real socket on 127.0.0.1 (parse,
//! fault decisions, DATA, store insert, replies), with a fault rule loaded that never fires.
//!
//! A plain `harness = false` program like `store_queries` (no criterion). Each case is timed
//! as batches; the median batch and the spread over 15 batches are printed.
//! Run: `cargo bench -p mail-test-srv --bench smtp_hot_paths`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mail_test_srv::smtp::data::DataReceiver;
use mail_test_srv::smtp::parse::{PathSyntax, parse};
use mail_test_srv::{Config, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Batches per case; the median is reported.
const BATCHES: usize = 15;

fn main() {
    parser();
    data_receiver();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(session(5_000, 1024));
    runtime.block_on(session(500, 100 * 1024));
}

/// The lines of one pipelined transaction, as smtp-source and our mailer send them.
fn parser() {
    let lines: [&[u8]; 6] = [
        b"EHLO client.example.test",
        b"MAIL FROM:<sender@example.test> SIZE=1290 BODY=8BITMIME",
        b"RCPT TO:<recipient@example.test>",
        b"DATA",
        b"RSET",
        b"QUIT",
    ];
    const PER_BATCH: u32 = 100_000;
    let per_line = batches(|| {
        for _ in 0..PER_BATCH / lines.len() as u32 {
            for line in lines {
                let _ = black_box(parse(black_box(line), PathSyntax::Lenient));
            }
        }
    })
    .map(|d| d / PER_BATCH);
    report("parse one command line (mix of 6)", per_line);
    let per_mail = batches(|| {
        for _ in 0..PER_BATCH {
            let _ = black_box(parse(black_box(lines[1]), PathSyntax::Lenient));
        }
    })
    .map(|d| d / PER_BATCH);
    report("parse MAIL FROM:<..> SIZE= BODY=", per_mail);
}

/// A message like smtp-source -l SIZE sends: 79-character lines, a few stuffed dots.
fn message(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 100);
    let mut n = 0;
    while out.len() < size {
        n += 1;
        if n % 10 == 0 {
            out.extend_from_slice(b"..a stuffed line\r\n");
        }
        out.extend_from_slice(format!("{n:05}").as_bytes());
        out.extend_from_slice(&[b'X'; 72]);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn data_receiver() {
    for (size, label) in [(1024, "1 KiB"), (100 * 1024, "100 KiB")] {
        let mut input = message(size);
        input.extend_from_slice(b".\r\n");
        let rounds: u32 = if size > 10_000 { 200 } else { 20_000 };
        for (chunk, how) in [(input.len(), "one read"), (1460, "1460-byte reads")] {
            let per_message = batches(|| {
                for _ in 0..rounds {
                    let mut rx = DataReceiver::new(10 << 20, None);
                    for piece in input.chunks(chunk) {
                        let mut piece = piece;
                        // A split `.\r\n` is handed back: feed it again with the next bytes.
                        loop {
                            let fed = rx.feed(piece);
                            piece = &piece[fed.consumed..];
                            if fed.done || piece.is_empty() || fed.consumed == 0 {
                                break;
                            }
                        }
                    }
                    black_box(rx.into_body());
                }
            })
            .map(|d| d / rounds);
            let mib_s = size as f64 / per_message[BATCHES / 2].as_secs_f64() / (1 << 20) as f64;
            report(
                &format!("DATA receive {label} message, {how} ({mib_s:.0} MiB/s)"),
                per_message,
            );
        }
    }
}

/// One client pipelining `messages` transactions (MAIL+RCPT+DATA, then the content) over one
/// connection, reading the replies as they come: the server's cost per message with no client
/// in the way. A fault rule is loaded (`mail:close:0%`: evaluated at every MAIL, never fires).
async fn session(messages: usize, size: usize) {
    let server = start(Config {
        faults: vec!["mail:close:0%".parse().expect("a valid rule")],
        seed: Some(1),
        ..Config::ephemeral()
    })
    .await
    .expect("the server starts");
    let body = message(size);
    let mut transaction = Vec::new();
    transaction
        .extend_from_slice(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
    let mut content = b"Subject: bench\r\n\r\n".to_vec();
    content.extend_from_slice(&body);
    content.extend_from_slice(b".\r\n");

    let mut samples = Vec::new();
    for _ in 0..3 {
        server.state().store().clear();
        let mut stream = tokio::net::TcpStream::connect(server.smtp_addr())
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut replies = Replies::default();
        replies.expect(&mut stream, 1).await; // greeting
        stream.write_all(b"EHLO bench\r\n").await.expect("write");
        replies.expect(&mut stream, 1).await; // EHLO (multi-line, one reply)
        let start = Instant::now();
        for _ in 0..messages {
            stream.write_all(&transaction).await.expect("write");
            replies.expect(&mut stream, 3).await; // 250 250 354
            stream.write_all(&content).await.expect("write");
            replies.expect(&mut stream, 1).await; // 250 queued
        }
        samples.push(start.elapsed() / messages as u32);
        stream.write_all(b"QUIT\r\n").await.expect("write");
        assert_eq!(
            server.state().store().len(),
            messages,
            "every message stored"
        );
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "{:<60} median {:>10.2?} per message ({:.0} msgs/s, 2 round trips each)",
        format!(
            "session over TCP, {messages} x {} KiB, fault rule loaded",
            size / 1024
        ),
        median,
        1.0 / median.as_secs_f64()
    );
    server.shutdown().await;
}

/// Counts complete reply lines (the last line of a reply has a space after the code).
#[derive(Default)]
struct Replies {
    buf: Vec<u8>,
}

impl Replies {
    async fn expect(&mut self, stream: &mut tokio::net::TcpStream, mut n: usize) {
        while n > 0 {
            while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                assert!(
                    matches!(line.first(), Some(b'2' | b'3')),
                    "unexpected reply {:?}",
                    String::from_utf8_lossy(&line)
                );
                if line.get(3) == Some(&b' ') {
                    n -= 1;
                    if n == 0 {
                        return;
                    }
                }
            }
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await.expect("read");
            assert!(read > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }
}

/// Runs `f` once to warm up, then `BATCHES` times.
fn batches(mut f: impl FnMut()) -> [Duration; BATCHES] {
    f();
    std::array::from_fn(|_| {
        let start = Instant::now();
        f();
        start.elapsed()
    })
}

fn report(name: &str, mut samples: [Duration; BATCHES]) {
    samples.sort();
    println!(
        "{name:<60} median {:>10.2?}   (min {:.2?}, max {:.2?})",
        samples[BATCHES / 2],
        samples[0],
        samples[BATCHES - 1]
    );
}
