//! A check of the bytes the server sends on a plain connection, below lettre: every reply
//! line must start with a three-digit code and end with CRLF.
//!
//! Why: lettre reads a reply up to LF and waits for more until the line ends in CRLF, so a
//! server answering `220 hi\n` kept the mailer waiting for the whole step timeout, reported
//! as "connect timed out"; and a line without a code came out as nom's `error Tag at: ...`.
//! Checked here, both fail at once with [`ProtocolViolation`], naming what was received.
//! (Under TLS lettre owns the stream; there the step timeout still bounds the wait.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of an offending line an error shows.
const SHOWN: usize = 64;

/// The server sent something that is not an SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolViolation {
    /// What is wrong with it.
    pub what: &'static str,
    /// The start of the offending line, as received.
    pub received: Vec<u8>,
}

impl std::fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's reply is not SMTP: {} (received \"{}\")",
            self.what,
            String::from_utf8_lossy(&self.received).escape_debug()
        )
    }
}

impl std::error::Error for ProtocolViolation {}

/// Where we are in the reply stream.
#[derive(Debug, Default)]
struct Lines {
    /// Bytes of the current line so far (counting them all; keeping the first `SHOWN`).
    len: usize,
    start: Vec<u8>,
    after_cr: bool,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), ProtocolViolation> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.start.len() < SHOWN {
                self.start.push(b);
            }
            // The line as far as this read has it, to show what the server said.
            let fail = |what| {
                let mut received = self.start.clone();
                if b != b'\n' {
                    let rest = &bytes[i + 1..];
                    let end = rest
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(rest.len(), |p| p + 1);
                    received.extend_from_slice(&rest[..end]);
                }
                received.truncate(SHOWN);
                Err(ProtocolViolation { what, received })
            };
            if b == b'\n' {
                if !self.after_cr {
                    return fail("a line ends with a bare LF instead of CRLF");
                }
                *self = Lines::default();
                continue;
            }
            if self.after_cr {
                return fail("a bare CR inside a line");
            }
            match (self.len, b) {
                (0..=2, b'0'..=b'9') | (3, b' ' | b'-' | b'\r') => {}
                (0..=2, _) => return fail("a line does not start with a three-digit reply code"),
                (3, _) => return fail("the reply code is not followed by a space or '-'"),
                _ => {}
            }
            self.after_cr = b == b'\r';
            self.len += 1;
        }
        Ok(())
    }
}

/// A TCP stream whose incoming bytes are checked to be SMTP replies.
#[derive(Debug)]
pub(crate) struct ReplyCheck {
    inner: tokio::net::TcpStream,
    lines: Lines,
}

impl ReplyCheck {
    pub(crate) fn new(inner: tokio::net::TcpStream) -> ReplyCheck {
        ReplyCheck {
            inner,
            lines: Lines::default(),
        }
    }
}

impl AsyncRead for ReplyCheck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let this = &mut *self;
        match this.lines.feed(&buf.filled()[before..]) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(violation) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, violation)))
            }
        }
    }
}

impl AsyncWrite for ReplyCheck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ReplyCheck {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

/// The violation behind an error, if that is what it is (anywhere in its source chain).
pub(crate) fn violation<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ProtocolViolation> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(v) = e.downcast_ref::<ProtocolViolation>() {
            return Some(v);
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(v) = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<ProtocolViolation>())
        {
            return Some(v);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the stream in one read, and byte by byte (a line may arrive in pieces): both
    /// must agree; the one-read error is returned.
    fn check(stream: &[u8]) -> Result<(), ProtocolViolation> {
        let mut lines = Lines::default();
        let bytewise = stream.chunks(1).try_for_each(|piece| lines.feed(piece));
        let whole = Lines::default().feed(stream);
        assert_eq!(bytewise.is_ok(), whole.is_ok(), "{stream:?}");
        whole
    }

    #[test]
    fn replies_pass() {
        check(b"220 hi\r\n250-a\r\n250 b\r\n354\r\n").unwrap();
        check(b"250 ok\r\n250-par").unwrap();
    }

    #[test]
    fn violations_name_what_was_received() {
        for (stream, what) in [
            (&b"220 hi\n"[..], "bare LF"),
            (b"250 ok\r\n220 hi\n", "bare LF"),
            (b"xyz\r\n", "three-digit"),
            (b"22\r\n", "three-digit"),
            (b"220hi\r\n", "space or '-'"),
            (b"220 a\rb\r\n", "bare CR"),
        ] {
            let err = check(stream).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(what), "{stream:?}: {text}");
            assert!(text.contains("received \""), "{text}");
        }
        let text = check(b"xyz\r\n").unwrap_err().to_string();
        assert!(text.ends_with("(received \"xyz\\r\\n\")"), "{text}");
        let text = check(b"220 hi\n").unwrap_err().to_string();
        assert!(text.ends_with("(received \"220 hi\\n\")"), "{text}");
    }
}
