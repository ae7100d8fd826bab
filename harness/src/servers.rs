//! The harness's service table: two mail-test-srv instances (on `127.0.0.1:0` for a run, on
//! chosen ports for `serve`), one plain with `--close-chance`, one speaking implicit TLS with a
//! CA it generates, both accepting AUTH with any credentials; and what the harness knows about
//! each once it is ready (addresses from its READY line, an API client, the CA file).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::api::Api;
use crate::binaries::{Binaries, MAIL_TEST_SRV};
use crate::mailers::Smtp;
use crate::startservers::{Readiness, Service, Services};

pub const PLAIN: &str = "mail-test-srv";
pub const TLS: &str = "mail-test-srv-tls";

/// Where one server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    pub smtp: SocketAddr,
    pub http: SocketAddr,
}

impl Listen {
    /// Random loopback ports, read back from the READY line: parallel runs never clash.
    pub const EPHEMERAL: Listen = Listen {
        smtp: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        http: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
    };

    /// Where the TLS server listens next to a plain server at `self`: the higher plain port + 1
    /// (SMTP) and + 2 (HTTP), on the same IPs. Above both plain ports, so the four never
    /// collide whatever the two plain ports are (9380/9381 give 9382/9383). With a port 0 the
    /// TLS ports are random too: there is nothing fixed to count from.
    pub fn tls_beside(self) -> anyhow::Result<Listen> {
        let (smtp, http) = (self.smtp.port(), self.http.port());
        if smtp == 0 || http == 0 {
            return Ok(Listen {
                smtp: SocketAddr::new(self.smtp.ip(), 0),
                http: SocketAddr::new(self.http.ip(), 0),
            });
        }
        if smtp == http {
            bail!("--smtp and --http both ask for port {smtp}; give them different ports");
        }
        let top = smtp.max(http);
        let (Some(tls_smtp), Some(tls_http)) = (top.checked_add(1), top.checked_add(2)) else {
            bail!(
                "no room above port {top} for the TLS server's ports (the highest plain port + 1 and + 2)"
            );
        };
        Ok(Listen {
            smtp: SocketAddr::new(self.smtp.ip(), tls_smtp),
            http: SocketAddr::new(self.http.ip(), tls_http),
        })
    }
}

/// How the servers are configured.
#[derive(Debug, Clone)]
pub struct Plan {
    pub plain: Listen,
    pub tls: Listen,
    pub seed: u64,
    pub close_chance: u8,
    /// Extra `--fault` rules for both servers (`serve --fault`; a run's lost replies).
    pub faults: Vec<String>,
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
    let common = |name: &str, listen: &Listen| {
        Service::new(name, &program)
            .args(["--smtp".to_owned(), listen.smtp.to_string()])
            .args(["--http".to_owned(), listen.http.to_string()])
            // Clients that log in (the Go client, a developer's app) must get through with any
            // credentials; clients that don't are not asked to.
            .args(["--auth", "any"])
            .args(["--close-chance".to_owned(), plan.close_chance.to_string()])
            .args(
                plan.faults
                    .iter()
                    .flat_map(|rule| ["--fault", rule.as_str()]),
            )
            .args(["--seed".to_owned(), plan.seed.to_string()])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| plan.log.to_owned()),
            )
            .ready(Readiness::line("READY", Duration::from_secs(30)))
            .echo(plan.echo)
    };
    vec![
        common(PLAIN, &plan.plain),
        common(TLS, &plan.tls)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(smtp: &str, http: &str) -> Listen {
        Listen {
            smtp: smtp.parse().unwrap(),
            http: http.parse().unwrap(),
        }
    }

    #[test]
    fn the_tls_server_sits_above_both_plain_ports() {
        let defaults = listen("127.0.0.1:9380", "127.0.0.1:9381");
        assert_eq!(
            defaults.tls_beside().unwrap(),
            listen("127.0.0.1:9382", "127.0.0.1:9383")
        );
        // SMTP + 2 would be the plain HTTP port here; counting from the higher port avoids it.
        let spaced = listen("127.0.0.1:2525", "[::1]:2527");
        assert_eq!(
            spaced.tls_beside().unwrap(),
            listen("127.0.0.1:2528", "[::1]:2529")
        );
        let reversed = listen("0.0.0.0:8026", "0.0.0.0:8025");
        assert_eq!(
            reversed.tls_beside().unwrap(),
            listen("0.0.0.0:8027", "0.0.0.0:8028")
        );
    }

    #[test]
    fn a_random_plain_port_makes_the_tls_ports_random() {
        assert_eq!(Listen::EPHEMERAL.tls_beside().unwrap(), Listen::EPHEMERAL);
        assert_eq!(
            listen("127.0.0.1:0", "127.0.0.1:9381")
                .tls_beside()
                .unwrap(),
            Listen::EPHEMERAL
        );
    }

    #[test]
    fn one_port_twice_or_no_room_above_is_refused() {
        let error = listen("127.0.0.1:9380", "127.0.0.1:9380")
            .tls_beside()
            .unwrap_err();
        assert!(error.to_string().contains("port 9380"), "{error}");
        let error = listen("127.0.0.1:65534", "127.0.0.1:1")
            .tls_beside()
            .unwrap_err();
        assert!(
            error.to_string().contains("no room above port 65534"),
            "{error}"
        );
    }
}
