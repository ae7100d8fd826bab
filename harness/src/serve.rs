//! `harness serve`: the same servers as a run, left running with their addresses printed until
//! Ctrl-C (or SIGTERM): a local flaky mail server for a developer's own application.

use std::process::ExitCode;

use anyhow::Context;

use crate::binaries::{self, Needs};
use crate::cli::ServeArgs;
use crate::servers::{self, PLAIN, Plan, Server, TLS};
use crate::startservers::{Services, Shutdown};

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let binaries = binaries::prepare(Needs::Server, !args.server.no_build)?;
    let seed = args.server.seed.unwrap_or_else(rand::random);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let mut shutdown = Shutdown::new().context("cannot catch SIGINT/SIGTERM")?;
        let work = tempfile::Builder::new().prefix("harness-serve-").tempdir().context("cannot create a temporary folder")?;
        let cert_dir = work.path().join("tls");
        let plan = Plan { seed, close_chance: args.server.close_chance, cert_dir: cert_dir.clone(), echo: !args.quiet,
            log: "info" };
        let mut services = tokio::select! {
            started = Services::start(servers::table(&binaries, &plan)) => started?,
            signal = shutdown.recv() => {
                eprintln!("harness: {signal} while starting the servers; stopped");
                return Ok(ExitCode::from(130));
            }
        };
        let plain = Server::from_services(&services, PLAIN, None)?;
        let ca = cert_dir.join("ca.pem");
        let tls = Server::from_services(&services, TLS, Some(&ca))?;
        let chance = args.server.close_chance;
        println!("{PLAIN}:     smtp {}  http http://{}/  (closes the connection at {chance}% of MAILs; seed {seed})", plain.smtp, plain.http);
        println!("{TLS}: smtp {}  http http://{}/  (implicit TLS; trust {}; same faults)", tls.smtp, tls.http, ca.display());
        println!("Mail: GET /count, /mail/N, /api/v1/messages; faults: /api/v1/events, /api/v1/stats. Ctrl-C stops both.");
        let code = tokio::select! {
            signal = shutdown.recv() => {
                eprintln!("harness: {signal}; stopping");
                ExitCode::SUCCESS
            }
            died = services.wait_for_exit() => {
                eprintln!("harness: {died}");
                ExitCode::FAILURE
            }
        };
        services.stop().await;
        Ok(code)
    })
}
