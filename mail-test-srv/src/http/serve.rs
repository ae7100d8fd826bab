//! The HTTP listener, with the limits `axum::serve` does not offer: a connection cap, a
//! header-read timeout and an idle timeout (`HttpConfig`), each separate from SMTP's.
//!
//! - Past `max_connections`, a new connection is accepted, answered `503` without reading
//!   its request, and closed at once: it neither waits in the listen backlog nor holds a
//!   task or a file descriptor.
//! - hyper's `header_read_timeout` closes a connection that has not sent a whole request
//!   header within `header_timeout` of being ready for one (accepted, or done with the
//!   previous request): silent clients, slowloris headers, idle keep-alive connections.
//! - The idle timeout closes a connection that moved no byte for `idle_timeout` while a
//!   request was underway (a stalled body, a client that stopped reading its response),
//!   except while a long poll waits, which its own timeout bounds (`LongPoll`).
//!
//! Each request carries the connection's local address ([`LocalAddr`]) for the `Host`
//! check in `guard.rs`, and the listener's stop signal ([`Stopping`]) for the event stream.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::guard::LocalAddr;
use crate::State;
use crate::config::HttpConfig;
use crate::stats::Stats;

/// Serves the report API of `state` on `listener` until `stop` is cancelled; then each open
/// connection finishes its request in progress, and this returns when all have closed.
pub async fn serve(listener: TcpListener, state: State, stop: CancellationToken) {
    let limits = state.config().http.clone();
    let counted = state.clone();
    let service = TowerToHyperService::new(super::router(state));
    let open = Arc::new(AtomicUsize::new(0));
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            refuse(&tcp, limits.max_connections);
            Stats::bump(&counted.stats().http_refusals);
            continue;
        }
        let slot = Slot::take(&open);
        let (service, limits, stop) = (service.clone(), limits.clone(), stop.clone());
        tracker.spawn(async move {
            connection(tcp, service, &limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// Over the cap: one write that cannot block, then close (the request is never read).
fn refuse(tcp: &TcpStream, max: usize) {
    tracing::debug!(max, "HTTP connection over the limit refused");
    let body = format!("too many HTTP connections (at most {max}, --http-max-connections)\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         x-content-type-options: nosniff\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(response.as_bytes());
}

/// One open connection in the count, for as long as its task lives.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::Relaxed);
        Slot(Arc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    tcp: TcpStream,
    service: TowerToHyperService<axum::Router>,
    limits: &HttpConfig,
    stop: CancellationToken,
) {
    let Ok(local) = tcp.local_addr() else {
        return;
    };
    let _ = tcp.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        tcp,
        activity: Arc::clone(&activity),
    });
    let conn_activity = Arc::clone(&activity);
    let conn_stop = stop.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(LocalAddr(local));
        request.extensions_mut().insert(Stopping(conn_stop.clone()));
        request
            .extensions_mut()
            .insert(LongPoll(Arc::clone(&conn_activity)));
        service.call(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            _ = stop.cancelled(), if !stopping => {
                // Finish the request in progress (a long poll ends within its timeout).
                conn.as_mut().graceful_shutdown();
                stopping = true;
            }
            _ = tokio::time::sleep_until(activity.deadline(limits.idle_timeout)) => {
                if activity.idle(limits.idle_timeout) {
                    tracing::debug!(timeout = ?limits.idle_timeout, "HTTP connection idle, closed");
                    return;
                }
            }
        }
    }
}

/// Put on each request: cancelled when this listener stops, so a response that would
/// otherwise run on (an event stream) ends and the graceful shutdown can finish.
#[derive(Debug, Clone)]
pub(crate) struct Stopping(pub CancellationToken);

/// When a connection last moved a byte, and whether a long poll is waiting on it.
#[derive(Debug)]
struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last read or write that moved bytes.
    last_ms: AtomicU64,
    long_polls: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            long_polls: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection would become idle if nothing moves (checked again then).
    fn deadline(&self, timeout: Duration) -> Instant {
        if self.long_polls.load(Ordering::Relaxed) > 0 {
            return Instant::now() + timeout;
        }
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + timeout
    }

    fn idle(&self, timeout: Duration) -> bool {
        self.long_polls.load(Ordering::Relaxed) == 0 && Instant::now() >= self.deadline(timeout)
    }
}

/// Put on each request: a long-poll handler holds [`LongPoll::waiting`] while it waits, so
/// the idle timeout leaves its silent connection alone.
#[derive(Debug, Clone)]
pub(crate) struct LongPoll(Arc<Activity>);

impl LongPoll {
    pub(crate) fn waiting(&self) -> Waiting {
        self.0.long_polls.fetch_add(1, Ordering::Relaxed);
        Waiting(Arc::clone(&self.0))
    }
}

/// A long poll in progress; the idle clock starts again when it ends.
#[derive(Debug)]
pub(crate) struct Waiting(Arc<Activity>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.touch();
        self.0.long_polls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, noting each read or write that moved bytes.
struct Tracked {
    tcp: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
