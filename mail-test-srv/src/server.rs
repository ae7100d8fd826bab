//! The per-instance [`State`] handle and the accept loops.
//!
//! OWNER: helper "smtp". Signatures below are the agreed interface.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::Config;
use crate::fault::FaultEngine;
use crate::stats::Stats;
use crate::store::Store;

/// Everything one server instance owns. Cheap to clone; shared by the SMTP sessions and
/// the HTTP handlers of that instance only.
#[derive(Debug, Clone)]
pub struct State {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    store: Store,
    faults: FaultEngine,
    stats: Stats,
}

impl State {
    /// State for this configuration; `seed` is the one actually in use.
    pub fn new(config: Config, seed: u64) -> Self {
        let store = Store::new(config.limits.max_messages, config.limits.max_stored_bytes);
        let faults = FaultEngine::new(config.faults.clone(), seed);
        State {
            inner: Arc::new(Shared {
                config,
                store,
                faults,
                stats: Stats::default(),
            }),
        }
    }
    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    pub fn faults(&self) -> &FaultEngine {
        &self.inner.faults
    }
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }
}

/// A running server started by [`start`].
#[derive(Debug)]
pub struct ServerHandle {
    _private: (),
}

#[allow(unused_variables, clippy::todo)]
impl ServerHandle {
    pub fn smtp_addr(&self) -> SocketAddr {
        todo!()
    }
    pub fn http_addr(&self) -> SocketAddr {
        todo!()
    }
    pub fn state(&self) -> &State {
        todo!()
    }
    /// The seed in use (the configured one, or the random one picked at start).
    pub fn seed(&self) -> u64 {
        todo!()
    }
    /// Stops accepting, sends `421` to open sessions, and waits for every task to end.
    pub async fn shutdown(self) {
        todo!()
    }
}

/// Serves SMTP on `smtp` and HTTP on `http` with `state` until `shutdown` completes;
/// then open sessions get `421 4.3.0` and every task is awaited.
#[allow(unused_variables, clippy::todo)]
pub async fn run(
    smtp: TcpListener,
    http: TcpListener,
    state: State,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    todo!()
}

/// Binds `config.smtp_addr` and `config.http_addr` (TLS material generated or loaded as
/// configured), and serves in the background until [`ServerHandle::shutdown`] or drop.
#[allow(unused_variables, clippy::todo)]
pub async fn start(config: Config) -> anyhow::Result<ServerHandle> {
    todo!()
}
