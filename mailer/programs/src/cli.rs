//! Flags and set-up shared by expiration-mailer and notify-mailer: the SMTP flags and their
//! translation into a [`mailer::Config`], the clock, logging, template helpers, and how a
//! failure becomes one line on stderr and an exit code.
//!
//! Exit codes: 0 the run completed; 1 the store or the mail server could not be used
//! ([`Fatal::failure`]); 2 the input was wrong: a flag, a file, a URL, `FAKECLOCK`
//! ([`Fatal::usage`]), as clap itself does for unknown flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::db::StoreError;

mod summary;
mod template;

pub use summary::{backoff_line, smtp_words};

pub use template::{DEFAULT_FUEL, DEFAULT_MAX_OUTPUT, MailTemplates, TemplateArgs, template_error};

/// Exit code of a run that could not reach the store or the mail server.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error: bad flag, unreadable or malformed input, bad URL.
pub const EXIT_USAGE: u8 = 2;

/// An error that ends the program, with the exit code it deserves.
#[derive(Debug)]
pub struct Fatal {
    code: u8,
    error: anyhow::Error,
}

impl Fatal {
    /// The user's input is wrong (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Fatal {
        Fatal {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
    /// The store or the server could not be used (exit 1).
    pub fn failure(error: impl Into<anyhow::Error>) -> Fatal {
        Fatal {
            code: EXIT_FAILURE,
            error: error.into(),
        }
    }
    pub fn code(&self) -> u8 {
        self.code
    }
    pub fn error(&self) -> &anyhow::Error {
        &self.error
    }
}

impl From<StoreError> for Fatal {
    fn from(error: StoreError) -> Fatal {
        if error.is_usage() {
            Fatal::usage(error)
        } else {
            Fatal::failure(error)
        }
    }
}

/// The whole `main` of a program: parse the flags (exit 2 on bad ones), set up logging, run
/// `run` on a multi-threaded runtime, and turn its result into one line and an exit code.
pub fn main<A, F, Fut>(program: &str, run: F) -> ExitCode
where
    A: clap::Parser,
    F: FnOnce(A) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, Fatal>>,
{
    let args: A = parse_args(program);
    init_logging();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Fatal::failure)
        .and_then(|runtime| runtime.block_on(run(args)));
    finish(program, result)
}

/// Turns the outcome of `run` into the process exit code, printing a fatal error as one line.
pub fn finish(program: &str, result: Result<ExitCode, Fatal>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(fatal) => {
            eprintln!(
                "{program}: error: {}",
                one_line(&format!("{:#}", fatal.error))
            );
            ExitCode::from(fatal.code)
        }
    }
}

/// Parses the command line; a bad flag is one line on stderr and exit 2 (clap's own report
/// spans several lines with usage text), `--help` and `--version` print and exit 0.
pub fn parse_args<T: clap::Parser>(program: &str) -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                err.exit();
            }
            let rendered = err.to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("bad arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("{program}: error: {first} (see --help)");
            std::process::exit(i32::from(EXIT_USAGE));
        }
    }
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Logs to stderr; `RUST_LOG` chooses the level (warnings only by default, so that the
/// summary on stdout and the progress bar stay readable).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only when a subscriber is already installed, which is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A humantime duration flag (`90s`, `1h`, `480h`), for clap's `value_parser`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

/// A size flag: a plain number of bytes, or with a unit (`500KB`, `64MiB`, `1GB`; KB, MB and
/// GB are powers of 1000, KiB, MiB and GiB of 1024), for clap's `value_parser`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("{text:?} is not a size (e.g. 1000000, 500KB, 64MiB)");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "kib" => 1 << 10,
        "mb" | "m" => 1_000_000,
        "mib" => 1 << 20,
        "gb" | "g" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    number.checked_mul(factor).ok_or_else(bad)
}

/// How to speak TLS to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsArg {
    /// Plain text.
    None,
    /// Plain text, then STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// The SMTP flags both programs take.
#[derive(Debug, Clone, clap::Args)]
pub struct SmtpArgs {
    /// SMTP server host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub smtp_server: String,
    /// SMTP server port.
    #[arg(long, default_value_t = 25)]
    pub smtp_port: u16,
    /// TLS mode: none, starttls or implicit.
    #[arg(long, value_enum, default_value = "none")]
    pub smtp_tls: TlsArg,
    /// PEM file of a root CA to trust for the server's certificate (instead of the web PKI roots).
    #[arg(long, value_name = "FILE")]
    pub smtp_root_ca: Option<PathBuf>,
    /// User name for SMTP AUTH (with --smtp-password-file).
    #[arg(long)]
    pub smtp_user: Option<String>,
    /// File holding the SMTP AUTH password (a trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// Sender address, optionally with a display name: "Expiry bot <bot@example.com>".
    /// Required to send (and to dry-run).
    #[arg(long)]
    pub from: Option<String>,
    /// First reconnect delay after a dropped connection (doubles up to --reconnect-max).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub reconnect_base: Duration,
    /// Longest delay between reconnect attempts.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub reconnect_max: Duration,
    /// Reconnect attempts in one outage before a message is given up as failed.
    #[arg(long, default_value_t = 30)]
    pub max_reconnects: u32,
    /// Time spent reconnecting in one outage before giving up (no limit when absent).
    #[arg(long, value_parser = parse_duration)]
    pub reconnect_deadline: Option<Duration>,
    /// Timeout of every SMTP step (connect, each command, the message).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub smtp_timeout: Duration,
}

impl SmtpArgs {
    /// The mailer's configuration from these flags. Reads the password file and checks the
    /// root CA file now, so a bad path is a usage error before the run starts.
    pub fn mailer_config(&self, dry_run: bool) -> Result<mailer::Config, Fatal> {
        let credentials = match (&self.smtp_user, &self.smtp_password_file) {
            (Some(user), Some(file)) => Some((user.clone(), read_password_file(file)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Fatal::usage(anyhow::anyhow!(
                    "--smtp-user needs --smtp-password-file"
                )));
            }
            (None, Some(_)) => {
                return Err(Fatal::usage(anyhow::anyhow!(
                    "--smtp-password-file needs --smtp-user"
                )));
            }
        };
        if let Some(ca) = &self.smtp_root_ca {
            check_readable(ca, "root CA file")?;
        }
        let from = match self.from.as_deref().map(str::trim) {
            Some(from) if !from.is_empty() => from.to_owned(),
            _ => return Err(Fatal::usage(anyhow::anyhow!("--from is required"))),
        };
        Ok(mailer::Config {
            server: self.smtp_server.clone(),
            port: self.smtp_port,
            tls: match self.smtp_tls {
                TlsArg::None => mailer::TlsMode::None,
                TlsArg::Starttls => mailer::TlsMode::StartTls,
                TlsArg::Implicit => mailer::TlsMode::Implicit,
            },
            root_ca: self.smtp_root_ca.clone(),
            credentials,
            from,
            reconnect_base: self.reconnect_base,
            reconnect_max: self.reconnect_max,
            max_reconnects: self.max_reconnects,
            reconnect_deadline: self.reconnect_deadline,
            step_timeout: self.smtp_timeout,
            dry_run,
            ..mailer::Config::default()
        })
    }
}

/// The clock of this run: `FAKECLOCK` when set (a bad value is a usage error), else the system's.
pub fn clock() -> Result<std::sync::Arc<dyn mailer::Clock>, Fatal> {
    crate::fakeclock::clock_from_env().map_err(Fatal::usage)
}

/// Reads a password file: the whole file minus its trailing line end.
pub fn read_password_file(path: &Path) -> Result<String, Fatal> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fatal::usage(anyhow::anyhow!(
            "cannot read the password file {}: {e}",
            path.display()
        ))
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Checks that a file given by flag can be read now, before any mail goes out.
pub fn check_readable(path: &Path, what: &str) -> Result<(), Fatal> {
    std::fs::File::open(path).map(drop).map_err(|e| {
        Fatal::usage(anyhow::anyhow!(
            "cannot read the {what} {}: {e}",
            path.display()
        ))
    })
}

/// Days since the Unix epoch (UTC) of a time; the unit of `--mails-per-address-per-day`.
pub fn day_of(time: SystemTime) -> i64 {
    unix_seconds(time).div_euclid(86_400)
}

/// Seconds since the Unix epoch, negative before it.
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Cancels `cancel` on the first SIGINT or SIGTERM, so the run stops after the message in
/// flight (recorded, never half-written); exits at once with 130 on a second one.
pub async fn cancel_on_signal(cancel: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    cancel.cancel();
    // A second signal means "now": do not wait for a send stuck in reconnect backoff.
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    std::process::exit(130);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        smtp: SmtpArgs,
    }

    #[test]
    fn reconnect_bounds_and_step_timeout_reach_the_mailer_config() {
        use clap::Parser;
        let flags = Flags::parse_from([
            "x",
            "--from=bot@example.com",
            "--max-reconnects=3",
            "--reconnect-deadline=2s",
            "--smtp-timeout=5s",
        ]);
        let config = flags.smtp.mailer_config(false).unwrap();
        assert_eq!(config.max_reconnects, 3);
        assert_eq!(config.reconnect_deadline, Some(Duration::from_secs(2)));
        assert_eq!(config.step_timeout, Duration::from_secs(5));
        let defaults = Flags::parse_from(["x", "--from=bot@example.com"]);
        let config = defaults.smtp.mailer_config(false).unwrap();
        assert_eq!(config.max_reconnects, 30);
        assert_eq!(config.reconnect_deadline, None);
        assert!(Flags::try_parse_from(["x", "--max-reconnects=-1"]).is_err());
    }

    #[test]
    fn durations_parse_humantime() {
        assert_eq!(parse_duration("480h"), Ok(Duration::from_secs(480 * 3600)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        for bad in ["", "MiB", "12XB", "-1", "99999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_utc_days_since_the_epoch() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 5);
        assert_eq!(day_of(t), 3);
        assert_eq!(day_of(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), -1);
    }

    #[test]
    fn multi_line_errors_become_one_line() {
        assert_eq!(one_line("a\n\n  b\n"), "a   b");
    }
}
