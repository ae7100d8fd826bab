//! `harness serve`: the same servers as a run, left running with their addresses printed until
//! Ctrl-C (or SIGTERM): a local flaky mail server for a developer's own application. The plain
//! server takes the original server's ports (9380/9381) unless told otherwise, so the app's
//! settings survive a restart; the TLS server sits just above them (see [`Listen::tls_beside`]).
//! The banner says where the mail, the faults and the session transcripts are.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::binaries::{self, Needs};
use crate::cli::ServeArgs;
use crate::servers::{self, Listen, PLAIN, Plan, Server, TLS};
use crate::startservers::{Services, Shutdown};

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let plain = Listen {
        smtp: args.smtp,
        http: args.http,
    };
    let tls = plain.tls_beside()?;
    // Before the build: a busy port is the likeliest mistake (a second `serve`), and it is
    // worth one clear line, not a server's early exit a minute later.
    for addr in [plain.smtp, plain.http, tls.smtp, tls.http] {
        check_free(addr)?;
    }
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
        let plan = Plan { plain, tls, seed, close_chance: args.server.close_chance, faults: args.faults.clone(),
            cert_dir: cert_dir.clone(), echo: !args.quiet, log: "info" };
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
        let faults = describe_faults(args.server.close_chance, &args.faults);
        println!("{PLAIN}:     smtp {}  http http://{}/  ({faults}; seed {seed})", plain.smtp, plain.http);
        println!("{TLS}: smtp {}  http http://{}/  (implicit TLS; trust {}; same faults)", tls.smtp, tls.http, ca.display());
        println!("Mail: GET /count, /mail/N, /api/v1/messages; faults: /api/v1/events, /api/v1/stats. AUTH: any credentials. Ctrl-C stops both.");
        println!("{}", transcript_hint(plain.http));
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

/// A fixed address some other process listens on is an error naming it and the way out.
/// Port 0 is always free. The probe listener is closed at once, before the server binds.
fn check_free(addr: SocketAddr) -> anyhow::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AddrInUse => bail!(
            "{addr} is already in use (another `harness serve` or mail-test-srv?); stop it, or choose \
             other ports with --smtp/--http (port 0: random ones)"
        ),
        Err(e) => bail!("cannot listen on {addr}: {e}"),
    }
}

/// Where a session's every command and reply is, so a developer whose mail did not arrive can see
/// why (the TLS server has the same routes on its own HTTP port).
fn transcript_hint(http: SocketAddr) -> String {
    format!(
        "Sessions: GET http://{http}/api/v1/sessions (newest first; ?refused=true, ?fault=true), \
         http://{http}/api/v1/sessions/ID/transcript (every command and reply)."
    )
}

/// `closes the connection at 35% of MAILs, and rcpt:reply=550:to=bad@example.com`.
fn describe_faults(close_chance: u8, rules: &[String]) -> String {
    let mut text = format!("closes the connection at {close_chance}% of MAILs");
    if !rules.is_empty() {
        text.push_str(&format!(", and {}", rules.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_one_line_naming_it() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = check_free(addr).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{addr} is already in use")) && !error.contains('\n'),
            "{error}"
        );
        drop(taken);
        check_free(addr).unwrap();
        check_free("127.0.0.1:0".parse().unwrap()).unwrap();
    }

    #[test]
    fn extra_faults_follow_the_close_chance() {
        assert_eq!(
            describe_faults(35, &[]),
            "closes the connection at 35% of MAILs"
        );
        assert_eq!(
            describe_faults(0, &["rcpt:reply=550:to=b@x".into(), "data:421:10%".into()]),
            "closes the connection at 0% of MAILs, and rcpt:reply=550:to=b@x, data:421:10%"
        );
    }
}
