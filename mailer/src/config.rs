//! The settings of one [`Mailer`](crate::Mailer): where to send, how to secure and
//! authenticate, who sends, and the bounds of the reconnect loop.
//!
//! Plain data with defaults; the binaries fill it from flags, tests with struct update syntax.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain text all the way (a local relay, a test server).
    #[default]
    None,
    /// Plain greeting, then `STARTTLS` (RFC 3207); refused if the server does not offer it,
    /// so a misconfigured server never silently downgrades us to plain text.
    StartTls,
    /// TLS from the first byte ("SMTPS", RFC 8314).
    Implicit,
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::StartTls),
            "implicit" => Ok(TlsMode::Implicit),
            other => Err(format!(
                "unknown TLS mode {other:?} (expected none, starttls or implicit)"
            )),
        }
    }
}

impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::None => "none",
            TlsMode::StartTls => "starttls",
            TlsMode::Implicit => "implicit",
        })
    }
}

/// Everything a [`Mailer`](crate::Mailer) needs.
#[derive(Clone)]
pub struct Config {
    /// Host name or IP address of the SMTP server; also the name checked in its certificate.
    pub server: String,
    pub port: u16,
    pub tls: TlsMode,
    /// An extra trusted root CA (PEM), added to the built-in roots; a test server's CA.
    pub root_ca: Option<PathBuf>,
    /// User and password for AUTH PLAIN or LOGIN.
    pub credentials: Option<(String, String)>,
    /// The sender, `"Name <addr@example.com>"` or `"addr@example.com"`.
    pub from: String,
    /// Our name in EHLO.
    pub hello_name: String,
    /// First non-zero reconnect sleep; doubles on each further attempt.
    pub reconnect_base: Duration,
    /// Cap of one reconnect sleep.
    pub reconnect_max: Duration,
    /// Reconnect attempts in one outage before giving up (the original looped forever).
    pub max_reconnects: u32,
    /// Time in one outage before giving up, if set.
    pub reconnect_deadline: Option<Duration>,
    /// Timeout of every SMTP step (connect + greeting + EHLO, STARTTLS, AUTH, MAIL, RCPT,
    /// DATA, the message, RSET, QUIT): lettre's own timeout covers only the TCP connect.
    pub step_timeout: Duration,
    /// Log what would be sent; connect to nothing and send nothing.
    pub dry_run: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: "localhost".to_owned(),
            port: 25,
            tls: TlsMode::None,
            root_ca: None,
            credentials: None,
            from: String::new(),
            hello_name: "localhost".to_owned(),
            reconnect_base: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(5 * 60),
            max_reconnects: 30,
            reconnect_deadline: None,
            step_timeout: Duration::from_secs(60),
            dry_run: false,
        }
    }
}

/// Written by hand so the password never reaches a log.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("root_ca", &self.root_ca)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("from", &self.from)
            .field("hello_name", &self.hello_name)
            .field("reconnect_base", &self.reconnect_base)
            .field("reconnect_max", &self.reconnect_max)
            .field("max_reconnects", &self.max_reconnects)
            .field("reconnect_deadline", &self.reconnect_deadline)
            .field("step_timeout", &self.step_timeout)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_mode_parses_the_three_names_and_refuses_others() {
        assert_eq!("none".parse::<TlsMode>(), Ok(TlsMode::None));
        assert_eq!("STARTTLS".parse::<TlsMode>(), Ok(TlsMode::StartTls));
        assert_eq!("implicit".parse::<TlsMode>(), Ok(TlsMode::Implicit));
        let err = "smtps".parse::<TlsMode>().unwrap_err();
        assert!(err.contains("smtps"), "{err}");
        for mode in [TlsMode::None, TlsMode::StartTls, TlsMode::Implicit] {
            assert_eq!(mode.to_string().parse::<TlsMode>(), Ok(mode));
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let config = Config {
            credentials: Some(("user".into(), "hunter2".into())),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("user"));
        assert!(!shown.contains("hunter2"));
    }
}
