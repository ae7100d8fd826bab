//! The socket side of one SMTP connection: read, let the [`Session`] handle every complete
//! unit, flush once per batch, and carry out endings (close, reset, hang, STARTTLS).
//!
//! Replies are flushed only when the buffer holds no further complete command (RFC 2920):
//! a pipelining client gets one write per batch, not one per reply. After a fault closes
//! or resets the socket nothing is written to it again; the stream is moved out and dropped.
//!
//! No session holds its connection slot forever: every session ends by `max_session_time`
//! (421 4.4.2), a step that takes long (a `delay` fault) ends as soon as the client closes,
//! and a `hang` ends when the client closes or stays silent for the idle timeout.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::session::{Flow, Session};
use super::settings::Settings;
use super::stream::Stream;
use crate::State;
use crate::config::TlsMode;
use crate::outage::{self, Down, Mode};
use crate::stats::Stats;
use crate::transcript::{Dir, Outcome, TlsInfo};

/// How long a closing connection waits for the client's FIN before dropping the socket.
/// Reading to EOF first keeps unread client bytes from turning our FIN into an RST.
const CLOSE_LINGER: Duration = Duration::from_secs(5);

/// The same for a connection refused over `max_connections`: short, since such connections
/// come in floods.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Refused connections being answered at once; past it one more is dropped without a reply.
pub const MAX_REFUSING: usize = 64;

/// What a client may send while a slow step (a delay) runs, kept for after it.
const EARLY_INPUT_MAX: usize = 64 * 1024;

/// Serves one accepted connection until it ends. Never panics on input; I/O errors end it.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    connection: u64,
    state: State,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let idle = settings.limits.idle_timeout;
    let recorder = state.sessions().open(connection, peer);
    // Resolves when an outage hits this session (one on already counts): it is then reset
    // or silenced (`crate::outage::cut`). Taken now, pinned once like `cancelled` below.
    let outage = state.outages().watch().into_hit();
    tokio::pin!(outage);
    let mut stream = if settings.tls_mode == TlsMode::Implicit {
        let Some(acceptor) = settings.acceptor.clone() else {
            return;
        };
        match tokio::time::timeout(idle, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".to_owned(),
                };
                tracing::debug!(connection, error = %why, "TLS handshake failed");
                if let Some(recorder) = &recorder {
                    recorder.line(Dir::Note, format!("TLS handshake failed: {why}").as_bytes());
                    recorder.outcome(Outcome::TlsFailed);
                }
                return;
            }
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
    )
    .with_peer(peer.ip())
    .with_recorder(recorder);
    if let Some(info) = tls_info(&stream) {
        session.record_tls(info);
    }
    let mut buf = BytesMut::with_capacity(16 * 1024);
    // One timer and one cancellation future for the whole session: re-arming a timer on
    // every read would cost more than the rest of a NOOP. The timer is pushed back lazily.
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let lifetime = tokio::time::sleep(settings.limits.max_session_time);
    tokio::pin!(lifetime);
    let mut flow = match watch_peer(
        session.greet(),
        &mut stream,
        lifetime.as_mut(),
        outage.as_mut(),
    )
    .await
    {
        Watched::Done(flow, _) => flow,
        Watched::PeerGone => return,
        Watched::Outage(down) => {
            return outage::cut(stream, session.recorder(), down, &state, &shutdown).await;
        }
        Watched::TimeUp => session_time_up(&mut session, &state),
    };
    // Idle time counts from when the server starts waiting after the session last made
    // progress: a unit handled (command line, AUTH line, end of DATA) or DATA bytes consumed.
    // Bytes of a command line that never ends are not progress: a client trickling one byte
    // a second would otherwise keep its session, and a connection slot, forever (slowloris;
    // tests/reliability_slow.rs).
    let mut waiting_since = Instant::now();
    let mut progressed = true;
    loop {
        // A `slow` fault's reply goes out paced, before whatever the flow does next.
        if let Some(slow) = session.slow.take()
            && super::shape::trickle(
                &mut stream,
                &mut session.out,
                slow,
                idle,
                lifetime.as_mut(),
                &shutdown,
            )
            .await
            .is_err()
        {
            return;
        }
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
                    hang(stream, &shutdown, idle, lifetime, outage).await;
                }
                return;
            }
            Flow::AbortTls => {
                if flush(&mut stream, &mut session.out, idle).await.is_ok() {
                    super::abort::abort_handshake(&session, stream, idle).await;
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
                    _ => {
                        session.tls_failed();
                        return;
                    }
                };
                session.tls_started();
                if let Some(info) = tls_info(&stream) {
                    session.record_tls(info);
                }
                progressed = true;
            }
        }
        let buffered = buf.len();
        let step = session.step(&mut buf);
        let stepped = match watch_peer(step, &mut stream, lifetime.as_mut(), outage.as_mut()).await
        {
            Watched::Done(stepped, early) => {
                buf.extend_from_slice(&early);
                stepped
            }
            Watched::PeerGone => return,
            Watched::Outage(down) => {
                return outage::cut(stream, session.recorder(), down, &state, &shutdown).await;
            }
            Watched::TimeUp => Some(session_time_up(&mut session, &state)),
        };
        if let Some(next) = stepped {
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
                down = &mut outage => {
                    return outage::cut(stream, session.recorder(), down, &state, &shutdown).await;
                }
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => break Flow::Continue,
                },
                _ = &mut lifetime => break session_time_up(&mut session, &state),
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

/// The TLS parameters of `stream`, when it is under TLS.
fn tls_info(stream: &Stream) -> Option<TlsInfo> {
    let Stream::Tls(tls) = stream else {
        return None;
    };
    let conn = tls.get_ref().1;
    Some(TlsInfo {
        version: conn
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        cipher: conn
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("unknown")
            .to_owned(),
        sni: conn.server_name().map(str::to_owned),
    })
}

/// How a step watched by [`watch_peer`] ended.
enum Watched<T> {
    /// It finished; with what the client sent meanwhile.
    Done(T, Vec<u8>),
    /// The client closed (or reset) the connection first.
    PeerGone,
    /// The session reached `max_session_time` first.
    TimeUp,
    /// An outage hit the session first.
    Outage(Down),
}

/// Runs `step` while watching the socket, so a slow step (a `delay` fault) does not keep a
/// connection slot after its client has gone. When the step is ready at once (every step
/// but a delay) the socket is not even polled. Bytes the client pipelines meanwhile are
/// returned for the read buffer, up to [`EARLY_INPUT_MAX`].
async fn watch_peer<T>(
    step: impl std::future::Future<Output = T>,
    stream: &mut Stream,
    mut lifetime: Pin<&mut Sleep>,
    mut outage: Pin<&mut impl std::future::Future<Output = Down>>,
) -> Watched<T> {
    tokio::pin!(step);
    let mut early = Vec::new();
    let mut scratch = [0u8; 1024];
    loop {
        tokio::select! {
            biased;
            done = &mut step => return Watched::Done(done, early),
            read = stream.read(&mut scratch), if early.len() < EARLY_INPUT_MAX => match read {
                Ok(0) | Err(_) => return Watched::PeerGone,
                Ok(n) => early.extend_from_slice(&scratch[..n]),
            },
            _ = &mut lifetime => return Watched::TimeUp,
            down = &mut outage => return Watched::Outage(down),
        }
    }
}

/// The session reached `max_session_time`: 421 and close.
fn session_time_up(session: &mut Session, state: &State) -> Flow {
    Stats::bump(&state.stats().session_time_limits);
    session.session_time_up();
    Flow::Close
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
async fn close(stream: Stream, shutdown: &CancellationToken) {
    close_within(stream, shutdown, CLOSE_LINGER).await;
}

async fn close_within(mut stream: Stream, shutdown: &CancellationToken, linger: Duration) {
    if !matches!(
        tokio::time::timeout(linger, stream.shutdown()).await,
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
        _ = tokio::time::timeout(linger, drain) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// Never answers again: reads and discards until the client gives up (closes, or sends
/// nothing for `idle`), the session reaches its lifetime, or the server stops. The
/// connection is then dropped without a word, as a hung server's would be; a `refuse`
/// outage resets it at once.
async fn hang(
    mut stream: Stream,
    shutdown: &CancellationToken,
    idle: Duration,
    lifetime: Pin<&mut Sleep>,
    mut outage: Pin<&mut impl std::future::Future<Output = Down>>,
) {
    let mut sink = [0u8; 4096];
    // A blackhole changes nothing for a session already silent; only a reset ends it early.
    let mut outage_armed = true;
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    tokio::pin!(lifetime);
    loop {
        tokio::select! {
            read = stream.read(&mut sink) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => silence.as_mut().reset(Instant::now() + idle),
            },
            _ = &mut silence => return,
            _ = &mut lifetime => return,
            _ = shutdown.cancelled() => return,
            down = &mut outage, if outage_armed => match down.mode {
                Mode::Refuse => return stream.reset(),
                Mode::Blackhole => outage_armed = false,
            },
        }
    }
}

/// Answers a connection over `max_connections` with `421 4.7.0` and closes it. `refusing`
/// counts these answers in progress: past [`MAX_REFUSING`] the connection is dropped at
/// once, so a flood of connections cannot pile up lingering tasks.
pub async fn refuse(
    tcp: TcpStream,
    implicit_tls: bool,
    refusing: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    if refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    answer_refusal(tcp, implicit_tls, &shutdown).await;
    refusing.fetch_sub(1, Ordering::AcqRel);
}

async fn answer_refusal(tcp: TcpStream, implicit_tls: bool, shutdown: &CancellationToken) {
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
    close_within(stream, shutdown, REFUSE_LINGER).await;
}
