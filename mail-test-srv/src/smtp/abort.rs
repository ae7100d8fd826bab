//! The `abort` fault at STARTTLS: the 220 went out, the client's ClientHello is read, and
//! the connection is aborted with a TCP RST before the handshake completes, as when a TLS
//! terminator dies mid-handshake. Reading the ClientHello first makes sure the client is
//! inside its handshake (not still waiting for the 220) when the reset hits.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::session::Session;
use super::stream::Stream;

/// The most read while waiting for the ClientHello record to be complete.
const HELLO_MAX: usize = 64 * 1024;

/// Reads the client's first TLS record (waiting up to `limit`), notes it in the transcript,
/// then resets the connection.
pub(super) async fn abort_handshake(session: &Session, mut stream: Stream, limit: Duration) {
    let mut hello = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 4096];
        while !record_complete(&hello) && hello.len() < HELLO_MAX {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => hello.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(limit, read).await;
    session.record_note(|| {
        format!(
            "abort: {} bytes of the TLS handshake read, then RST",
            hello.len()
        )
    });
    stream.reset();
}

/// Whether `bytes` begin with a whole TLS record: type, version (2 bytes), length (2 bytes),
/// then that many bytes.
fn record_complete(bytes: &[u8]) -> bool {
    match bytes {
        [_, _, _, hi, lo, body @ ..] => body.len() >= usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_complete_once_its_length_has_arrived() {
        assert!(!record_complete(b""));
        assert!(!record_complete(&[22, 3, 1, 0, 3, 1, 2]));
        assert!(record_complete(&[22, 3, 1, 0, 3, 1, 2, 3]));
        assert!(record_complete(&[22, 3, 1, 0, 0]));
    }
}
