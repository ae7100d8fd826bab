//! `mail-test-srv`: flags → [`mail_test_srv::Config`], bind, print the READY line, serve.
//!
//! stdout carries exactly one line, `READY smtp=ADDR http=ADDR seed=N`, so a parent process
//! (the harness, a CI script) can start it with port 0 and read where it listens.
//! Logs go to stderr (`RUST_LOG`, default `info`). A bad flag or an unreadable file is one
//! line on stderr and exit status 2; SIGINT/SIGTERM shut down cleanly with status 0.
//!
//! - `cli.rs`: the flags and the [`mail_test_srv::Config`] they describe.
//! - `go_flags.rs`: the original Go server's one-dash spellings (`-closeFirst 5`).

mod cli;
mod go_flags;

use std::io::Write as _;
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
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "mail-test-srv: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
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
