//! Why [`start`](crate::start) failed: which listener could not be bound, or what was wrong
//! with the TLS set-up. Typed, so an embedding program can tell a busy port (retry on another)
//! from bad certificate material (a usage error).

use std::fmt;
use std::net::SocketAddr;

use crate::tls::TlsError;

/// The two listeners a server binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Smtp,
    Http,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Listener::Smtp => "SMTP",
            Listener::Http => "HTTP",
        })
    }
}

/// A server that did not start. Its message says everything (the cause included), so it
/// has no `source()`: printed with `{:#}` through anyhow, the cause is not said twice.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The certificate material could not be read, parsed or generated, or the settings
    /// that need it do not fit together.
    #[error("TLS set-up failed: {0}")]
    Tls(TlsError),
    /// Binding `addr` (or reading back the bound address) failed: in use, not local,
    /// no permission (`error.kind()` tells which).
    #[error("cannot bind the {listener} address {addr}: {error}")]
    Bind {
        listener: Listener,
        addr: SocketAddr,
        error: std::io::Error,
    },
}

impl From<TlsError> for StartError {
    fn from(error: TlsError) -> Self {
        StartError::Tls(error)
    }
}

impl StartError {
    /// Whether the configuration itself is wrong (bad certificate material), as opposed to
    /// the machine refusing a bind; the binary exits 2 for the first, 1 for the second.
    pub fn is_usage(&self) -> bool {
        matches!(self, StartError::Tls(_))
    }
}
