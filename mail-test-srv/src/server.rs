//! The per-instance [`State`] handle and the accept loops.
//!
//! [`run`] serves given listeners until a shutdown future completes (what `main` and tests
//! call); [`start`] binds, prepares TLS and runs in the background behind a [`ServerHandle`].
//! Shutdown uses one `CancellationToken` (sessions answer `421 4.3.0` and close) and a
//! `TaskTracker` so `run` returns only when every session and the HTTP server have ended.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::config::TlsMode;
use crate::error::{Listener, StartError};
use crate::fault::FaultEngine;
use crate::outage::{self, Outages};
use crate::smtp::inflight::InflightBudget;
use crate::smtp::{Settings, connection};
use crate::stats::Stats;
use crate::store::Store;
use crate::transcript::Sessions;

/// How long `run` waits for open sessions and HTTP requests (long polls) after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    /// `--strict`, changeable at runtime (`PATCH /api/v1/settings`); read at each command.
    strict: AtomicBool,
    /// Message bytes being received over all sessions (`max_inflight_bytes`).
    inflight: InflightBudget,
    /// Session transcripts, open and kept.
    sessions: Sessions,
    /// The outage on now, if any (`POST /api/v1/outage`, `--outage-at`).
    outages: Outages,
    /// The web page's live side: event streams, the per-second series.
    live: crate::http::Live,
    /// Built once by [`start`]; `run` builds it from `config` when absent.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl State {
    /// State for this configuration; `seed` is the one actually in use.
    pub fn new(config: Config, seed: u64) -> Self {
        Self::with_tls(config, seed, None)
    }

    /// Like [`State::new`], with a TLS configuration already built (for `--tls`).
    pub fn with_tls(mut config: Config, seed: u64, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        config.seed = Some(seed);
        let store = Store::new(config.limits.max_messages, config.limits.max_stored_bytes);
        let faults =
            FaultEngine::with_event_bytes(config.faults.clone(), seed, config.max_event_bytes);
        State {
            inner: Arc::new(Shared {
                store,
                stats: Stats::default(),
                strict: AtomicBool::new(config.strict),
                inflight: InflightBudget::new(config.limits.max_inflight_bytes),
                sessions: Sessions::new(
                    config.transcripts,
                    config.limits.max_sessions,
                    config.limits.max_transcript_bytes,
                ),
                outages: Outages::new(faults.clone()),
                faults,
                live: crate::http::Live::default(),
                tls,
                config,
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
    /// The sessions' transcripts.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }
    /// The outage of the SMTP side on now, if any.
    pub fn outages(&self) -> &Outages {
        &self.inner.outages
    }
    /// The web page's live side (event streams, the per-second series).
    pub(crate) fn live(&self) -> &crate::http::Live {
        &self.inner.live
    }
    /// The budget of message bytes being received now, over all sessions.
    pub(crate) fn inflight(&self) -> &InflightBudget {
        &self.inner.inflight
    }
    /// Message bytes being received now over all sessions, counted against
    /// `--max-inflight-bytes`.
    pub fn inflight_bytes(&self) -> usize {
        self.inner.inflight.in_use()
    }
    /// Whether MAIL and RCPT paths are read with RFC 5321 syntax only (`--strict`).
    pub fn strict(&self) -> bool {
        self.inner.strict.load(Ordering::Relaxed)
    }
    /// Switches strict path syntax on or off for every session, from its next command on.
    pub fn set_strict(&self, strict: bool) {
        self.inner.strict.store(strict, Ordering::Relaxed);
    }
    /// The path syntax in force now.
    pub(crate) fn path_syntax(&self) -> crate::smtp::parse::PathSyntax {
        if self.strict() {
            crate::smtp::parse::PathSyntax::Strict
        } else {
            crate::smtp::parse::PathSyntax::Lenient
        }
    }
}

/// A running server started by [`start`]. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct ServerHandle {
    smtp_addr: SocketAddr,
    http_addr: SocketAddr,
    state: State,
    seed: u64,
    stop: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp_addr
    }
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }
    pub fn state(&self) -> &State {
        &self.state
    }
    /// The seed in use (the configured one, or the random one picked at start).
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Stops accepting, sends `421` to open sessions, and waits for every task to end.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves SMTP on `smtp` and HTTP on `http` with `state` until `shutdown` completes;
/// then open sessions get `421 4.3.0` and every task is awaited.
pub async fn run(
    smtp: TcpListener,
    http: TcpListener,
    state: State,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.config();
    let tls = match &state.inner.tls {
        Some(tls) => Some(tls.clone()),
        None => crate::tls::server_config(config).map_err(std::io::Error::other)?,
    };
    let settings = Arc::new(Settings::new(config, tls));
    let implicit_tls = config.tls == TlsMode::Implicit;
    let max_connections = config.limits.max_connections;

    // Closed during a `refuse` outage, bound again after it.
    let mut smtp = outage::Listener::new(smtp, state.outages())?;
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    // The HTTP API with its own limits (connections, header and idle timeouts).
    tracker.spawn(crate::http::serve(http, state.clone(), stop.clone()));
    // Samples the counters each second; feeds the web page's event streams.
    tracker.spawn(crate::http::live(state.clone(), stop.clone()));
    // Ends outages on time and begins the `--outage-at` ones.
    tracker.spawn(outage::clock(state.clone(), stop.clone()));

    tokio::pin!(shutdown);
    let stats = state.stats();
    let mut next_id = 0u64;
    // Refusals being answered (see `connection::refuse`), bounded.
    let refusing = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = smtp.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        Stats::bump(&stats.connections_total);
        if let Some(down) = state.outages().blackhole() {
            // Over the limit it is dropped rather than answered: a blackhole says nothing.
            if stats.connections_open.load(Ordering::Relaxed) < max_connections as u64 {
                let guard = OpenConnection::new(state.clone());
                let swallow =
                    outage::swallow(tcp, peer, next_id, state.clone(), down, stop.clone());
                tracker.spawn(async move {
                    swallow.await;
                    drop(guard);
                });
            }
            continue;
        }
        if stats.connections_open.load(Ordering::Relaxed) >= max_connections as u64 {
            Stats::bump(&stats.connections_refused);
            tracker.spawn(connection::refuse(
                tcp,
                implicit_tls,
                refusing.clone(),
                stop.clone(),
            ));
            continue;
        }
        let guard = OpenConnection::new(state.clone());
        let (state, settings, stop) = (state.clone(), settings.clone(), stop.clone());
        tracker.spawn(async move {
            connection::serve(tcp, peer, next_id, state, settings, stop).await;
            drop(guard);
        });
    }
    drop(smtp);
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not end within the shutdown grace period");
    }
    Ok(())
}

/// Counts a session in `connections_open` for as long as it lives.
struct OpenConnection(State);

impl OpenConnection {
    fn new(state: State) -> Self {
        state
            .stats()
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        OpenConnection(state)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .stats()
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Binds `config.smtp_addr` and `config.http_addr` (TLS material generated or loaded as
/// configured), and serves in the background until [`ServerHandle::shutdown`] or drop.
pub async fn start(config: Config) -> Result<ServerHandle, StartError> {
    let seed = config.seed.unwrap_or_else(rand::random);
    let tls = crate::tls::server_config(&config)?;
    let (smtp, smtp_addr) = bind(Listener::Smtp, config.smtp_addr).await?;
    let (http, http_addr) = bind(Listener::Http, config.http_addr).await?;
    let state = State::with_tls(config, seed, tls);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(
        smtp,
        http,
        state.clone(),
        stop.clone().cancelled_owned(),
    ));
    Ok(ServerHandle {
        smtp_addr,
        http_addr,
        state,
        seed,
        stop,
        task: Some(task),
    })
}

/// Binds `addr` and reads back the address actually bound (port 0 made concrete).
async fn bind(
    listener: Listener,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |error| StartError::Bind {
        listener,
        addr,
        error,
    };
    let bound = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = bound.local_addr().map_err(bind_error)?;
    Ok((bound, local))
}
