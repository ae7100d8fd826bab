//! notify-mailer: sends one templated message to each address of a list.
//!
//! - `args`: the command line.
//! - `recipients`: the CSV/TSV list, de-duplication and the `--start`/`--end` range.
//! - `send`: the parallel sending, `--sleep`, the progress bar.
//!
//! Every message is rendered before the first is sent, so a template error or a bad row
//! stops the program (exit 2) with nothing sent.

mod args;
mod recipients;
mod send;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::anyhow;
use mailer::Mailer;
use mailer::cli::{self, Fatal, template_env, template_error};
use mailer::db::Store;
use minijinja::Value;
use minijinja::value::Serde;
use tokio_util::sync::CancellationToken;

use crate::args::Args;
use crate::recipients::{KeyColumn, List, Recipient, Row};
use crate::send::{Message, send_all};

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
    let messages = render_all(&args, &recipients)?;
    let mailer = Arc::new(Mailer::new(config, clock).map_err(Fatal::usage)?);

    let cancel = CancellationToken::new();
    tokio::spawn(cli::cancel_on_signal(cancel.clone()));
    let outcome = send_all(
        mailer,
        messages,
        args.parallel_sends,
        args.sleep,
        args.dry_run,
        cancel,
    )
    .await?;

    println!(
        "{PROGRAM}: recipients={} sent={} failed={} skipped={}{}",
        recipients.len(),
        outcome.sent,
        outcome.failed.len(),
        outcome.skipped,
        if args.dry_run {
            " (dry run: nothing was sent)"
        } else {
            ""
        }
    );
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

/// Renders subject and body for every recipient, or fails naming the template and line.
fn render_all(args: &Args, recipients: &[Recipient]) -> Result<Vec<Message>, Fatal> {
    let body_text = std::fs::read_to_string(&args.body).map_err(|e| {
        Fatal::usage(anyhow!(
            "cannot read the body template {}: {e}",
            args.body.display()
        ))
    })?;
    let body_name = args.body.display().to_string();
    let mut env = template_env();
    env.add_template_owned(body_name.clone(), body_text)
        .map_err(|e| Fatal::usage(template_error(&e)))?;
    env.add_template_owned("--subject", args.subject.clone())
        .map_err(|e| Fatal::usage(template_error(&e)))?;
    let (Ok(body), Ok(subject)) = (env.get_template(&body_name), env.get_template("--subject"))
    else {
        return Err(Fatal::usage(anyhow!("templates vanished after loading")));
    };
    recipients
        .iter()
        .map(|r| {
            // The first row's columns at the top level for the common one-row case, all
            // rows as `rows`, and the address as `email`.
            let first = r.rows.first().cloned().unwrap_or_default();
            let context = minijinja::context! {
                email => r.address.clone(),
                rows => Value::from(Serde(&r.rows)),
                ..Value::from(Serde(&first))
            };
            let render = |t: &minijinja::Template<'_, '_>| {
                t.render(context.clone()).map_err(|e| {
                    Fatal::usage(anyhow!(
                        "{} (rendering for {})",
                        template_error(&e),
                        r.address
                    ))
                })
            };
            let subject = render(&subject)?;
            Ok(Message {
                address: r.address.clone(),
                subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
                body: render(&body)?,
            })
        })
        .collect()
}
