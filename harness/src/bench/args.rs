//! The flags of `harness bench`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Load generator: N connections through the mailer library against mail-test-srv (started as
/// a child, the default) or any SMTP server on 127.0.0.1; msgs/s, per-message latency
/// percentiles, reconnects, and, when the server is ours, whether every message was stored
/// exactly once (by Message-ID, over its HTTP API).
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Drive this SMTP server instead of starting mail-test-srv (a 127.0.0.1 address).
    #[arg(long, value_name = "127.0.0.1:PORT")]
    pub smtp: Option<SocketAddr>,
    /// The HTTP API of the `--smtp` server when it is a mail-test-srv: enables the
    /// exactly-once check there too.
    #[arg(long, value_name = "127.0.0.1:PORT", requires = "smtp")]
    pub http: Option<SocketAddr>,
    /// Parallel connections (tasks, each with its own SMTP session).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub connections: u16,
    /// Messages in all, spread evenly over the connections.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub messages: u64,
    /// Body size in bytes (plain ASCII lines, so quoted-printable leaves it as it is).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(0..=10_485_760))]
    pub size: u64,
    /// Chance in percent that our server closes the connection at MAIL (only when the
    /// server is ours: a foreign server's faults cannot be set).
    #[arg(long, default_value_t = 0, conflicts_with = "smtp",
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub close_chance: u8,
    /// Seed of our server's fault decisions; random when absent (always printed).
    #[arg(long, conflicts_with = "smtp")]
    pub seed: Option<u64>,
    /// The mailer's first non-zero reconnect sleep (the first reconnect of an outage never
    /// sleeps). Small by default: a benchmark measures the protocol, not the politeness.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    pub reconnect_base: Duration,
    /// Cap of one reconnect sleep.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub reconnect_max: Duration,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Send lettre messages through one `mailer::ReconnectingTransport` whose pool has
    /// `--connections` sessions (tasks take any idle one), instead of one
    /// `mailer::Connection` per task.
    #[arg(long)]
    pub transport: bool,
    /// Print one line per connection as well as the summary.
    #[arg(long)]
    pub verbose: bool,
    /// Use the mail-test-srv next to this executable as it is, without `cargo build` first.
    #[arg(long)]
    pub no_build: bool,
}

impl BenchArgs {
    /// Refuses what the flags' own parsers cannot see: an address off loopback.
    pub fn check(&self) -> anyhow::Result<()> {
        for (flag, addr) in [("--smtp", self.smtp), ("--http", self.http)] {
            if let Some(addr) = addr
                && !addr.ip().is_loopback()
            {
                anyhow::bail!("{flag} {addr}: only loopback addresses (127.0.0.1) are driven");
            }
        }
        if self.reconnect_base > self.reconnect_max {
            anyhow::bail!(
                "--reconnect-base {:?} is above --reconnect-max {:?}",
                self.reconnect_base,
                self.reconnect_max
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn bench(args: &[&str]) -> Result<super::BenchArgs, String> {
        let cli = Cli::try_parse_from([&["harness", "bench"], args].concat())
            .map_err(|e| e.to_string())?;
        match cli.command {
            Some(Command::Bench(args)) => Ok(args),
            other => Err(format!("not bench: {other:?}")),
        }
    }

    #[test]
    fn defaults_drive_our_server_on_one_connection() {
        let args = bench(&[]).unwrap();
        assert_eq!(
            (args.smtp, args.connections, args.messages, args.size),
            (None, 1, 2000, 1024)
        );
        assert_eq!(args.close_chance, 0);
        args.check().unwrap();
    }

    #[test]
    fn a_foreign_server_takes_no_faults_and_must_be_on_loopback() {
        let args = bench(&["--smtp", "127.0.0.1:2525", "--connections", "4"]).unwrap();
        assert_eq!(args.connections, 4);
        args.check().unwrap();
        assert!(bench(&["--smtp", "127.0.0.1:2525", "--close-chance", "35"]).is_err());
        assert!(
            bench(&["--http", "127.0.0.1:8025"]).is_err(),
            "--http needs --smtp"
        );
        let off = bench(&["--smtp", "192.0.2.1:25"]).unwrap();
        assert!(off.check().unwrap_err().to_string().contains("loopback"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(bench(&["--connections", "0"]).is_err());
        assert!(bench(&["--close-chance", "101"]).is_err());
        assert!(bench(&["--reconnect-base", "soon"]).is_err());
        let args = bench(&["--reconnect-base", "1s", "--reconnect-max", "10ms"]).unwrap();
        assert!(args.check().is_err());
    }
}
