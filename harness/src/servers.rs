//! The harness's service table: two mail-test-srv instances on `127.0.0.1:0`, one plain with
//! `--close-chance`, one speaking implicit TLS with a CA it generates; and what the harness knows
//! about each once it is ready (addresses from its READY line, an API client, the CA file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};

use crate::api::Api;
use crate::binaries::{Binaries, MAIL_TEST_SRV};
use crate::mailers::Smtp;
use crate::startservers::{Readiness, Service, Services};

pub const PLAIN: &str = "mail-test-srv";
pub const TLS: &str = "mail-test-srv-tls";

/// How the servers are configured.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub close_chance: u8,
    /// Where the TLS server writes `ca.pem`, `cert.pem` and `key.pem`.
    pub cert_dir: PathBuf,
    /// Copy the servers' logs to stderr.
    pub echo: bool,
    /// `RUST_LOG` of the servers when the environment sets none.
    pub log: &'static str,
}

/// The table: both servers, each ready when it prints `READY smtp=.. http=.. seed=..`.
pub fn table(binaries: &Binaries, plan: &Plan) -> Vec<Service> {
    let program = binaries.path(MAIL_TEST_SRV);
    let common = |name: &str| {
        Service::new(name, &program)
            .args(["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(["--close-chance".to_owned(), plan.close_chance.to_string()])
            .args(["--seed".to_owned(), plan.seed.to_string()])
            // Its logs at `info` would bury the harness report; warnings still show in a failure's tail.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .ready(Readiness::line("READY", Duration::from_secs(30)))
            .echo(plan.echo)
    };
    vec![
        common(PLAIN),
        common(TLS)
            .args(["--tls", "implicit", "--generate-cert"])
            .arg(plan.cert_dir.as_os_str()),
    ]
}

/// One ready server as the scenarios see it.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: &'static str,
    pub smtp: SocketAddr,
    pub http: SocketAddr,
    /// The seed it reported (the one it was given).
    pub seed: u64,
    pub api: Api,
    /// The CA to trust for implicit TLS; `None` for the plain server.
    pub ca: Option<PathBuf>,
}

impl Server {
    /// Reads a started service's READY line.
    pub fn from_services(
        services: &Services,
        name: &'static str,
        ca: Option<&Path>,
    ) -> anyhow::Result<Server> {
        let ready = services
            .ready_line(name)
            .with_context(|| format!("{name} is not in the table"))?;
        let smtp = ready.addr("smtp").map_err(|e| anyhow!("{name}: {e}"))?;
        let http = ready.addr("http").map_err(|e| anyhow!("{name}: {e}"))?;
        let seed = ready
            .field("seed")
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{name}: no seed in {:?}", ready.line))?;
        if let Some(ca) = ca
            && !ca.is_file()
        {
            anyhow::bail!("{name} is ready but its CA {} does not exist", ca.display());
        }
        Ok(Server {
            name,
            smtp,
            http,
            seed,
            api: Api::new(http),
            ca: ca.map(Path::to_path_buf),
        })
    }

    pub fn smtp(&self) -> Smtp {
        Smtp {
            addr: self.smtp,
            tls_ca: self.ca.clone(),
        }
    }
}
