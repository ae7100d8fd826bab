//! `harness run` (the default): build, start the servers, run the selected scenarios, print the
//! table, stop the servers. SIGINT/SIGTERM stop everything in order and end the run. A failed
//! scenario's report ends with the transcripts of the sessions behind it (see [`transcripts`]),
//! fetched at once: the servers stop before the report is printed.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow};

use crate::binaries::{self, Needs};
use crate::cli::{RunArgs, ScenarioName};
use crate::report::{self, Row};
use crate::scenarios::{self, Ctx, Outcome};
use crate::servers::{self, Listen, PLAIN, Plan, Server, TLS};
use crate::startservers::{Services, Shutdown};
use crate::transcripts::{self, Window};

/// Exit status of a run stopped by a signal (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let binaries = binaries::prepare(Needs::All, !args.server.no_build)?;
    let seed = args.server.seed.unwrap_or_else(rand::random);
    println!(
        "harness: seed {seed}, close chance {}%, accept-close chance {}%",
        args.server.close_chance, args.accept_close_chance
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run_scenarios(args, binaries, seed))
}

/// The command that repeats this run with the same seed.
fn reproduce(args: &RunArgs, seed: u64) -> String {
    let mut line = format!("cargo run -p harness -- --seed {seed}");
    if args.server.close_chance != 35 {
        line.push_str(&format!(" --close-chance {}", args.server.close_chance));
    }
    if args.accept_close_chance != 10 {
        line.push_str(&format!(
            " --accept-close-chance {}",
            args.accept_close_chance
        ));
    }
    for name in &args.scenarios {
        line.push_str(&format!(" --scenario {}", name.as_str()));
    }
    line
}

async fn run_scenarios(
    args: RunArgs,
    binaries: binaries::Binaries,
    seed: u64,
) -> anyhow::Result<ExitCode> {
    let mut shutdown = Shutdown::new().context("cannot catch SIGINT/SIGTERM")?;
    let work = tempfile::Builder::new()
        .prefix("harness-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let cert_dir = work.path().join("tls");
    let plan = Plan {
        plain: Listen::EPHEMERAL,
        tls: Listen::EPHEMERAL,
        seed,
        close_chance: args.server.close_chance,
        faults: lost_replies(args.accept_close_chance),
        cert_dir: cert_dir.clone(),
        echo: false,
        // Its `info` logs would only be read in a failure's tail; warnings are enough there.
        log: "warn",
    };
    let mut services = tokio::select! {
        started = Services::start(servers::table(&binaries, &plan)) => started?,
        signal = shutdown.recv() => {
            eprintln!("harness: {signal} while starting the servers; stopped");
            return Ok(ExitCode::from(INTERRUPTED));
        }
    };
    let plain = Server::from_services(&services, PLAIN, None)?;
    let tls = Server::from_services(&services, TLS, Some(&cert_dir.join("ca.pem")))?;
    println!(
        "harness: {PLAIN} smtp {} http {}; {TLS} smtp {} http {}",
        plain.smtp, plain.http, tls.smtp, tls.http
    );
    let mut ctx = Ctx {
        binaries,
        plain,
        tls,
        work: work.path().to_path_buf(),
        seed,
        close_chance: args.server.close_chance,
        accept_close_chance: args.accept_close_chance,
        expected_plain: BTreeMap::new(),
    };

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut skips = Vec::new();
    let mut interrupted = None;
    for name in ScenarioName::selection(&args.scenarios) {
        if interrupted.is_some() || (!failures.is_empty() && !args.keep_going) {
            rows.push(Row::skipped(name.as_str()));
            continue;
        }
        println!("harness: scenario {} ...", name.as_str());
        let started = Instant::now();
        let before = injected(&ctx).await.unwrap_or(0);
        let windows = [Window::open(&ctx.plain).await, Window::open(&ctx.tls).await];
        let result = tokio::select! {
            result = scenarios::run(name, &mut ctx) => result,
            died = services.wait_for_exit() => Err(anyhow!(died)),
            signal = shutdown.recv() => {
                interrupted = Some(signal);
                Err(anyhow!("interrupted by {signal}"))
            }
        };
        let time = started.elapsed();
        let after = injected(&ctx).await.unwrap_or(before);
        let row = match result {
            Ok(Outcome {
                skipped: Some(reason),
                ..
            }) => {
                println!("harness: scenario {} skipped: {reason}", name.as_str());
                skips.push((name, reason));
                Row::skipped(name.as_str())
            }
            Ok(outcome) => Row {
                scenario: name.as_str(),
                result: report::Result::Passed,
                time,
                mails: outcome.mails,
                faults: outcome.faults.unwrap_or(after.saturating_sub(before)),
                resent: outcome.resent,
            },
            Err(error) => {
                let shown = if interrupted.is_some() {
                    String::new()
                } else {
                    explain(&error, &windows, &ctx, name).await
                };
                failures.push((name, error, shown));
                Row {
                    scenario: name.as_str(),
                    result: report::Result::Failed,
                    time,
                    mails: 0,
                    faults: after.saturating_sub(before),
                    resent: None,
                }
            }
        };
        rows.push(row);
    }
    let stopped = services.stop().await;
    if let Some(forced) = stopped.iter().find(|s| s.killed) {
        eprintln!(
            "harness: {} did not stop on SIGTERM and was killed",
            forced.name
        );
    }

    println!();
    print!("{}", report::table(&rows));
    for (name, error, shown) in &failures {
        println!(
            "\nscenario {} FAILED (seed {seed}):\n  {error:#}",
            name.as_str()
        );
        print!("{shown}");
    }
    for (name, reason) in &skips {
        println!("\nscenario {} skipped: {reason}", name.as_str());
    }
    if let Some(signal) = interrupted {
        println!("\nharness: interrupted by {signal}; servers stopped");
        return Ok(ExitCode::from(INTERRUPTED));
    }
    if failures.is_empty() {
        if skips.is_empty() {
            println!(
                "\nharness: all {} scenario(s) passed (seed {seed})",
                rows.len()
            );
        } else {
            println!(
                "\nharness: {} scenario(s) passed, {} skipped (seed {seed})",
                rows.len() - skips.len(),
                skips.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nreproduce with: {}", reproduce(&args, seed));
        Ok(ExitCode::FAILURE)
    }
}

/// The rule for lost replies at `chance` percent of the messages, none at 0.
fn lost_replies(chance: u8) -> Vec<String> {
    if chance == 0 {
        return Vec::new();
    }
    vec![format!("data-end:accept-close:{chance}%")]
}

/// The transcripts behind a failed scenario, each saved whole under the target folder
/// (`harness-transcripts/SCENARIO/`, emptied first): the run's servers, and so the URLs printed,
/// are gone once the report is read.
async fn explain(
    error: &anyhow::Error,
    windows: &[Window],
    ctx: &Ctx,
    name: ScenarioName,
) -> String {
    let dir = ctx
        .binaries
        .dir
        .join("harness-transcripts")
        .join(name.as_str());
    // Files of an earlier run would pass for this one's.
    let save = match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => None,
        _ => Some(dir.as_path()),
    };
    match transcripts::explain(error, windows, save).await {
        Ok(shown) => shown,
        Err(e) => format!("  (no transcripts: {e:#})\n"),
    }
}

/// Faults injected so far by both servers.
async fn injected(ctx: &Ctx) -> anyhow::Result<u64> {
    Ok(ctx.plain.api.stats().await?.faults.total + ctx.tls.api.stats().await?.faults.total)
}
