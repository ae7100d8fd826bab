//! notify-mailer: sends one templated message to each address of a list.
//!
//! - `args`: the command line.
//! - `recipients`: the CSV/TSV list, de-duplication and the `--start`/`--end` range.
//! - `render`: subject and body per recipient, checked for all before the first is sent.
//! - `send`: the parallel sending, `--sleep`, the progress bar.
//!
//! Every message is rendered (into nothing) before the first is sent, so a template error
//! or a bad row stops the program (exit 2) with nothing sent; it is rendered again right
//! before it is sent, so the run holds at most `--parallel-sends` messages at a time.

mod args;
mod recipients;
mod render;
mod send;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use mailer::Mailer;
use mailer_programs::cli::{self, Fatal};
use mailer_programs::db::Store;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::recipients::{KeyColumn, List, Row};
use crate::render::Renderer;
use crate::send::send_all;

const PROGRAM: &str = "notify-mailer";

fn main() -> ExitCode {
    cli::main(PROGRAM, run)
}

async fn run(args: Args) -> Result<ExitCode, Fatal> {
    let clock = cli::clock()?;
    let config = args.smtp.mailer_config(args.dry_run)?;
    let list = recipients::read_list(&args.recipients, args.tsv).map_err(Fatal::usage)?;
    let rows = resolve(&args, list).await?;
    let recipients = recipients::group(rows, args.start.as_deref(), args.end.as_deref());
    let renderer = Renderer::load(&args.body, &args.subject, &args.templates)?;
    renderer.check_all(&recipients)?;
    let mailer = Arc::new(Mailer::new(config, clock).map_err(Fatal::usage)?);

    let cancel = CancellationToken::new();
    tokio::spawn(cli::cancel_on_signal(cancel.clone()));
    let count = recipients.len();
    let outcome = send_all(
        Arc::clone(&mailer),
        recipients,
        Arc::new(move |r| renderer.render(r)),
        args.parallel_sends,
        args.sleep,
        args.dry_run,
        cancel,
    )
    .await?;

    let counters = mailer.counters();
    println!(
        "{PROGRAM}: recipients={count} sent={} failed={} skipped={}{}",
        outcome.sent,
        outcome.failed.len(),
        outcome.skipped,
        if args.dry_run {
            " (dry run: nothing was sent)".to_owned()
        } else {
            // The SMTP side: reconnects, refused connects, retries (the sleeps below).
            cli::smtp_words(&counters)
        }
    );
    if let Some(line) = cli::backoff_line(PROGRAM, &counters) {
        println!("{line}");
    }
    for (address, why) in &outcome.failed {
        println!("failed: {address}: {why}");
    }
    Ok(if outcome.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(cli::EXIT_FAILURE)
    })
}

/// Pairs every row with its address; `id` rows become one row per `mailto:` contact of the
/// registration.
async fn resolve(args: &Args, list: List) -> Result<Vec<(String, Row)>, Fatal> {
    if list.key == KeyColumn::Email {
        return Ok(list.rows.into_iter().map(|r| (r.key, r.columns)).collect());
    }
    let store = Store::open_existing(&args.db).await?;
    let mut rows = Vec::new();
    for row in list.rows {
        // read_list checked the id already.
        let id: i64 = row.key.parse().unwrap_or_default();
        let Some(contacts) = store.registration_contacts(id).await? else {
            store.close().await;
            return Err(Fatal::usage(anyhow!(
                "{}, line {}: no registration with id {id} in {}",
                args.recipients.display(),
                row.line,
                args.db
            )));
        };
        let mut any = false;
        for contact in contacts {
            let Some(address) = contact.strip_prefix("mailto:") else {
                continue;
            };
            if recipients::check_address(address).is_ok() {
                rows.push((address.to_owned(), row.columns.clone()));
                any = true;
            }
        }
        if !any {
            tracing::warn!(
                id,
                line = row.line,
                "registration has no usable mailto: contact; skipped"
            );
        }
    }
    store.close().await;
    Ok(rows)
}
