//! How long one SMTP message takes while 1,000 long polls (`/api/v1/wait` with a
//! `subject=` filter no message matches) are waiting: the figure of issue 11.
//!
//! ```sh
//! cargo run --release -p mail-test-srv --example wait_waiters [-- WAITERS PREFILL MESSAGES]
//! ```
//! Defaults: 1,000 waiters, 10,000 messages already stored, 200 measured messages.
//! The server runs in-process on a 2-worker runtime, the waiters call `Store::wait` (what
//! the route does), and the SMTP client is a blocking client on its own thread, so its
//! timing is not skewed by the waiters sharing its runtime. Printed: per-message time
//! (MAIL to the 250 after the final dot) with no waiter, then with the waiters.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use mail_test_srv::store::{Filter, NewMessage};
use mail_test_srv::{Config, Limits};

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (waiters, prefill, messages) = (arg(1, 1000), arg(2, 10_000), arg(3, 200));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(mail_test_srv::start(Config {
        limits: Limits {
            max_messages: usize::MAX,
            max_stored_bytes: usize::MAX,
            ..Limits::default()
        },
        ..Config::ephemeral()
    }));
    let server = server.expect("server starts");
    let store = server.state().store().clone();
    for i in 0..prefill {
        store.insert(NewMessage {
            from: "a@example.com".into(),
            recipients: vec![format!("r{i}@example.com")],
            data: format!("Subject: prefill {i}\r\n\r\nbody\r\n")
                .into_bytes()
                .into(),
            received: SystemTime::now(),
            tls: false,
            auth_user: None,
            connection: 0,
            lenient_lines: Vec::new(),
        });
    }
    let smtp = server.smtp_addr();
    report("no waiter", &send(smtp, messages));

    for _ in 0..waiters {
        let store = store.clone();
        runtime.spawn(async move {
            let filter = Filter {
                subject: Some("matches nothing".into()),
                ..Filter::default()
            };
            store.wait(&filter, 1, Duration::from_secs(300)).await
        });
    }
    // Let every waiter take its first look before measuring.
    std::thread::sleep(Duration::from_secs(2));
    report(&format!("{waiters} waiters"), &send(smtp, messages));
    println!("stored {} messages", store.len());
}

/// Sends `n` messages on one connection; the time of each transaction.
fn send(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let tcp = TcpStream::connect(addr).expect("connect");
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let mut writer = tcp;
    let reply = |reader: &mut BufReader<TcpStream>| loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    };
    reply(&mut reader);
    writer.write_all(b"EHLO bench\r\n").unwrap();
    reply(&mut reader);
    (0..n)
        .map(|i| {
            let start = Instant::now();
            let envelope = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n";
            writer.write_all(envelope).unwrap();
            for _ in 0..3 {
                reply(&mut reader);
            }
            writer
                .write_all(format!("Subject: measured {i}\r\n\r\nbody\r\n.\r\n").as_bytes())
                .unwrap();
            let done = reply(&mut reader);
            assert!(done.starts_with("250"), "{done}");
            start.elapsed()
        })
        .collect()
}

fn report(what: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    println!(
        "{what}: per message p50 {:.3} ms, p90 {:.3} ms, max {:.3} ms ({} messages)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        sorted.len()
    );
}
