//! The flags both programs take: clap parsing that fails in one line, duration and size
//! values, and the SMTP flags with their translation into a [`mailer::Config`] (the files
//! they name are checked before the run starts).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::exit::{EXIT_USAGE, Fatal};

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
}
