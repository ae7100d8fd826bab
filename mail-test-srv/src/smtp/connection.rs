//! The socket side of one SMTP connection: read, let the [`Session`] handle every complete
//! unit, flush once per batch, and carry out endings (close, reset, hang, STARTTLS).
//!
//! Replies are flushed only when the buffer holds no further complete command (RFC 2920):
//! a pipelining client gets one write per batch, not one per reply. After a fault closes
//! or resets the socket nothing is written to it again; the stream is moved out and dropped.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::session::{Flow, Session};
use super::settings::Settings;
use super::stream::Stream;
use crate::State;
use crate::config::TlsMode;
use crate::stats::Stats;

/// How long a closing connection waits for the client's FIN before dropping the socket.
/// Reading to EOF first keeps unread client bytes from turning our FIN into an RST.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// Serves one accepted connection until it ends. Never panics on input; I/O errors end it.
pub async fn serve(
    tcp: TcpStream,
    connection: u64,
    state: State,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let idle = settings.limits.idle_timeout;
    let mut stream = if settings.tls_mode == TlsMode::Implicit {
        let Some(acceptor) = settings.acceptor.clone() else {
            return;
        };
        match tokio::time::timeout(idle, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(connection, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        }
    } else {
        Stream::Plain(tcp)
    };
    let mut session = Session::new(
        settings.clone(),
        state.clone(),
        connection,
        stream.is_tls(),
        shutdown.clone(),
    );
    let mut buf = BytesMut::with_capacity(16 * 1024);
    // One timer and one cancellation future for the whole session: re-arming a timer on
    // every read would cost more than the rest of a NOOP. The timer is pushed back lazily.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let mut flow = session.greet().await;
    // Idle time counts from when the server starts waiting after the session last made
    // progress: a unit handled (command line, AUTH line, end of DATA) or DATA bytes consumed.
    // Bytes of a command line that never ends are not progress: a client trickling one byte
    // a second would otherwise keep its session, and a connection slot, forever (slowloris;
    // tests/reliability_slow.rs).
    let mut waiting_since = Instant::now();
    let mut progressed = true;
    loop {
        match flow {
            Flow::Continue => {}
            Flow::Close => {
                if flush(&mut stream, &mut session.out, idle).await.is_ok() {
                    close(stream, &shutdown).await;
                }
                return;
            }
            Flow::Reset => {
                let _ = flush(&mut stream, &mut session.out, idle).await;
                stream.reset();
                return;
            }
            Flow::Hang => {
                if flush(&mut stream, &mut session.out, idle).await.is_ok() {
                    hang(stream, &shutdown).await;
                }
                return;
            }
            Flow::StartTls => {
                if flush(&mut stream, &mut session.out, idle).await.is_err() {
                    return;
                }
                // RFC 3207 4.2: anything the client pipelined after STARTTLS is discarded.
                buf.clear();
                let (Stream::Plain(tcp), Some(acceptor)) = (stream, settings.acceptor.clone())
                else {
                    return;
                };
                stream = match tokio::time::timeout(idle, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                    _ => return,
                };
                session.tls_started();
                progressed = true;
            }
        }
        let buffered = buf.len();
        if let Some(next) = session.step(&mut buf).await {
            progressed = true;
            flow = next;
            continue;
        }
        progressed |= buf.len() < buffered;
        if flush(&mut stream, &mut session.out, idle).await.is_err() {
            return;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        // Taken when we start waiting, so a slow fault (delay) is not mistaken for a silent client.
        if progressed {
            waiting_since = Instant::now();
            progressed = false;
        }
        flow = loop {
            tokio::select! {
                biased;
                _ = &mut cancelled => {
                    session.shutting_down();
                    break Flow::Close;
                }
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => break Flow::Continue,
                },
                _ = &mut idle_timer => {
                    let deadline = waiting_since + idle;
                    if Instant::now() >= deadline {
                        Stats::bump(&state.stats().idle_timeouts);
                        session.idle_timeout();
                        break Flow::Close;
                    }
                    // An earlier deadline fired; wait for this one.
                    idle_timer.as_mut().reset(deadline);
                }
            }
        };
    }
}

/// Writes pending replies; an error means the client is gone, or has not read for `limit`
/// (the idle timeout): a client that pipelines commands and never reads the replies would
/// otherwise hold the session in this write, and its connection slot, forever.
async fn flush(stream: &mut Stream, out: &mut Vec<u8>, limit: Duration) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(out).await?;
        if stream.is_tls() {
            stream.flush().await?;
        }
        Ok(())
    };
    let result = tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    out.clear();
    result
}

/// Closes with FIN (and TLS close_notify), then drains until the client closes too.
async fn close(mut stream: Stream, shutdown: &CancellationToken) {
    if !matches!(
        tokio::time::timeout(CLOSE_LINGER, stream.shutdown()).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(CLOSE_LINGER, drain) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Never answers again: reads and discards until the client gives up or the server stops.
async fn hang(mut stream: Stream, shutdown: &CancellationToken) {
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Answers a connection over `max_connections` with `421 4.7.0` and closes it.
pub async fn refuse(tcp: TcpStream, implicit_tls: bool, shutdown: CancellationToken) {
    let mut stream = Stream::Plain(tcp);
    // Under implicit TLS a plain-text reply would only confuse the client's handshake.
    if !implicit_tls
        && stream
            .write_all(b"421 4.7.0 too many connections, try again later\r\n")
            .await
            .is_err()
    {
        return;
    }
    close(stream, &shutdown).await;
}
