//! expiration-mailer: reminds account contacts that their certificates expire soon.
//!
//! - `args`: the command line.
//! - `certs`: PEM in, DER out (x509-parser).
//! - `import`: the `import` subcommand.
//! - `nag`: the nag windows and what is due in each, grouped per registration.
//! - `limit`: `--mails-per-address-per-day`.
//! - `send`: the parallel sending and the recording of each reminder.
//! - `templates`: subject and body.

mod args;
mod certs;
mod import;
mod limit;
mod nag;
mod send;
mod templates;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use mailer::{Clock, Mailer};
use mailer_programs::cli::{self, Fatal, day_of};
use mailer_programs::db::Store;
use tokio_util::sync::CancellationToken;

use crate::args::{Args, Command, RunArgs};
use crate::limit::Limiter;
use crate::send::{Claims, Sender, send_all};
use crate::templates::Templates;

const PROGRAM: &str = "expiration-mailer";

fn main() -> ExitCode {
    cli::main(PROGRAM, run)
}

async fn run(args: Args) -> Result<ExitCode, Fatal> {
    let clock = cli::clock()?;
    match &args.command {
        Some(Command::Import(import)) => {
            let store = Store::open(&args.db).await?;
            let result = import::import(&store, import).await;
            store.close().await;
            result.map(|()| ExitCode::SUCCESS)
        }
        None => run_mailer(&args.db, &args.run, clock).await,
    }
}

/// The one-line summary of a run.
#[derive(Debug, Default)]
struct Summary {
    examined: u64,
    sent: u64,
    renewed: u64,
    bad_addresses: u64,
    failures: u64,
    deferred: u64,
    claimed_elsewhere: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{PROGRAM}: examined={} sent={} renewed={} bad_addresses={} failures={} deferred_by_limit={} claimed_by_other_run={}",
            self.examined,
            self.sent,
            self.renewed,
            self.bad_addresses,
            self.failures,
            self.deferred,
            self.claimed_elsewhere
        )
    }
}

async fn run_mailer(db: &str, run: &RunArgs, clock: Arc<dyn Clock>) -> Result<ExitCode, Fatal> {
    // Everything the user typed is checked before the store or the server is touched.
    let templates = Arc::new(Templates::load(
        run.subject.as_deref(),
        run.email_template.as_deref(),
        &run.templates,
    )?);
    let config = run.smtp.mailer_config(run.dry_run)?;
    let mailer = Arc::new(Mailer::new(config, Arc::clone(&clock)).map_err(Fatal::usage)?);
    let store = Store::open(db).await?;
    let windows = nag::nag_windows(&run.nag_times, run.frequency);

    // SIGINT/SIGTERM: finish the message in flight, record it, and stop (a second
    // signal exits at once).
    let cancel = CancellationToken::new();
    tokio::spawn(cli::cancel_on_signal(cancel.clone()));

    let outcome = loop {
        let result = run_once(&store, &mailer, &clock, &templates, &windows, run, &cancel).await;
        let mut failed = 0;
        match result {
            Ok(summary) if run.dry_run => println!("{summary} (dry run: nothing sent or recorded)"),
            Ok(summary) => {
                // The SMTP side too (reconnects, refused connects, retries, sleeps since
                // the start), so an operator sees a flaky server that still got the mail out.
                let counters = mailer.counters();
                println!("{summary}{}", cli::smtp_words(&counters));
                if let Some(line) = cli::backoff_line(PROGRAM, &counters) {
                    println!("{line}");
                }
                failed = summary.failures;
            }
            Err(fatal) if run.daemon => {
                eprintln!(
                    "{PROGRAM}: error: {:#} (retrying in {:?})",
                    fatal.error(),
                    run.frequency
                );
            }
            Err(fatal) => break Err(fatal),
        }
        if failed > 0 {
            // Cron and the operator must see that mail did not go out; the reminders
            // are left for the next run.
            eprintln!(
                "{PROGRAM}: error: {failed} reminder(s) not delivered; left for the next run (see the warnings above)"
            );
        }
        if !run.daemon {
            break Ok(if failed > 0 {
                ExitCode::from(cli::EXIT_FAILURE)
            } else {
                ExitCode::SUCCESS
            });
        }
        tokio::select! {
            () = cancel.cancelled() => break Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(run.frequency) => {}
        }
    };
    store.close().await;
    outcome
}

async fn run_once(
    store: &Store,
    mailer: &Arc<Mailer>,
    clock: &Arc<dyn Clock>,
    templates: &Arc<Templates>,
    windows: &[std::time::Duration],
    run: &RunArgs,
    cancel: &CancellationToken,
) -> Result<Summary, Fatal> {
    let now: SystemTime = clock.now();
    let selection = nag::select(store, now, windows, run.cert_limit).await?;
    if !run.dry_run {
        // Renewed certificates and registrations without a usable address never get a
        // reminder for this window: mark them so they are not examined again.
        let done: Vec<String> = selection
            .renewed
            .iter()
            .chain(&selection.no_contact)
            .cloned()
            .collect();
        if !done.is_empty() {
            store
                .record_reminder(&done, cli::unix_seconds(now), &[], day_of(now))
                .await?;
        }
    }
    let sender = Sender {
        store: store.clone(),
        mailer: Arc::clone(mailer),
        clock: Arc::clone(clock),
        templates: Arc::clone(templates),
        limiter: Limiter::new(run.mails_per_address_per_day, day_of(now)),
        claims: (!run.dry_run).then(|| Claims::new(run.claim_lease)),
        dry_run: run.dry_run,
        cancel: cancel.clone(),
    };
    let tally = send_all(sender, selection.reminders, run.parallel_sends).await?;
    Ok(Summary {
        examined: selection.examined,
        sent: tally.sent,
        renewed: selection.renewed.len() as u64,
        bad_addresses: tally.bad_addresses + selection.no_contact_registrations,
        failures: tally.failures,
        deferred: tally.deferred,
        claimed_elsewhere: tally.claimed_elsewhere,
    })
}
