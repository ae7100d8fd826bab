//! Reply-shape faults: the reply a command would get, sent wrong. `truncate` sends the first
//! half of its bytes (never its final CRLF) and closes, `garbage` sends bytes that are no
//! SMTP reply instead and closes, `bare-lf` ends its lines in LF only, `slow=BYTES/s`
//! trickles it.
//!
//! The fault only marks the session (`Session::shape`); the command then runs as usual and
//! [`Session::reshape`] rewrites the bytes it appended to `out`, so "the reply" is exactly
//! what the command would have got (a 250, an EHLO list, a 354). Trickling needs the socket
//! and a clock, so `slow` leaves the bytes as they are, marks where they start, and the
//! connection writes them with [`trickle`].

use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::session::{Flow, Session};
use super::stream::Stream;
use crate::fault::Action;

/// What `garbage` sends: binary and escape bytes with no reply code, so no client can take
/// it for a reply; the CRLF makes line-reading clients see it at once instead of waiting.
pub const GARBAGE: &[u8] = b"\x00\xff\xfe\x1b[7m%% not an SMTP reply %%\x7f\x80\xc3\x28\r\n";

/// A reply to trickle: it starts at `from` in the session's `out` and runs to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slow {
    pub from: usize,
    /// Bytes a second, at least 1.
    pub rate: u32,
}

impl Session {
    /// Applies the reply-shape fault of this step, if one fired, to the bytes appended to
    /// `out` since `from`; returns the flow that follows (`truncate` and `garbage` close).
    pub(super) fn reshape(&mut self, from: usize, flow: Flow) -> Flow {
        let Some(action) = self.shape.take() else {
            return flow;
        };
        let from = from.min(self.out.len());
        let len = self.out.len() - from;
        match action {
            Action::Truncate => {
                // Half, and never the final CRLF even for a reply of a few bytes.
                let keep = (len / 2).min(len.saturating_sub(2));
                self.out.truncate(from + keep);
                self.record_note(|| {
                    format!("truncate: {keep} of the reply's {len} bytes sent, then close")
                });
                Flow::Close
            }
            Action::Garbage => {
                self.out.truncate(from);
                self.out.extend_from_slice(GARBAGE);
                self.record_note(|| {
                    format!("garbage: sent instead of the reply ({len} bytes), then close")
                });
                Flow::Close
            }
            Action::BareLf => {
                let reply = self.out.split_off(from);
                push_bare_lf(&mut self.out, &reply);
                self.record_note(|| "bare-lf: the reply's lines end in LF only".to_owned());
                flow
            }
            Action::Slow(rate) => {
                if len > 0 {
                    self.slow = Some(Slow { from, rate });
                }
                self.record_note(|| {
                    format!("slow: the reply's {len} bytes trickled at {rate} B/s")
                });
                flow
            }
            _ => flow,
        }
    }
}

/// Appends `reply` to `out` without the CR of each CRLF (a lone CR stays: it is text).
fn push_bare_lf(out: &mut Vec<u8>, reply: &[u8]) {
    let mut bytes = reply.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
}

/// Writes `out`: the bytes before `slow.from` at once, the rest paced at `slow.rate` bytes
/// a second, so its last byte leaves about len/rate seconds after the fast part. An error
/// means the client is gone or stopped reading for `limit`, or the session reached its
/// lifetime or the server is stopping first: a trickle never outlives its session.
pub(super) async fn trickle(
    stream: &mut Stream,
    out: &mut Vec<u8>,
    slow: Slow,
    limit: Duration,
    lifetime: Pin<&mut Sleep>,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let result = tokio::select! {
        written = write_paced(stream, out, slow, limit) => written,
        _ = lifetime => Err(io::ErrorKind::TimedOut.into()),
        _ = shutdown.cancelled() => Err(io::ErrorKind::Interrupted.into()),
    };
    out.clear();
    result
}

async fn write_paced(
    stream: &mut Stream,
    out: &[u8],
    slow: Slow,
    limit: Duration,
) -> io::Result<()> {
    let (fast, paced) = out.split_at(slow.from.min(out.len()));
    write_within(stream, fast, limit).await?;
    let rate = u64::from(slow.rate.max(1));
    // About 20 writes a second, at least a byte each: smooth for a client timing its reads,
    // without one system call per byte at high rates.
    let chunk = usize::try_from(rate / 20).unwrap_or(usize::MAX).max(1);
    let start = Instant::now();
    let mut sent: u64 = 0;
    for piece in paced.chunks(chunk) {
        sent += piece.len() as u64;
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
        write_within(stream, piece, limit).await?;
    }
    Ok(())
}

/// Writes and flushes `bytes`, failing when the client has not read them within `limit`.
async fn write_within(stream: &mut Stream, bytes: &[u8], limit: Duration) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_removes_only_the_cr_of_a_crlf() {
        let mut out = b"kept".to_vec();
        push_bare_lf(&mut out, b"250-a\r\n250 b\rc\r\n");
        assert_eq!(out, b"kept250-a\n250 b\rc\n");
    }

    #[test]
    fn garbage_has_no_reply_code() {
        assert!(!GARBAGE[..3].iter().all(u8::is_ascii_digit));
    }
}
