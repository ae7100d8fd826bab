//! Many tasks sending through one pooled transport: 16 tasks, 200 messages, a pool of 4
//! sessions, against a server that closes the connection on 35% of the MAIL commands.
//!
//! ```text
//! cargo run -p mailer --example parallel_sender                    # in-process mail-test-srv
//! cargo run -p mailer --example parallel_sender -- 127.0.0.1 2525  # a server of your own
//! ```
//!
//! Clones of a `ReconnectingTransport` share its pool: each send leases an idle session or
//! opens one (at most `pool_size`), and waits its turn when all are busy. A session the
//! server breaks is dropped and replaced; the send it broke is resent.

use std::time::Instant;

use mailer::ReconnectingTransport;
use mailer::lettre::{AsyncTransport, Message};

const TASKS: usize = 16;
const MESSAGES: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    // Keeps the in-process server alive until the end of main.
    let mut _server = None;
    let (host, port) = match (args.next(), args.next()) {
        (Some(host), Some(port)) => (host, port.parse()?),
        _ => {
            let server = mail_test_srv::start(mail_test_srv::Config {
                faults: vec!["mail:close:35%".parse()?],
                ..mail_test_srv::Config::ephemeral()
            })
            .await?;
            let port = server.smtp_addr().port();
            _server = Some(server);
            ("127.0.0.1".to_owned(), port)
        }
    };

    let transport = ReconnectingTransport::builder_dangerous(host)
        .port(port)
        .pool_size(4)
        .reconnect_base(std::time::Duration::from_millis(20))
        .build()?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let transport = transport.clone();
        tasks.push(tokio::spawn(async move {
            for n in (task..MESSAGES).step_by(TASKS) {
                let message = Message::builder()
                    .from("Service <service@example.com>".parse()?)
                    .to(format!("user{n}@example.org").parse()?)
                    .subject(format!("Message {n}"))
                    .body(format!("Hello user {n}.\n"))?;
                transport.send(message).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();

    let counters = transport.counters();
    println!(
        "{MESSAGES} messages from {TASKS} tasks in {elapsed:.2?} ({:.0}/s), {} resends",
        MESSAGES as f64 / elapsed.as_secs_f64(),
        counters.retries_total()
    );
    println!("{counters}");
    if let Some(server) = &_server {
        let stored = server.state().store().len();
        println!(
            "stored {stored}, over {} connections",
            server
                .state()
                .stats()
                .connections_total
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        if stored != MESSAGES {
            return Err(format!("{stored} messages stored, {MESSAGES} sent").into());
        }
    }
    transport.shutdown().await;
    Ok(())
}
