//! The web page's numbers (issue 14), in headless Chromium through chromedriver (the WebDriver
//! client of `tests/browser`), with a release server in this process:
//!
//! - first load with N messages stored (100,000 by default): navigation timing (response end,
//!   DOMContentLoaded, load), first contentful paint, and the moment the first page of the list
//!   is on screen (the page's own `performance.mark("messages-list")`), each in a fresh browser;
//! - a new message visible in the list after its 250: a raw SMTP client notes the wall-clock time
//!   it reads the `250` after the final dot; in the page a MutationObserver notes, for each new
//!   row, `performance.timeOrigin + performance.now()` at the next animation frame (the frame
//!   that shows it). The difference is the latency.
//!
//! ```sh
//! cargo run --release -p mail-test-srv --example web_page [-- --messages 100000 --reps 5 --sends 20]
//! cargo run --release -p mail-test-srv --example web_page -- --screenshot docs   # docs/page.png, docs/page-faults.png
//! ```
//! The N messages are inserted into the store directly (about 1 KB each, distinct subjects), as
//! SMTP sessions would store them: the page's cost depends on what is stored, not on how it came.
//! bench/web_page.sh runs it and prints the medians.

#[path = "../tests/browser/mod.rs"]
mod browser;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use browser::Browser;
use bytes::Bytes;
use mail_test_srv::Config;
use mail_test_srv::store::NewMessage;

struct Args {
    messages: usize,
    reps: usize,
    sends: usize,
    screenshot: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        messages: 100_000,
        reps: 5,
        sends: 20,
        screenshot: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => a.messages = value().parse().expect("--messages N"),
            "--reps" => a.reps = value().parse().expect("--reps N"),
            "--sends" => a.sends = value().parse().expect("--sends N"),
            "--screenshot" => a.screenshot = Some(value().into()),
            other => panic!("unknown argument {other} (see the example's doc)"),
        }
    }
    a
}

fn main() {
    let args = args();
    if let Some(why) = browser::missing() {
        eprintln!("{why}");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime
        .block_on(mail_test_srv::start(Config {
            seed: Some(7),
            ..Config::ephemeral()
        }))
        .expect("server starts");
    let url = format!("http://{}/", server.http_addr());
    let shots = std::env::temp_dir().join("web_page_bench");

    if let Some(dir) = args.screenshot {
        screenshots(&server, &url, &dir, &shots);
        runtime.block_on(server.shutdown());
        return;
    }

    fill(&server, args.messages);
    println!(
        "{} messages stored; {} reps, {} sends each",
        server.state().store().len(),
        args.reps,
        args.sends
    );
    let mut loads: Vec<[f64; 5]> = Vec::new();
    let mut latencies: Vec<f64> = Vec::new();
    for rep in 1..=args.reps {
        let b = Browser::start(&shots).expect("chromium starts");
        let started = std::time::Instant::now();
        b.goto(&url).expect("page loads");
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        b.wait_for(
            "the list",
            "performance.getEntriesByName('messages-list').length > 0",
            Duration::from_secs(30),
        )
        .expect("the list shows");
        let t = b
            .eval(
                "(() => { const n = performance.getEntriesByType('navigation')[0]; \
                 const p = performance.getEntriesByName('first-contentful-paint')[0]; \
                 const l = performance.getEntriesByName('messages-list')[0]; \
                 return [n.responseEnd, n.domContentLoadedEventEnd, n.loadEventEnd, p ? p.startTime : -1, l.startTime]; })()",
            )
            .expect("timings");
        let t: Vec<f64> = t
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let rows = b
            .eval("document.querySelectorAll('#msg-rows tr').length")
            .unwrap();
        println!(
            "rep {rep}: responseEnd {:.1} ms, DOMContentLoaded {:.1} ms, load {:.1} ms, first contentful paint {:.1} ms, list shown {:.1} ms ({rows} rows; goto returned after {wall:.0} ms)",
            t[0], t[1], t[2], t[3], t[4]
        );
        loads.push([t[0], t[1], t[2], t[3], t[4]]);

        b.wait_for(
            "the stream",
            "document.getElementById('conn-status').dataset.state === 'live'",
            Duration::from_secs(10),
        )
        .expect("stream live");
        b.eval(
            "(() => { window.__seen = {}; new MutationObserver((records) => { for (const r of records) for (const n of r.addedNodes) { \
             const s = n.querySelector && n.querySelector('.subject'); if (!s) continue; const subject = s.textContent; \
             requestAnimationFrame(() => { window.__seen[subject] = performance.timeOrigin + performance.now(); }); } }) \
             .observe(document.getElementById('msg-rows'), { childList: true }); return true; })()",
        )
        .expect("observer");
        let mut rep_lat = Vec::new();
        for i in 0..args.sends {
            let subject = format!("latency {rep}-{i}");
            let t250 = send(server.smtp_addr(), &subject);
            let seen = b
                .wait_for(
                    "the new row",
                    &format!(
                        "window.__seen[{}]",
                        serde_json::to_string(&subject).unwrap()
                    ),
                    Duration::from_secs(10),
                )
                .expect("the row appears");
            let ms = seen.as_f64().unwrap() - t250;
            rep_lat.push(ms);
            std::thread::sleep(Duration::from_millis(150));
        }
        println!(
            "rep {rep}: new message visible after its 250: median {:.1} ms, max {:.1} ms over {} sends",
            median(&mut rep_lat.clone()),
            rep_lat.iter().cloned().fold(f64::MIN, f64::max),
            rep_lat.len()
        );
        latencies.extend(rep_lat);
    }
    let col = |i: usize| median(&mut loads.iter().map(|l| l[i]).collect::<Vec<_>>());
    println!(
        "median over {} reps: responseEnd {:.1} ms, DOMContentLoaded {:.1} ms, load {:.1} ms, first contentful paint {:.1} ms, list shown {:.1} ms",
        loads.len(),
        col(0),
        col(1),
        col(2),
        col(3),
        col(4)
    );
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "new message visible after its 250, {} sends: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        sorted.len(),
        median(&mut latencies),
        sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)],
        sorted[sorted.len() - 1]
    );
    runtime.block_on(server.shutdown());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `n` messages of about 1 KB, straight into the store.
fn fill(server: &mail_test_srv::ServerHandle, n: usize) {
    let filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(16);
    let store = server.state().store();
    for i in 0..n {
        let data = format!(
            "From: Sender {i} <s{i}@example.com>\r\nTo: r{i}@example.org\r\nSubject: stored message {i}\r\n\
             Message-ID: <{i}@bench.example>\r\n\r\n{filler}\r\n"
        );
        store.insert(NewMessage {
            from: format!("s{i}@example.com"),
            recipients: vec![format!("r{i}@example.org")],
            data: Bytes::from(data),
            received: SystemTime::now(),
            tls: false,
            auth_user: None,
            connection: 0,
            lenient_lines: Vec::new(),
        });
    }
}

/// One message over SMTP; the wall-clock time (Unix ms) its `250` after the final dot was read.
fn send(addr: SocketAddr, subject: &str) -> f64 {
    try_send(addr, subject).unwrap_or_else(|e| panic!("send {subject:?}: {e}"))
}

fn try_send(addr: SocketAddr, subject: &str) -> Result<f64, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut w = tcp.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(tcp);
    let reply = |r: &mut BufReader<TcpStream>, code: &str| -> Result<(), String> {
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            if !line.starts_with(code) {
                return Err(format!("expected {code}, got {line:?}"));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    let step = |w: &mut TcpStream, r: &mut BufReader<TcpStream>, cmd: &str, code: &str| {
        w.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
        reply(r, code)
    };
    reply(&mut r, "220")?;
    step(&mut w, &mut r, "EHLO bench\r\n", "250")?;
    step(&mut w, &mut r, "MAIL FROM:<bench@example.com>\r\n", "250")?;
    step(&mut w, &mut r, "RCPT TO:<page@example.org>\r\n", "250")?;
    step(&mut w, &mut r, "DATA\r\n", "354")?;
    let body = format!(
        "From: bench@example.com\r\nTo: page@example.org\r\nSubject: {subject}\r\n\r\nhello\r\n.\r\n"
    );
    w.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
    reply(&mut r, "250")?;
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64()
        * 1000.0;
    let _ = w.write_all(b"QUIT\r\n");
    Ok(at)
}

/// The README's pictures: a few messages (one open, with its HTML part), a fault rule and its
/// events; then the Faults view.
fn screenshots(
    server: &mail_test_srv::ServerHandle,
    url: &str,
    dir: &std::path::Path,
    shots: &std::path::Path,
) {
    let senders = [
        (
            "Expiry bot <test@example.com>",
            "Your certificate for example.net expires in 7 days",
        ),
        (
            "Notify <notify@example.com>",
            "New policy update: action required",
        ),
        ("Billing <billing@example.com>", "Invoice 2026-0117"),
        (
            "Expiry bot <test@example.com>",
            "Your certificate for shop.example expires in 2 days",
        ),
        (
            "Alerts <alerts@example.com>",
            "Weekly summary: 3 renewals due",
        ),
    ];
    for (i, (from, subject)) in senders.iter().enumerate() {
        send_html(server.smtp_addr(), from, subject, i);
    }
    let faults = server.state().faults();
    faults
        .put_rule("close-chance", "mail:close:35%".parse().unwrap())
        .expect("rule");
    faults
        .put_rule(
            "greylist",
            "rcpt:greylist=1m:to=late@example.org".parse().unwrap(),
        )
        .expect("rule");
    // Some sessions meet the close: their events fill the timeline.
    let mut sent = 0;
    let mut tries = 0;
    while sent < 6 && tries < 40 {
        tries += 1;
        if try_send(
            server.smtp_addr(),
            &format!("Renewal reminder for shop{tries}.example"),
        )
        .is_ok()
        {
            sent += 1;
        }
    }
    let b = Browser::start(shots).expect("chromium starts");
    b.window_size(1400, 820).unwrap();
    b.goto(url).unwrap();
    b.wait_for(
        "rows",
        "document.querySelectorAll('#msg-rows tr').length > 5",
        Duration::from_secs(10),
    )
    .unwrap();
    // Open the first expiry reminder, whose HTML part is shown.
    b.exec(
        "[...document.querySelectorAll('#msg-rows tr')].find(tr => tr.textContent.includes('example.net expires')).click(); return true;",
        Vec::new(),
    )
    .unwrap();
    b.wait_for(
        "the html part",
        "document.getElementById('msg-html')",
        Duration::from_secs(10),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    std::fs::create_dir_all(dir).unwrap();
    let page = b.screenshot("page").unwrap();
    std::fs::copy(&page, dir.join("page.png")).unwrap();
    b.click("#tab-faults").unwrap();
    b.wait_for(
        "events",
        "document.querySelectorAll('#event-rows tr').length > 0",
        Duration::from_secs(10),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let f = b.screenshot("page-faults").unwrap();
    std::fs::copy(&f, dir.join("page-faults.png")).unwrap();
    println!(
        "wrote {} and {}",
        dir.join("page.png").display(),
        dir.join("page-faults.png").display()
    );
}

/// A reminder with a text and an HTML part, like the mailers of this repository send.
fn send_html(addr: SocketAddr, from: &str, subject: &str, i: usize) {
    let tcp = TcpStream::connect(addr).expect("connect");
    let mut w = tcp.try_clone().unwrap();
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<TcpStream>, code: &str| loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "{line}");
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect(&mut r, "220");
    let envelope = from.split('<').nth(1).unwrap().trim_end_matches('>');
    let rcpt = format!("user{i}@example.org");
    for (cmd, code) in [
        ("EHLO mailer.example".to_owned(), "250"),
        (format!("MAIL FROM:<{envelope}>"), "250"),
        (format!("RCPT TO:<{rcpt}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        expect(&mut r, code);
    }
    let body = format!(
        "From: {from}\r\nTo: {rcpt}\r\nSubject: {subject}\r\nMessage-ID: <{i}.shot@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\n{subject}.\r\n\r\n--b\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n<div style=\"font-family:sans-serif\"><h2 style=\"color:#2463c7\">{subject}</h2>\
         <p>Hello,</p><p>this is a reminder sent by a test run. Renew before the date above.</p>\
         <p><a href=\"https://example.com/renew\">Renew now</a></p></div>\r\n--b--\r\n.\r\n"
    );
    w.write_all(body.as_bytes()).unwrap();
    expect(&mut r, "250");
    w.write_all(b"QUIT\r\n").unwrap();
}
