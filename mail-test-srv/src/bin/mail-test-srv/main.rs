//! `mail-test-srv`: flags → [`mail_test_srv::Config`], bind, print the READY line, serve.
//!
//! stdout carries exactly one line, `READY smtp=ADDR http=ADDR seed=N`, so a parent process
//! (the harness, a CI script) can start it with port 0 and read where it listens.
//! Logs go to stderr (`RUST_LOG`, default `info`). A bad flag or an unreadable file is one
//! line on stderr and exit status 2; SIGINT/SIGTERM shut down cleanly with status 0.
//! TLS without `--cert` or `--generate-cert` generates its certificates into a folder of its
//! own under the temp directory, removed when the process ends (a folder the user named is kept).
//!
//! - `cli.rs`: the flags and the [`mail_test_srv::Config`] they describe.
//! - `go_flags.rs`: the original Go server's one-dash spellings (`-closeFirst 5`).

mod cli;
mod go_flags;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;
use mail_test_srv::{CertSource, Config};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(go_flags::normalize(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mail-test-srv: {}", usage_error_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    // Read before `resolve` takes the flags: a folder the user named is theirs to keep.
    let named_cert_dir = cli.generate_cert.is_some();
    let config = match cli::resolve(cli) {
        Ok(resolved) => {
            for note in resolved.notes {
                eprintln!("mail-test-srv: {note}");
            }
            resolved.config
        }
        Err(e) => {
            eprintln!("mail-test-srv: {e}");
            return ExitCode::from(2);
        }
    };
    // Declared before the runtime, so dropped after it: the server is gone before its
    // certificates are. Dropped on every way out of `main`, a panic's unwinding included.
    let scratch = match &config.cert {
        Some(CertSource::Generate { dir }) if !named_cert_dir => Some(ScratchCertDir(dir.clone())),
        _ => None,
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
    match runtime.block_on(serve(config, scratch.is_some())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mail-test-srv: {e:#}");
            // Bad certificate material is a usage error like a bad flag; a failed bind is not.
            let usage = e.chain().any(|cause| {
                cause.is::<mail_test_srv::tls::TlsError>()
                    || cause
                        .downcast_ref::<mail_test_srv::StartError>()
                        .is_some_and(mail_test_srv::StartError::is_usage)
            });
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The certificate folder this process chose for itself: removed when dropped, so runs with
/// `--tls` alone do not leave a CA and its key behind per pid in the temp directory.
struct ScratchCertDir(PathBuf);

impl Drop for ScratchCertDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => {}
            // Never created: the server stopped before generating anything.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("mail-test-srv: cannot remove {}: {e}", self.0.display()),
        }
    }
}

/// Serves until SIGINT or SIGTERM. `scratch_certs`: the generated certificates go to a folder
/// removed on exit (said in the log, so nobody points a client at it for later).
async fn serve(config: Config, scratch_certs: bool) -> anyhow::Result<()> {
    // Caught from before the start, so a signal while the certificates are being generated
    // also ends in a clean return (and the scratch folder's removal) instead of death by signal.
    let signals = Signals::new()?;
    if let Some(CertSource::Generate { dir }) = &config.cert {
        if scratch_certs {
            tracing::info!(dir = %dir.display(), "generating a test CA; clients should trust ca.pem there (removed on exit; --generate-cert DIR keeps it)");
        } else {
            tracing::info!(dir = %dir.display(), "generating a test CA; clients should trust ca.pem there");
        }
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
    signals.wait().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment this exists.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// clap's usage error as one line: its first line, with its suggestion when it has one
/// (`-closefirst` → "a similar flag exists: '--closeFirst'").
fn usage_error_line(text: &str) -> String {
    let first = text
        .lines()
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ");
    let tip = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: a similar argument exists: "));
    match tip {
        Some(similar) => format!("{first} (a similar flag exists: {similar}; see --help)"),
        None => format!("{first} (see --help)"),
    }
}
