//! `harness bench`: a load generator of our own, for what Postfix's smtp-source cannot do
//! (it neither reconnects nor pipelines). N connections through the mailer library against
//! mail-test-srv, started as a child like the harness does (faults by `--close-chance`), or
//! against any SMTP server on 127.0.0.1 (`--smtp`). Reports msgs/s, per-message latency
//! percentiles, reconnects, and, when the server is ours, whether every accepted message was
//! stored exactly once (by Message-ID, over the HTTP API).
//!
//! The last line of stdout is the result as `key=value` pairs, for `bench/*.sh` to parse.
//!
//! - [`args`]: the flags.
//! - [`load`]: the connection tasks and their timing.
//! - [`stats`]: percentiles and the exactly-once tally.

pub mod args;
pub mod load;
pub mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};

pub use args::BenchArgs;

use crate::api::Api;
use crate::binaries::{self, Binaries, MAIL_TEST_SRV, Needs};
use crate::startservers::{Readiness, Service, Services};
use load::{Load, Outcome};
use stats::{Latency, Tally, ms};

const SERVER: &str = "mail-test-srv";
const FROM: &str = "Bench <bench@example.test>";
const TO: &str = "sink@example.test";

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    args.check()?;
    let binaries = match args.smtp {
        Some(_) => None,
        None => Some(binaries::prepare(Needs::Server, !args.no_build)?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let seed = args.seed.unwrap_or_else(rand::random);
        // Ours as a child (stopped when `services` drops), or the address given.
        let (services, smtp, api) = match (&binaries, args.smtp) {
            (Some(binaries), _) => {
                let (services, smtp, http) = start_ours(binaries, &args, seed).await?;
                (Some(services), smtp, Some(Api::new(http)))
            }
            (None, smtp) => {
                let smtp = smtp.context("no --smtp and no mail-test-srv to start")?;
                (None, smtp, args.http.map(Api::new))
            }
        };
        let config = mailer::Config {
            server: smtp.ip().to_string(),
            port: smtp.port(),
            from: FROM.to_owned(),
            reconnect_base: args.reconnect_base,
            reconnect_max: args.reconnect_max,
            // Enough for any run of close-chance faults a benchmark meets; a real outage
            // still ends the run instead of hanging it.
            max_reconnects: 50,
            step_timeout: Duration::from_secs(30),
            ..mailer::Config::default()
        };
        let mailer = mailer::Mailer::new(config, Arc::new(mailer::SystemClock))
            .context("cannot configure the mailer")?;
        let load = Load {
            connections: args.connections,
            messages: args.messages,
            size: args.size,
            to: TO.to_owned(),
            transport: args.transport,
        };
        eprintln!(
            "harness bench: {} messages of {} body bytes over {} connection(s){} to {smtp}",
            load.messages,
            load.size,
            load.connections,
            if load.transport {
                " (pooled, ReconnectingTransport)"
            } else {
                ""
            }
        );
        let mut outcome = load::run(&mailer, &load).await;
        let tally = match &api {
            Some(api) => {
                let stored = api
                    .messages()
                    .await
                    .context("cannot list the stored messages")?;
                Some(Tally::of(
                    &outcome.accepted,
                    stored.iter().map(|m| m.message_id.as_deref()),
                ))
            }
            None => None,
        };
        if let Some(services) = services {
            services.stop().await;
        }
        let ok = report(&args, &load, &mut outcome, tally.as_ref());
        Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Starts mail-test-srv as a child (stopped when the returned `Services` is stopped or
/// dropped) and reads its addresses from the READY line.
async fn start_ours(
    binaries: &Binaries,
    args: &BenchArgs,
    seed: u64,
) -> anyhow::Result<(Services, SocketAddr, SocketAddr)> {
    let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let service = Service::new(SERVER, binaries.path(MAIL_TEST_SRV))
        .args(["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .args(["--close-chance".to_owned(), args.close_chance.to_string()])
        .args(["--seed".to_owned(), seed.to_string()])
        .env("RUST_LOG", log)
        .ready(Readiness::line("READY", Duration::from_secs(30)));
    let services = Services::start(vec![service]).await?;
    let ready = services
        .ready_line(SERVER)
        .context("the server is not in the table")?;
    let smtp = ready.addr("smtp").map_err(|e| anyhow!("{SERVER}: {e}"))?;
    let http = ready.addr("http").map_err(|e| anyhow!("{SERVER}: {e}"))?;
    eprintln!(
        "harness bench: {SERVER} smtp={smtp} http={http} close-chance={}% seed={seed}",
        args.close_chance
    );
    Ok((services, smtp, http))
}

/// Prints the human report on stderr and the `key=value` line on stdout; true when every
/// message was accepted (and, when checked, stored exactly once).
fn report(args: &BenchArgs, load: &Load, outcome: &mut Outcome, tally: Option<&Tally>) -> bool {
    let accepted = outcome.accepted.len();
    let secs = outcome.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        accepted as f64 / secs
    } else {
        0.0
    };
    let latency = Latency::of(&mut outcome.latencies);
    let counters = &outcome.counters;
    if args.verbose {
        for (i, (sent, took)) in outcome.per_connection.iter().enumerate() {
            eprintln!("  connection {i}: {sent} messages in {took:.3?}");
        }
    }
    for e in &outcome.errors {
        eprintln!("  error: {e}");
    }
    eprintln!(
        "harness bench: {accepted}/{} accepted in {secs:.3} s = {rate:.0} msgs/s; latency ms p50 {} p90 {} p99 {} max {}; \
         {} reconnects, {} resends",
        load.messages,
        ms(latency.p50),
        ms(latency.p90),
        ms(latency.p99),
        ms(latency.max),
        counters.reconnects,
        counters.failed_total(),
    );
    let stored = match tally {
        Some(t) => {
            eprintln!(
                "harness bench: stored exactly once {} of {accepted}; missing {}, duplicates {}, foreign {}",
                t.exactly_once, t.missing, t.duplicates, t.foreign
            );
            format!(
                "exactly_once={} missing={} duplicates={}",
                t.exactly_once, t.missing, t.duplicates
            )
        }
        None => "exactly_once=unchecked".to_owned(),
    };
    println!(
        "bench connections={} messages={} size={} accepted={accepted} failed={} wall_s={secs:.3} \
         msgs_per_s={rate:.0} p50_ms={} p90_ms={} p99_ms={} max_ms={} reconnects={} resends={} {stored}",
        load.connections,
        load.messages,
        load.size,
        outcome.failed,
        ms(latency.p50),
        ms(latency.p90),
        ms(latency.p99),
        ms(latency.max),
        counters.reconnects,
        counters.failed_total(),
    );
    let all_accepted = accepted as u64 == load.messages && outcome.failed == 0;
    all_accepted && tally.is_none_or(|t| t.perfect(accepted))
}
