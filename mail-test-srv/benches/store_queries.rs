//! Hot paths of the mailbox with a full store: insert, the `to=` queries behind
//! `/count`, `/mail/N` and `/api/v1/messages`, both on the store and over real HTTP, and
//! the web page's list (newest first, with `q=`).
//!
//! A plain `harness = false` program (no criterion: one more heavy dependency for a
//! handful of medians). Run: `cargo bench -p mail-test-srv --bench store_queries`;
//! `BENCH_RECORDS=100000` for a smaller store. Prints medians and 99th percentiles.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use mail_test_srv::store::{Filter, ListQuery, NewMessage};
use mail_test_srv::{Config, Limits, State};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Distinct recipients: each one ends up with `records / ADDRESSES` records.
const ADDRESSES: u64 = 10_000;
const SENDERS: u64 = 100;
const SAMPLES: usize = 2_000;
const HTTP_SAMPLES: usize = 500;
const SCAN_SAMPLES: usize = 51;

fn main() {
    let records: u64 = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let config = Config {
        limits: Limits {
            max_messages: records as usize,
            max_stored_bytes: usize::MAX,
            ..Limits::default()
        },
        ..Config::ephemeral()
    };
    let state = State::new(config, 1);
    let store = state.store();

    let start = Instant::now();
    for i in 0..records {
        store.insert(NewMessage {
            from: format!("sender{}@example.com", i % SENDERS),
            recipients: vec![address(i)],
            data: Bytes::from(format!(
                "Subject: message {i}\r\nMessage-ID: <{i}@example.com>\r\n\r\nbody {i}\r\n"
            )),
            received: SystemTime::now(),
            tls: false,
            auth_user: None,
            connection: i,
            lenient_lines: Vec::new(),
        });
    }
    let elapsed = start.elapsed();
    println!(
        "insert: {records} messages in {elapsed:.2?} ({:.0} ns each)",
        elapsed.as_nanos() as f64 / records as f64
    );

    // One more insert into the full store: eviction on the hot path.
    let evicting = time(SAMPLES, |i| {
        store.insert(NewMessage {
            from: "late@example.com".into(),
            recipients: vec![address(i as u64)],
            data: Bytes::from_static(b"Subject: late\r\n\r\nx\r\n"),
            received: SystemTime::now(),
            tls: false,
            auth_user: None,
            connection: 0,
            lenient_lines: Vec::new(),
        });
    });
    report("insert into a full store (evicts one)", &mut { evicting });

    let mut count_to = time(SAMPLES, |i| {
        black_box(store.count_records(&to(i)));
    });
    report("store count_records(to=)", &mut count_to);
    let mut nth = time(SAMPLES, |i| {
        black_box(store.nth_record(&to(i), 50));
    });
    report("store nth_record(to=, 50)", &mut nth);
    let mut list = time(SAMPLES, |i| {
        black_box(store.messages(&to(i), 0, 50));
    });
    report("store messages(to=, limit 50)", &mut list);
    let mut count_from = time(SAMPLES, |i| {
        let f = Filter {
            from: Some(format!("sender{}@example.com", i as u64 % SENDERS)),
            ..Filter::default()
        };
        black_box(store.count_records(&f));
    });
    report("store count_records(from=)", &mut count_from);

    // The web page's list: one page of 50, newest first, with the total; plain and with
    // `q=` (which reads every message: fewer samples).
    let page = |q: Option<&str>| ListQuery {
        q: q.map(str::to_owned),
        newest_first: true,
        limit: 50,
        ..ListQuery::default()
    };
    let mut newest = time(SAMPLES, |_| {
        black_box(store.list(&page(None)));
    });
    report("store list(newest, 50)", &mut newest);
    for (name, q) in [
        ("store list(newest, 50, q= matches all)", "EXAMPLE.COM"),
        ("store list(newest, 50, q= matches a few)", "message 4242"),
        ("store list(newest, 50, q= all by recipient)", "USER"),
        ("store list(newest, 50, q= matches none)", "nothing-matches"),
        ("store list(newest, 50, q= not ASCII)", "caf\u{e9}"),
    ] {
        let mut searched = time(SCAN_SAMPLES, |_| {
            black_box(store.list(&page(Some(q))));
        });
        report(name, &mut searched);
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(http(state));
}

async fn http(state: State) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(mail_test_srv::http::serve(listener, state, stop));
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut conn = BufReader::new(stream);
    for (name, target) in [
        ("HTTP GET /count?to=", "/count?to="),
        ("HTTP GET /mail/50?to=", "/mail/50?to="),
        (
            "HTTP GET /api/v1/messages?limit=50&to=",
            "/api/v1/messages?limit=50&to=",
        ),
    ] {
        let mut samples = Vec::with_capacity(HTTP_SAMPLES);
        for i in 0..HTTP_SAMPLES {
            let start = Instant::now();
            let body = get(&mut conn, &format!("{target}{}", address(i as u64 * 7919))).await;
            samples.push(start.elapsed());
            black_box(body);
        }
        report(name, &mut samples);
    }
}

/// One keep-alive GET; returns the body (read by Content-Length).
async fn get(conn: &mut BufReader<tokio::net::TcpStream>, target: &str) -> Vec<u8> {
    // The Host a client names the server by (others are refused: DNS rebinding).
    let host = conn.get_ref().peer_addr().unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.get_mut().write_all(request.as_bytes()).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.unwrap();
    body
}

fn address(i: u64) -> String {
    format!("user{}@example.com", i % ADDRESSES)
}

fn to(i: usize) -> Filter {
    Filter {
        to: Some(address(i as u64 * 7919)),
        ..Filter::default()
    }
}

fn time(samples: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..samples)
        .map(|i| {
            let start = Instant::now();
            f(i);
            start.elapsed()
        })
        .collect()
}

fn report(name: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!("{name:<45} median {median:>10.2?}   p99 {p99:>10.2?}");
}
