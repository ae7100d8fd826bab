//! `GET /api/v1/stream`: server-sent events for the web page.
//!
//! On connect `event: hello` (`{"messages", "event_seq", "stats"}`), then whatever the live
//! task (`live.rs`) renders: `messages`, `faults`, `sessions`, `stats` each second, `deleted`,
//! `reset`, `rules`; and a `: keepalive` comment every [`KEEPALIVE`].
//!
//! Each stream is one small task that forwards frames into the response body through a
//! short channel. It ends when the client goes away (the body is dropped), when the server
//! stops, when the client falls [`super::live`]'s channel behind (the page's `EventSource`
//! reconnects and reloads), or when the client stops reading for [`SLOW_CLIENT`].
//! While it runs, the connection is exempt from the HTTP idle timeout like a long poll;
//! once it has ended, a client that does not read is closed by that timeout.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Extension;
use axum::extract::State as AxumState;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::ApiError;
use super::live::{MAX_STREAMS, Subscription, frame};
use super::serve::{LongPoll, Stopping, Waiting};
use crate::State;

/// A comment line this often, so proxies and browsers keep an idle stream open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A client that has not taken a frame for this long is dropped.
const SLOW_CLIENT: Duration = Duration::from_secs(30);
/// `retry:` sent first: how long `EventSource` waits before reconnecting.
const RETRY_MS: u64 = 1000;

/// `GET /stream`.
pub(super) async fn stream(
    AxumState(state): AxumState<State>,
    long_poll: Option<Extension<LongPoll>>,
    stopping: Option<Extension<Stopping>>,
) -> Result<Response, ApiError> {
    let live = state.live();
    if live.stopped().is_cancelled() {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "the server is shutting down".to_owned(),
        });
    }
    let subscription = live.subscribe(&state).ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("too many event streams open (at most {MAX_STREAMS})"),
    })?;
    // Read after subscribing: anything newer than this arrives in a batch.
    let hello = serde_json::json!({
        "messages": state.store().len(),
        "event_seq": state.faults().events().last_seq(),
        "stats": super::metrics::stats_json(&state),
    });
    let mut first = format!("retry: {RETRY_MS}\n\n").into_bytes();
    first.extend_from_slice(&frame("hello", &hello));
    let (tx, rx) = mpsc::channel(8);
    let pump = Pump {
        subscription,
        tx,
        stopped: live.stopped().clone(),
        // Served by `http::serve` alone (no live task), its stop ends the stream.
        listener_stopped: stopping.map_or_else(CancellationToken::new, |Extension(s)| s.0),
        _waiting: long_poll.map(|Extension(poll)| poll.waiting()),
    };
    tokio::spawn(pump.run(Bytes::from(first)));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::new(EventBody(rx)),
    )
        .into_response())
}

/// One stream's task.
struct Pump {
    subscription: Subscription,
    tx: mpsc::Sender<Bytes>,
    stopped: CancellationToken,
    listener_stopped: CancellationToken,
    /// Keeps the idle timeout off this connection while the stream runs.
    _waiting: Option<Waiting>,
}

impl Pump {
    async fn run(mut self, first: Bytes) {
        if !self.send(first).await {
            return;
        }
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.reset();
        loop {
            let next = tokio::select! {
                _ = self.stopped.cancelled() => return,
                _ = self.listener_stopped.cancelled() => return,
                _ = self.tx.closed() => return,
                _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
                frame = self.subscription.frames.recv() => match frame {
                    Ok(frame) => frame,
                    // Fell behind (or the server is going): end, the page reconnects.
                    Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                },
            };
            if !self.send(next).await {
                return;
            }
        }
    }

    /// Hands a frame to the body; false when the client is gone or not reading.
    async fn send(&self, frame: Bytes) -> bool {
        matches!(
            tokio::time::timeout(SLOW_CLIENT, self.tx.send(frame)).await,
            Ok(Ok(()))
        )
    }
}

/// The response body: the frames the stream's task hands over, until it ends.
struct EventBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|frame| frame.map(|f| Ok(Frame::data(f))))
    }
}
