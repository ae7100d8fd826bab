//! `mail-test-srv`: flags → [`mail_test_srv::Config`], bind, print the READY line, serve.
//!
//! stdout carries exactly one line, `READY smtp=ADDR http=ADDR seed=N`, so a parent process
//! (the harness, a CI script) can start it with port 0 and read where it listens.
//! Logs go to stderr (`RUST_LOG`, default `info`). A bad flag or an unreadable file is one
//! line on stderr and exit status 2; SIGINT/SIGTERM shut down cleanly with status 0.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mail_test_srv::fault::{Action, FaultRule, Stage, Trigger};
use mail_test_srv::{AuthMode, CertSource, Config, Limits, TlsMode};

/// A fault-injecting SMTP test server with an HTTP report API.
#[derive(Debug, Parser)]
#[command(name = "mail-test-srv", version, about)]
struct Cli {
    /// SMTP listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9380")]
    smtp: SocketAddr,
    /// HTTP report API listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9381")]
    http: SocketAddr,
    /// Name in the greeting and the EHLO reply.
    #[arg(long, default_value = "localhost")]
    hostname: String,
    /// TLS mode of the SMTP listener.
    #[arg(long, value_enum, default_value_t = TlsArg::None)]
    tls: TlsArg,
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
    /// Default when TLS is on without --cert: a fresh folder under the temp dir (logged).
    #[arg(long, value_name = "DIR")]
    generate_cert: Option<PathBuf>,
    /// AUTH: `off`, `any` (any credentials succeed), or `USER:PASSWORD` (enforced; MAIL needs it).
    #[arg(long, value_name = "off|any|USER:PASSWORD", default_value = "off", value_parser = parse_auth)]
    auth: AuthMode,
    /// Refuse AUTH and MAIL before STARTTLS (530), as a submission server would.
    #[arg(long)]
    require_tls: bool,
    /// Concurrent SMTP connections; one more gets 421 and is closed.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Close a silent session after this long (421 4.4.2), e.g. `30s`, `5m`.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Largest message in bytes (advertised as SIZE); bigger gets 552.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_size)]
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
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_stored_bytes)]
    max_stored_bytes: usize,
    /// A fault rule STAGE:ACTION[:TRIGGER...], repeatable, first match wins,
    /// e.g. `mail:close:35%`, `rcpt:reply=550:to=bad@example.com`, `data-end:accept-close:first=1`.
    #[arg(long = "fault", value_name = "RULE")]
    faults: Vec<FaultRule>,
    /// Close at MAIL with this chance in percent (0..=100); the same as `--fault mail:close:P%`.
    #[arg(long, value_name = "P", value_parser = parse_percent)]
    close_chance: Option<f64>,
    /// Close at MAIL for the first N MAIL commands of the server (one per connection for a
    /// client that reconnects), alternating 421+close and a bare close; the same as
    /// `--fault mail:close:first=N:every=2 --fault mail:421:first=N`.
    #[arg(long, value_name = "N")]
    close_first: Option<u64>,
    /// Seed of every random fault decision; random when absent (always printed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
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
            _ => Err("expected off, any or USER:PASSWORD".to_owned()),
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

/// The configuration the flags describe; an error is a usage error (exit 2).
fn config(cli: Cli) -> Result<Config, String> {
    let tls = match cli.tls {
        TlsArg::None => TlsMode::None,
        TlsArg::Starttls => TlsMode::StartTls,
        TlsArg::Implicit => TlsMode::Implicit,
    };
    let cert = match (cli.cert, cli.key, cli.generate_cert) {
        (Some(cert), Some(key), _) => {
            for path in [&cert, &key] {
                std::fs::File::open(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            }
            Some(CertSource::Files { cert, key })
        }
        (_, _, Some(dir)) => Some(CertSource::Generate { dir }),
        _ if tls != TlsMode::None => {
            let dir = std::env::temp_dir().join(format!("mail-test-srv-{}", std::process::id()));
            Some(CertSource::Generate { dir })
        }
        _ => None,
    };
    if cli.require_tls && tls != TlsMode::StartTls && tls != TlsMode::Implicit {
        return Err("--require-tls needs --tls starttls or --tls implicit".to_owned());
    }
    let mut faults = cli.faults;
    if let Some(n) = cli.close_first {
        let first = |every| Trigger {
            first: Some(n),
            every,
            ..Trigger::default()
        };
        // Even reaches close bare, odd ones get 421 first: the two ways a flaky server hangs up.
        faults.push(FaultRule {
            stage: Stage::Mail,
            action: Action::Close,
            trigger: first(Some(2)),
        });
        faults.push(FaultRule {
            stage: Stage::Mail,
            action: Action::Reply421,
            trigger: first(None),
        });
    }
    if let Some(p) = cli.close_chance {
        faults.push(FaultRule {
            stage: Stage::Mail,
            action: Action::Close,
            trigger: Trigger {
                chance: Some(p),
                ..Trigger::default()
            },
        });
    }
    Ok(Config {
        smtp_addr: cli.smtp,
        http_addr: cli.http,
        hostname: cli.hostname,
        tls,
        cert,
        auth: cli.auth,
        require_tls: cli.require_tls,
        limits: Limits {
            max_connections: cli.max_connections,
            idle_timeout: cli.idle_timeout,
            max_message_size: cli.max_message_size,
            max_recipients: cli.max_recipients,
            max_line_length: cli.max_line_length,
            max_messages: cli.max_messages,
            max_stored_bytes: cli.max_stored_bytes,
        },
        faults,
        seed: cli.seed,
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "mail-test-srv: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let config = match config(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mail-test-srv: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mail-test-srv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mail-test-srv: {e:#}");
            // Bad certificate material is a usage error like a bad flag; a failed bind is not.
            if e.chain()
                .any(|cause| cause.is::<mail_test_srv::tls::TlsError>())
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if let Some(CertSource::Generate { dir }) = &config.cert {
        tracing::info!(dir = %dir.display(), "generating a test CA; clients should trust ca.pem there");
    }
    let handle = mail_test_srv::start(config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "READY smtp={} http={} seed={}",
        handle.smtp_addr(),
        handle.http_addr(),
        handle.seed()
    )?;
    stdout.flush()?;
    drop(stdout);
    tracing::info!(smtp = %handle.smtp_addr(), http = %handle.http_addr(), seed = handle.seed(), "serving");
    wait_for_signal().await?;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
