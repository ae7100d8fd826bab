//! What every session of one server shares, computed once at start: the greeting, the
//! EHLO reply for each TLS situation, limits, AUTH mode and the TLS acceptor.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config::{AuthMode, BareLf, Config, Limits, TlsMode};

/// Per-server session settings. Shared by `Arc` with every session.
#[derive(Clone)]
pub struct Settings {
    pub hostname: String,
    /// `220 host ESMTP ...` with its CRLF.
    pub greeting: Vec<u8>,
    /// EHLO reply lines on a plain connection (STARTTLS offered when configured).
    pub ehlo_plain: Vec<u8>,
    /// EHLO reply lines under TLS (no STARTTLS).
    pub ehlo_tls: Vec<u8>,
    pub limits: Limits,
    pub auth: AuthMode,
    pub require_tls: bool,
    pub bare_lf: BareLf,
    pub tls_mode: TlsMode,
    /// Present when `tls_mode` is not `None`.
    pub acceptor: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("hostname", &self.hostname)
            .field("tls_mode", &self.tls_mode)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings for `config`; `tls` must be present when `config.tls` is not `None`.
    pub fn new(config: &Config, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let auth_on = config.auth != AuthMode::Off;
        let ehlo = |under_tls: bool| {
            let mut lines = vec![
                config.hostname.clone(),
                "PIPELINING".to_owned(),
                "8BITMIME".to_owned(),
                "SMTPUTF8".to_owned(),
                format!("SIZE {}", config.limits.max_message_size),
                "ENHANCEDSTATUSCODES".to_owned(),
            ];
            if config.tls == TlsMode::StartTls && !under_tls {
                lines.push("STARTTLS".to_owned());
            }
            // A submission server hides AUTH until the channel is private (RFC 3207 4.2);
            // `require_tls` without any TLS mode cannot be honoured, so it is ignored.
            let auth_hidden = config.require_tls && config.tls != TlsMode::None && !under_tls;
            if auth_on && !auth_hidden {
                lines.push("AUTH PLAIN LOGIN".to_owned());
            }
            let mut out = Vec::new();
            let last = lines.len() - 1;
            for (i, line) in lines.iter().enumerate() {
                out.extend_from_slice(b"250");
                out.push(if i == last { b' ' } else { b'-' });
                out.extend_from_slice(line.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out
        };
        Settings {
            hostname: config.hostname.clone(),
            greeting: format!("220 {} ESMTP mail-test-srv\r\n", config.hostname).into_bytes(),
            ehlo_plain: ehlo(false),
            ehlo_tls: ehlo(true),
            limits: config.limits.clone(),
            auth: config.auth.clone(),
            require_tls: config.require_tls,
            bare_lf: config.bare_lf,
            tls_mode: config.tls,
            acceptor: tls.map(TlsAcceptor::from),
        }
    }
}
