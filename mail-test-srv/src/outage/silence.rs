//! A connection inside a `blackhole` outage: nothing is ever written to it, what the client
//! sends is read and dropped (so it cannot fill the socket buffers and learn something from
//! a stalled write), and it ends when the client gives up or the outage ends.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{Down, Mode, OutageWatch};
use crate::State;
use crate::transcript::{Dir, Outcome};

/// How a silenced connection ended; the caller closes it accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silenced {
    /// The client closed or reset the connection.
    ClientGone,
    /// The blackhole is over (ended, or replaced by nothing): close without a word.
    Over,
    /// A `refuse` outage replaced the blackhole: reset the connection.
    Refused,
    /// The server is shutting down.
    Shutdown,
}

/// Reads and discards until the client goes, the blackhole `down` (or a blackhole replacing
/// it) is over, or the server stops. Nothing is written.
pub async fn silence(
    stream: &mut (impl AsyncRead + Unpin),
    watch: &mut OutageWatch,
    down: &Down,
    shutdown: &CancellationToken,
) -> Silenced {
    let mut id = down.id;
    let mut sink = [0u8; 4096];
    loop {
        tokio::select! {
            read = stream.read(&mut sink) => match read {
                Ok(0) | Err(_) => return Silenced::ClientGone,
                Ok(_) => {}
            },
            next = watch.changed_from(id) => match next {
                None => return Silenced::Over,
                Some(next) if next.mode == Mode::Refuse => return Silenced::Refused,
                Some(next) => id = next.id,
            },
            _ = shutdown.cancelled() => return Silenced::Shutdown,
        }
    }
}

/// A connection accepted during the blackhole `down`: never greeted, recorded as a session
/// whose outcome is `server-fault (outage)`, closed without a word when the outage ends.
pub async fn swallow(
    mut tcp: TcpStream,
    peer: SocketAddr,
    connection: u64,
    state: State,
    down: Down,
    shutdown: CancellationToken,
) {
    let recorder = state.sessions().open(connection, peer);
    if let Some(r) = &recorder {
        r.line(Dir::Note, b"outage blackhole: accepted, never greeted");
        r.update(|record| record.faults += 1);
        r.outcome(Outcome::ServerFault("outage".into()));
    }
    let mut watch = state.outages().watch();
    if silence(&mut tcp, &mut watch, &down, &shutdown).await == Silenced::Refused {
        // SO_LINGER 0: the close sends RST, as for the sessions a refuse outage cuts.
        let _ = tcp.set_zero_linger();
    }
}
