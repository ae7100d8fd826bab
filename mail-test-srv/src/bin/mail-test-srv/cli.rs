//! The flags and how they become a [`Config`]. Every check that can fail without touching
//! the network is here, so a bad command line is one line on stderr and exit 2.
//!
//! The original Go server's spellings work as they are: `-smtp`, `-http`, `-cert`, `-key`,
//! `-closeFirst`, `-closeChance` (one dash, rewritten by `go_flags.rs`), `--closeFirst` and
//! `--closeChance`, and `--cert F --key F` without `--tls` serving implicit TLS as it did.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mail_test_srv::fault::{Action, FaultRule, Stage, Trigger};
use mail_test_srv::{AuthMode, BareLf, CertFault, CertSource, Config, HttpConfig, Limits, TlsMode};

/// A fault-injecting SMTP test server with an HTTP report API.
#[derive(Debug, Parser)]
#[command(
    name = "mail-test-srv",
    version,
    about,
    after_help = "Coming from the original Go server: every long flag also takes one dash \
                  (-smtp ADDR, -http ADDR, -cert F, -key F, -closeFirst N, -closeChance N), \
                  and -flag=value, as Go's flag package did."
)]
pub struct Cli {
    /// SMTP listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9380")]
    smtp: SocketAddr,
    /// HTTP report API listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9381")]
    http: SocketAddr,
    /// Name in the greeting and the EHLO reply.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// TLS mode of the SMTP listener [default: none, or implicit with --cert/--key or
    /// --generate-cert, as the original server did].
    #[arg(long, value_enum)]
    tls: Option<TlsArg>,
    /// Certificate chain (PEM) for TLS; needs --key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "key",
        conflicts_with = "generate_cert"
    )]
    cert: Option<PathBuf>,
    /// Private key (PEM) for TLS; needs --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Generate a CA and a localhost certificate into DIR (ca.pem, cert.pem, key.pem).
    /// Default when TLS is on without --cert: a fresh folder under the temp dir (logged),
    /// removed on exit; a DIR named here is kept.
    #[arg(long, value_name = "DIR")]
    pub generate_cert: Option<PathBuf>,
    /// Serve a wrong certificate, to test clients' checks: `expired` or `wrong-host` (for
    /// wrong.example), both signed by the generated CA, or `untrusted` (self-signed, outside
    /// it). Needs TLS with a generated certificate, not --cert/--key.
    #[arg(long, value_enum, value_name = "expired|wrong-host|untrusted")]
    tls_cert_fault: Option<CertFaultArg>,
    /// AUTH: `any` (advertised, any credentials succeed), `off` (not advertised), or
    /// `USER:PASSWORD` (enforced; MAIL needs it).
    #[arg(long, value_name = "any|off|USER:PASSWORD", default_value = "any", value_parser = parse_auth)]
    auth: AuthMode,
    /// Refuse AUTH and MAIL before STARTTLS (530), as a submission server would.
    #[arg(long)]
    require_tls: bool,
    /// RFC 5321 path syntax for MAIL FROM and RCPT TO (501 otherwise). By default paths are
    /// read leniently, as real clients send them (`MAIL FROM:<"Name" <a@b>>`); changeable at
    /// runtime with `PATCH /api/v1/settings`.
    #[arg(long)]
    strict: bool,
    /// A line ending in LF without CR: `keep` (data in DATA, where only CRLF.CRLF ends the
    /// message, so no SMTP smuggling; a command line is taken) or `reject` (521 and close,
    /// like Postfix's smtpd_forbid_bare_newline, to test that a client sends CRLF).
    #[arg(long, value_enum, value_name = "keep|reject", default_value_t = BareLfArg::Keep)]
    bare_lf: BareLfArg,
    /// Concurrent SMTP connections; one more gets 421 and is closed.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Close a silent session after this long (421 4.4.2), e.g. `30s`, `5m`.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Largest message in bytes (advertised as SIZE); bigger gets 552.
    #[arg(long, value_name = "BYTES", default_value = "10MiB", value_parser = parse_size)]
    max_message_size: usize,
    /// Recipients per message; one more gets 452.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_recipients)]
    max_recipients: usize,
    /// Longest command line in bytes, CRLF included (at least 512, RFC 5321 4.5.3.1.4).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_line_length,
          value_parser = parse_line_length)]
    max_line_length: usize,
    /// Messages kept in memory; past it the oldest are evicted.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_messages)]
    max_messages: usize,
    /// Bytes of messages kept in memory; past it the oldest are evicted.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = parse_size)]
    max_stored_bytes: usize,
    /// Message bytes being received at once over all sessions; a DATA past it gets 452
    /// (before 354) or 451 (after the final dot), so many slow uploads cannot exhaust memory.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_size)]
    max_inflight_bytes: usize,
    /// The longest any session may last (a delay, a hang, a slow upload included); then
    /// 421 4.4.2 and close.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    max_session_time: Duration,
    /// Refused commands (5xx) a session may collect; one more gets 421 4.7.0 and a close,
    /// which ends AUTH guessing and garbage floods (Postfix's smtpd_hard_error_limit).
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_errors)]
    max_errors: usize,
    /// Record a transcript of every session (`GET /api/v1/sessions`); `off` records nothing.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    transcripts: Switch,
    /// Closed sessions whose transcripts are kept; past it the oldest are dropped.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sessions)]
    max_sessions: usize,
    /// Bytes of transcripts kept; past it the oldest closed sessions are dropped.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", value_parser = parse_size)]
    max_transcript_bytes: usize,
    /// Bytes the fault event log keeps; past it the oldest events are dropped (counted).
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_size)]
    max_event_bytes: usize,
    /// Concurrent HTTP connections; one more is answered 503 and closed at once.
    #[arg(long, value_name = "N", default_value_t = HttpConfig::default().max_connections)]
    http_max_connections: usize,
    /// Time an HTTP connection has to send a whole request header (from accept, or from
    /// the end of its previous request), e.g. `10s`; a plain number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_seconds)]
    http_header_timeout: Duration,
    /// Close an HTTP connection that moves no byte for this long in a request (a stalled
    /// body, a response not read); a long poll waits its own timeout. A plain number is seconds.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_seconds)]
    http_idle_timeout: Duration,
    /// A host name (NAME or NAME:PORT) accepted in the HTTP Host and Origin headers besides
    /// the listening address and localhost, repeatable; others get 403 (DNS rebinding, CSRF).
    #[arg(long = "http-allowed-host", value_name = "NAME[:PORT]")]
    http_allowed_hosts: Vec<String>,
    /// A fault rule STAGE:ACTION[:TRIGGER...], repeatable, first match wins,
    /// e.g. `mail:close:35%`, `rcpt:reply=550:to=bad@example.com`, `data-end:accept-close:first=1`.
    #[arg(long = "fault", value_name = "RULE")]
    faults: Vec<FaultRule>,
    /// Close at MAIL with this chance in percent (0..=100), the original `-closeChance`;
    /// the same as `--fault mail:close:P%`.
    #[arg(long, visible_alias = "closeChance", value_name = "P", value_parser = parse_percent)]
    close_chance: Option<f64>,
    /// Close at MAIL for the first N MAIL commands of the server (one per connection for a
    /// client that reconnects), alternating 421+close and a bare close, as a later original
    /// version did; the same as `--fault mail:close:first=N:every=2 --fault mail:421:first=N`.
    #[arg(long, value_name = "N", conflicts_with = "close_first_original")]
    close_first: Option<u64>,
    /// The original `-closeFirst N`: at MAIL, on each of the first N connections, close
    /// without any reply; the same as `--fault mail:close:first-conns=N`.
    #[arg(long = "closeFirst", value_name = "N")]
    close_first_original: Option<u64>,
    /// Seed of every random fault decision; random when absent (always printed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// The SMTP side gone away for FOR, AFTER the READY line, repeatable: MODE `refuse`
    /// (the default: listener closed, sessions reset) or `blackhole` (accepted, never
    /// answered), e.g. `5s:10s`, `1m:30s:blackhole`. The same as `POST /api/v1/outage`.
    #[arg(long = "outage-at", value_name = "AFTER:FOR[:MODE]")]
    outages: Vec<mail_test_srv::outage::Scheduled>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BareLfArg {
    Keep,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CertFaultArg {
    Expired,
    WrongHost,
    Untrusted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TlsArg {
    None,
    Starttls,
    Implicit,
}

fn parse_auth(text: &str) -> Result<AuthMode, String> {
    match text {
        "off" => Ok(AuthMode::Off),
        "any" => Ok(AuthMode::AcceptAny),
        _ => match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(AuthMode::Required {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err("expected any, off or USER:PASSWORD".to_owned()),
        },
    }
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err("must be between 0 and 100".to_owned())
    }
}

/// A byte count: a plain number, or with a unit: `KiB`, `MiB`, `GiB` (powers of 1,024), or
/// `K`/`KB`, `M`/`MB`, `G`/`GB` (powers of 1,000), as the mailers read them too.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (expected e.g. 1048576, 512KiB, 64MiB)"))?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown size unit in {text:?} (expected KiB, MiB, GiB, KB, MB or GB)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A duration with a unit (`10s`, `2m`, `500ms`), or a plain number of seconds.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}")),
    }
}

fn parse_line_length(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if n >= 512 {
        Ok(n)
    } else {
        Err("must be at least 512".to_owned())
    }
}

/// A configuration, and notes for stderr about what was implied.
#[derive(Debug)]
pub struct Resolved {
    pub config: Config,
    pub notes: Vec<String>,
}

/// TLS mode and certificate source from `--tls`, `--cert/--key` and `--generate-cert`.
fn tls_setup(cli: &Cli, notes: &mut Vec<String>) -> Result<(TlsMode, Option<CertSource>), String> {
    let material = cli.cert.is_some() || cli.generate_cert.is_some();
    let tls = match (cli.tls, material) {
        (Some(TlsArg::None), true) => {
            return Err("--cert/--key and --generate-cert need TLS, not --tls none".to_owned());
        }
        (Some(TlsArg::None), false) | (None, false) => TlsMode::None,
        (Some(TlsArg::Starttls), _) => TlsMode::StartTls,
        (Some(TlsArg::Implicit), _) => TlsMode::Implicit,
        (None, true) => {
            notes.push(
                "TLS material given without --tls: serving implicit TLS, as the original \
                 server did (--tls starttls for STARTTLS)"
                    .to_owned(),
            );
            TlsMode::Implicit
        }
    };
    let cert = match (&cli.cert, &cli.key, &cli.generate_cert) {
        (Some(cert), Some(key), _) => {
            for path in [cert, key] {
                std::fs::File::open(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            }
            Some(CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            })
        }
        (_, _, Some(dir)) => Some(CertSource::Generate { dir: dir.clone() }),
        _ if tls != TlsMode::None => {
            let dir = std::env::temp_dir().join(format!("mail-test-srv-{}", std::process::id()));
            Some(CertSource::Generate { dir })
        }
        _ => None,
    };
    Ok((tls, cert))
}

/// `--tls-cert-fault`, which only a generated certificate can carry out.
fn cert_fault(
    cli: &Cli,
    tls: TlsMode,
    cert: Option<&CertSource>,
) -> Result<Option<CertFault>, String> {
    let Some(fault) = cli.tls_cert_fault else {
        return Ok(None);
    };
    if tls == TlsMode::None {
        return Err("--tls-cert-fault needs TLS (--tls starttls or --tls implicit)".to_owned());
    }
    if matches!(cert, Some(CertSource::Files { .. })) {
        return Err(
            "--tls-cert-fault needs a generated certificate (--generate-cert, or --tls alone), \
             not --cert/--key"
                .to_owned(),
        );
    }
    Ok(Some(match fault {
        CertFaultArg::Expired => CertFault::Expired,
        CertFaultArg::WrongHost => CertFault::WrongHost,
        CertFaultArg::Untrusted => CertFault::Untrusted,
    }))
}

/// The rules `--closeFirst`, `--close-first` and `--close-chance` stand for, in that order.
fn shorthand_rules(cli: &Cli) -> Vec<FaultRule> {
    let rule = |action, trigger| FaultRule::new(Stage::Mail, action, trigger);
    let mut rules = Vec::new();
    if let Some(n) = cli.close_first_original {
        let trigger = Trigger {
            first_conns: Some(n),
            ..Trigger::default()
        };
        rules.push(rule(Action::Close, trigger));
    }
    if let Some(n) = cli.close_first {
        let first = |every| Trigger {
            first: Some(n),
            every,
            ..Trigger::default()
        };
        // Even reaches close bare, odd ones get 421 first: the two ways a flaky server hangs up.
        rules.push(rule(Action::Close, first(Some(2))));
        rules.push(rule(Action::Reply421, first(None)));
    }
    if let Some(p) = cli.close_chance {
        let trigger = Trigger {
            chance: Some(p),
            ..Trigger::default()
        };
        rules.push(rule(Action::Close, trigger));
    }
    rules
}

/// The configuration the flags describe; an error is a usage error (exit 2).
pub fn resolve(cli: Cli) -> Result<Resolved, String> {
    let mut notes = Vec::new();
    let (tls, cert) = tls_setup(&cli, &mut notes)?;
    if cli.require_tls && tls == TlsMode::None {
        return Err("--require-tls needs --tls starttls or --tls implicit".to_owned());
    }
    let tls_cert_fault = cert_fault(&cli, tls, cert.as_ref())?;
    let mut faults = shorthand_rules(&cli);
    faults.splice(0..0, cli.faults);
    mail_test_srv::fault::FaultEngine::check_rules(&faults).map_err(|e| format!("--fault: {e}"))?;
    let config = Config {
        smtp_addr: cli.smtp,
        http_addr: cli.http,
        hostname: cli.hostname,
        tls,
        cert,
        auth: cli.auth,
        require_tls: cli.require_tls,
        tls_cert_fault,
        strict: cli.strict,
        transcripts: cli.transcripts == Switch::On,
        bare_lf: match cli.bare_lf {
            BareLfArg::Keep => BareLf::Keep,
            BareLfArg::Reject => BareLf::Reject,
        },
        limits: Limits {
            max_connections: cli.max_connections,
            idle_timeout: cli.idle_timeout,
            max_message_size: cli.max_message_size,
            max_recipients: cli.max_recipients,
            max_line_length: cli.max_line_length,
            max_messages: cli.max_messages,
            max_stored_bytes: cli.max_stored_bytes,
            max_inflight_bytes: cli.max_inflight_bytes,
            max_session_time: cli.max_session_time,
            max_errors: cli.max_errors,
            max_sessions: cli.max_sessions,
            max_transcript_bytes: cli.max_transcript_bytes,
        },
        http: HttpConfig {
            max_connections: cli.http_max_connections,
            header_timeout: cli.http_header_timeout,
            idle_timeout: cli.http_idle_timeout,
            allowed_hosts: cli.http_allowed_hosts,
        },
        max_event_bytes: cli.max_event_bytes,
        faults,
        seed: cli.seed,
        outages: cli.outages,
    };
    Ok(Resolved { config, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(args: &[&str]) -> Result<Resolved, String> {
        let args = crate::go_flags::normalize(
            std::iter::once("mail-test-srv")
                .chain(args.iter().copied())
                .map(Into::into),
        );
        resolve(Cli::try_parse_from(args).map_err(|e| e.to_string())?)
    }

    fn rules(args: &[&str]) -> Vec<String> {
        let config = resolved(args).unwrap().config;
        config.faults.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn original_fault_spellings() {
        assert_eq!(rules(&["--closeFirst", "5"]), ["mail:close:first-conns=5"]);
        assert_eq!(rules(&["-closeFirst", "5"]), ["mail:close:first-conns=5"]);
        assert_eq!(rules(&["-closeFirst=5"]), ["mail:close:first-conns=5"]);
        assert_eq!(
            rules(&["--close-first", "4"]),
            ["mail:close:first=4:every=2", "mail:421:first=4"]
        );
        for spelling in ["--close-chance", "--closeChance", "-closeChance"] {
            assert_eq!(rules(&[spelling, "35"]), ["mail:close:35%"], "{spelling}");
        }
        assert!(resolved(&["--closeFirst", "1", "--close-first", "1"]).is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64mb"), Ok(64_000_000));
        assert_eq!(parse_size("512K"), Ok(512_000));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("10 parsecs").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        let limits = resolved(&["--max-stored-bytes", "1MiB", "--max-session-time", "90s"])
            .unwrap()
            .config
            .limits;
        assert_eq!(limits.max_stored_bytes, 1 << 20);
        assert_eq!(limits.max_session_time, Duration::from_secs(90));
    }

    #[test]
    fn go_address_flags() {
        let config = resolved(&["-smtp", "127.0.0.1:0", "-http=127.0.0.1:1"])
            .unwrap()
            .config;
        assert_eq!(config.smtp_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.http_addr, "127.0.0.1:1".parse().unwrap());
    }

    #[test]
    fn defaults_accept_auth_and_read_paths_leniently() {
        let config = resolved(&[]).unwrap().config;
        assert_eq!(config.auth, AuthMode::AcceptAny);
        assert!(!config.strict);
        assert_eq!(config.tls, TlsMode::None);
        assert!(resolved(&["--strict"]).unwrap().config.strict);
        assert_eq!(
            resolved(&["--auth", "off"]).unwrap().config.auth,
            AuthMode::Off
        );
    }

    #[test]
    fn tls_material_without_tls_means_implicit() {
        let dir = tempfile::tempdir().unwrap();
        let dir_arg = dir.path().to_str().unwrap();
        let r = resolved(&["--generate-cert", dir_arg]).unwrap();
        assert_eq!(r.config.tls, TlsMode::Implicit);
        assert_eq!(r.notes.len(), 1);
        let r = resolved(&["--generate-cert", dir_arg, "--tls", "starttls"]).unwrap();
        assert_eq!(r.config.tls, TlsMode::StartTls);
        assert!(r.notes.is_empty());
        let refused = resolved(&["--generate-cert", dir_arg, "--tls", "none"]).unwrap_err();
        assert!(refused.contains("--tls none"), "{refused}");
    }

    #[test]
    fn http_limits_take_units_and_plain_numbers() {
        let config = resolved(&[
            "--http-header-timeout",
            "5",
            "--http-idle-timeout",
            "2m",
            "--http-max-connections",
            "9",
            "--http-allowed-host",
            "mail.test",
            "--http-allowed-host",
            "box:8080",
            "--max-event-bytes",
            "1MiB",
        ])
        .unwrap()
        .config;
        assert_eq!(config.http.header_timeout, Duration::from_secs(5));
        assert_eq!(config.http.idle_timeout, Duration::from_secs(120));
        assert_eq!(config.http.max_connections, 9);
        assert_eq!(config.http.allowed_hosts, ["mail.test", "box:8080"]);
        assert_eq!(config.max_event_bytes, 1 << 20);
        let defaults = resolved(&[]).unwrap().config;
        assert!(defaults.http.header_timeout <= Duration::from_secs(30));
        assert_eq!(defaults.http, HttpConfig::default());
        assert!(resolved(&["--http-idle-timeout", "soon"]).is_err());
    }
}
