//! The command line of expiration-mailer.

use std::path::PathBuf;
use std::time::Duration;

use mailer_programs::cli::{SmtpArgs, TemplateArgs, parse_duration};

/// Reminds account contacts that their certificates expire soon.
///
/// Without a subcommand: one run (or, with --daemon, a run every --frequency) over the
/// certificates in --db. Exit 0 when every due reminder was sent (or marked: renewed, bad
/// address), 1 when a reminder could not be delivered (left for the next run) or the store
/// or the mail server could not be used, 2 on bad input.
#[derive(Debug, clap::Parser)]
#[command(name = "expiration-mailer", version, subcommand_negates_reqs = true)]
pub struct Args {
    /// The store: sqlite://PATH (created when missing) or mysql://USER:PASS@HOST/DB.
    #[arg(
        long,
        global = true,
        default_value = "sqlite://expiration-mailer.sqlite",
        value_name = "URL"
    )]
    pub db: String,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Registers certificates (PEM files) for a contact; importing one twice changes nothing.
    Import(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Contact URL of the account, e.g. mailto:admin@example.com (repeatable).
    #[arg(long, required = true, value_name = "URL")]
    pub contact: Vec<String>,
    /// PEM files, each with one or more certificates.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    pub pem: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// How long before expiry to remind, comma-separated; each gets --frequency added.
    #[arg(long, value_delimiter = ',', value_parser = parse_duration, default_value = "480h,240h")]
    pub nag_times: Vec<Duration>,
    /// How often the mailer runs (the pause between runs with --daemon).
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub frequency: Duration,
    /// Most certificates examined per nag window per run.
    #[arg(long, default_value_t = 100_000)]
    pub cert_limit: u32,
    /// Most reminders per address per (UTC) day, across runs; 0 for no limit.
    #[arg(long, default_value_t = 0)]
    pub mails_per_address_per_day: u32,
    /// SMTP connections used in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub parallel_sends: u32,
    /// Log the reminders instead of sending them; the store is left unchanged.
    #[arg(long)]
    pub dry_run: bool,
    /// How long a run's claim on a reminder lasts before another run may take it over: what
    /// a killed run leaves behind. Longer than one send, reconnects included.
    #[arg(long, value_parser = parse_duration, default_value = "1h")]
    pub claim_lease: Duration,
    /// Keep running, one run every --frequency, until SIGTERM or SIGINT.
    #[arg(long)]
    pub daemon: bool,
    /// Subject template (minijinja), replacing the built-in one.
    #[arg(long)]
    pub subject: Option<String>,
    /// Body template file (minijinja), replacing the built-in one.
    #[arg(long, value_name = "FILE")]
    pub email_template: Option<PathBuf>,

    #[command(flatten)]
    pub templates: TemplateArgs,

    #[command(flatten)]
    pub smtp: SmtpArgs,
}
