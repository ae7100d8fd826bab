//! The command line: `harness` (= `harness run`) runs the scenarios, `harness serve` keeps the
//! servers running, `harness bench` is the load generator (flags in `bench::args`).

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Integration stage: starts a flaky mail-test-srv, runs expiration-mailer and notify-mailer
/// against it under FAKECLOCK, and checks the mail it stored.
#[derive(Debug, Parser)]
#[command(name = "harness", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run`, which is what `harness` without a subcommand does.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scenarios and print a table; exit 0 only when all passed (the default).
    Run(RunArgs),
    /// Start the servers (plain with faults, and implicit TLS), print their addresses and keep
    /// them running until Ctrl-C: a local flaky mail server for your own application.
    Serve(ServeArgs),
    /// Load generator: N connections through the mailer library against mail-test-srv (or
    /// `--smtp 127.0.0.1:PORT`); msgs/s, latency percentiles, reconnects, exactly-once check.
    Bench(crate::bench::BenchArgs),
}

/// How the servers are started, shared by `run` and `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Seed of the servers' fault decisions; random when absent (always printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Chance in percent that the server closes the connection at MAIL.
    #[arg(long, default_value_t = 35, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub close_chance: u8,
    /// Use the binaries next to this executable as they are, without `cargo build` first.
    #[arg(long)]
    pub no_build: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Run only this scenario (repeatable). `exactly-once` also runs `expiration` and `notify`,
    /// whose mail it checks.
    #[arg(long = "scenario", value_enum, value_name = "NAME")]
    pub scenarios: Vec<ScenarioName>,
    /// Chance in percent that the servers store a message and then close without replying
    /// (`data-end:accept-close`): a lost reply, after which a correct client sends the message
    /// again. The scenarios count one message per Message-ID and require exactly one extra copy
    /// per lost reply.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub accept_close_chance: u8,
    /// Go on with the next scenarios after one failed (the default stops at the first failure).
    #[arg(long)]
    pub keep_going: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// SMTP address of the plain server (the original server's port, so an app keeps its
    /// settings across restarts). The TLS server listens on the same IP at the higher of the
    /// two plain ports + 1 (SMTP) and + 2 (HTTP): 9382 and 9383 by default. Port 0 here or in
    /// --http gives random ports to the TLS server too; read them from the printed lines.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9380")]
    pub smtp: SocketAddr,
    /// HTTP address of the plain server's report API (see --smtp for the TLS server's ports).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9381")]
    pub http: SocketAddr,
    /// A fault rule STAGE:ACTION[:TRIGGER...] for both servers, repeatable, in addition to
    /// --close-chance; e.g. `rcpt:reply=550:to=bad@example.com` (`mail-test-srv --help` has the
    /// grammar).
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<String>,
    /// Do not copy the servers' logs to stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum ScenarioName {
    /// expiration-mailer under FAKECLOCK 31, 13 and 2 days before expiry, then 2 days again.
    Expiration,
    /// notify-mailer over a list of more than 100 recipients.
    Notify,
    /// Every message of `expiration` and `notify` stored once, plus exactly one copy per lost
    /// reply (accept-close), each copy tied to its lost reply; faults really injected.
    ExactlyOnce,
    /// `expiration` and `notify` in small over implicit TLS, trusting the server's generated CA.
    Tls,
    /// The Go net/smtp client (test/clients/go-netsmtp) over 200 recipients of its own: each
    /// stored once, envelope sender test@example.com. Needs `go` (skipped without it, outside
    /// CI). Runs after `exactly-once`, which counts every message on the plain server.
    GoClient,
    /// Both mailers while the plain server is gone for 3 s (refused, then blackholed, through
    /// the outage API): refused connects seen, every backoff sleep on the schedule, every message
    /// once. Last: its outage events are faults the others do not expect.
    GoneAway,
}

impl ScenarioName {
    pub const ALL: [ScenarioName; 6] = [
        ScenarioName::Expiration,
        ScenarioName::Notify,
        ScenarioName::ExactlyOnce,
        ScenarioName::Tls,
        ScenarioName::GoClient,
        ScenarioName::GoneAway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ScenarioName::Expiration => "expiration",
            ScenarioName::Notify => "notify",
            ScenarioName::ExactlyOnce => "exactly-once",
            ScenarioName::Tls => "tls",
            ScenarioName::GoClient => "go-client",
            ScenarioName::GoneAway => "gone-away",
        }
    }

    /// The selection in run order: all when none was named; what a scenario needs is added.
    pub fn selection(named: &[ScenarioName]) -> Vec<ScenarioName> {
        if named.is_empty() {
            return ScenarioName::ALL.to_vec();
        }
        let mut chosen: Vec<ScenarioName> = named.to_vec();
        if chosen.contains(&ScenarioName::ExactlyOnce) {
            chosen.extend([ScenarioName::Expiration, ScenarioName::Notify]);
        }
        chosen.sort();
        chosen.dedup();
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_run_with_its_flags() {
        let cli = Cli::try_parse_from([
            "harness",
            "--seed",
            "7",
            "--scenario",
            "notify",
            "--keep-going",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.server.seed, Some(7));
        assert_eq!(cli.run.server.close_chance, 35);
        assert_eq!(cli.run.accept_close_chance, 10);
        assert_eq!(cli.run.scenarios, [ScenarioName::Notify]);
        assert!(cli.run.keep_going);
    }

    #[test]
    fn serve_is_a_subcommand() {
        let cli = Cli::try_parse_from(["harness", "serve", "--close-chance", "10"]).unwrap();
        let Some(Command::Serve(serve)) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(serve.server.close_chance, 10);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(Cli::try_parse_from(["harness", "--close-chance", "101"]).is_err());
        assert!(Cli::try_parse_from(["harness", "--accept-close-chance", "101"]).is_err());
        // Lost replies are the run's business; `serve` takes them as a --fault rule.
        assert!(Cli::try_parse_from(["harness", "serve", "--accept-close-chance", "5"]).is_err());
        assert!(Cli::try_parse_from(["harness", "--scenario", "nope"]).is_err());
    }

    #[test]
    fn exactly_once_brings_what_it_checks_and_order_is_fixed() {
        use ScenarioName::*;
        assert_eq!(ScenarioName::selection(&[]), ScenarioName::ALL);
        assert_eq!(
            ScenarioName::selection(&[Tls, ExactlyOnce]),
            [Expiration, Notify, ExactlyOnce, Tls]
        );
        assert_eq!(ScenarioName::selection(&[Notify, Notify]), [Notify]);
    }

    #[test]
    fn go_client_is_named_and_runs_after_exactly_once() {
        use ScenarioName::*;
        let cli = Cli::try_parse_from(["harness", "--scenario", "go-client"]).unwrap();
        assert_eq!(cli.run.scenarios, [GoClient]);
        assert_eq!(GoClient.as_str(), "go-client");
        // exactly-once fails on mail it did not expect; the Go client's must come after it.
        assert_eq!(
            ScenarioName::selection(&[GoClient, ExactlyOnce]),
            [Expiration, Notify, ExactlyOnce, GoClient]
        );
        assert_eq!(ScenarioName::ALL.last(), Some(&GoneAway));
    }

    #[test]
    fn gone_away_is_named_and_runs_last() {
        use ScenarioName::*;
        let cli = Cli::try_parse_from(["harness", "--scenario", "gone-away"]).unwrap();
        assert_eq!(cli.run.scenarios, [GoneAway]);
        assert_eq!(GoneAway.as_str(), "gone-away");
        // Its outage events would be faults the Go client's check does not expect.
        assert_eq!(
            ScenarioName::selection(&[GoneAway, GoClient]),
            [GoClient, GoneAway]
        );
    }

    fn serve(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["harness", "serve"].iter().chain(args))?;
        match cli.command {
            Some(Command::Serve(serve)) => Ok(serve),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn serve_defaults_to_the_original_ports_and_no_extra_faults() {
        let serve = serve(&[]).unwrap();
        assert_eq!(serve.smtp, "127.0.0.1:9380".parse().unwrap());
        assert_eq!(serve.http, "127.0.0.1:9381".parse().unwrap());
        assert!(serve.faults.is_empty());
        assert_eq!(serve.server.close_chance, 35);
    }

    #[test]
    fn serve_takes_addresses_and_repeated_faults_in_order() {
        let serve = serve(&[
            "--smtp",
            "127.0.0.1:0",
            "--http",
            "[::1]:8025",
            "--fault",
            "rcpt:reply=550:to=bad@example.com",
            "--fault",
            "data:421:10%",
            "--close-chance",
            "0",
        ])
        .unwrap();
        assert_eq!(serve.smtp, "127.0.0.1:0".parse().unwrap());
        assert_eq!(serve.http, "[::1]:8025".parse().unwrap());
        assert_eq!(
            serve.faults,
            ["rcpt:reply=550:to=bad@example.com", "data:421:10%"]
        );
        assert_eq!(serve.server.close_chance, 0);
    }

    #[test]
    fn serve_refuses_an_address_without_a_port_or_with_a_name() {
        for bad in ["127.0.0.1", "localhost:9380", "127.0.0.1:70000", ""] {
            assert!(serve(&["--smtp", bad]).is_err(), "--smtp {bad:?} accepted");
            assert!(serve(&["--http", bad]).is_err(), "--http {bad:?} accepted");
        }
        assert!(serve(&["--fault"]).is_err(), "--fault needs a rule");
    }
}
