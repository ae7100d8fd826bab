//! The command line of notify-mailer.

use std::path::PathBuf;
use std::time::Duration;

use mailer_programs::cli::{SmtpArgs, TemplateArgs, parse_duration};

/// Sends one templated message to each address of a list.
///
/// The list (--recipients) is CSV with a header, or TSV with --tsv. Its first column is
/// `email` (an address) or `id` (a registration id, resolved through --db to its mailto:
/// contacts); the other columns are data for the body template, which sees each address
/// once, with all of its rows as `rows`. Nothing is sent unless --dry-run=false is given.
/// Exit 0 when every message was sent, 1 when some failed (listed at the end) or the
/// server could not be reached, 2 on bad input.
#[derive(Debug, clap::Parser)]
#[command(name = "notify-mailer", version)]
pub struct Args {
    /// The recipient list: CSV (or TSV with --tsv) with a header line.
    #[arg(long, value_name = "FILE")]
    pub recipients: PathBuf,
    /// The list is tab-separated.
    #[arg(long)]
    pub tsv: bool,
    /// Body template (minijinja); sees `email`, `rows` and the first row's columns.
    #[arg(long, value_name = "FILE")]
    pub body: PathBuf,
    /// Subject template (minijinja), rendered per address like the body.
    #[arg(long)]
    pub subject: String,
    /// Only log what would be sent; --dry-run=false sends.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub dry_run: bool,
    /// Pause after each message (per connection), e.g. 500ms.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub sleep: Duration,
    /// SMTP connections used in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub parallel_sends: u32,
    /// First address to send to, in alphabetical order (inclusive).
    #[arg(long)]
    pub start: Option<String>,
    /// Address to stop before, in alphabetical order (exclusive).
    #[arg(long)]
    pub end: Option<String>,
    /// The store holding registrations, for an `id` column.
    #[arg(
        long,
        default_value = "sqlite://expiration-mailer.sqlite",
        value_name = "URL"
    )]
    pub db: String,

    #[command(flatten)]
    pub templates: TemplateArgs,

    #[command(flatten)]
    pub smtp: SmtpArgs,
}
