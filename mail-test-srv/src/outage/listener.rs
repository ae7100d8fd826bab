//! The SMTP listener, closed for the time of a `refuse` outage and bound again after it.
//!
//! Closing the socket is what makes connects fail with ECONNREFUSED (connections waiting in
//! the backlog are reset by the kernel too); a listener kept open with accepts merely paused
//! would still complete handshakes. The rebind uses the address actually bound at start
//! (never port 0 again), and tokio sets SO_REUSEADDR on it, so connections of the previous
//! socket lingering in TIME_WAIT do not block it.

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use super::{Mode, OutageWatch, Outages};

/// An accept loop's listener that follows the outages.
#[derive(Debug)]
pub struct Listener {
    socket: Option<TcpListener>,
    addr: SocketAddr,
    watch: OutageWatch,
    /// The `refuse` outage the socket is closed for.
    closed_for: Option<u64>,
}

impl Listener {
    /// Wraps the bound `listener`; closes it whenever `outages` begins a `refuse` outage.
    pub fn new(listener: TcpListener, outages: &Outages) -> io::Result<Listener> {
        Ok(Listener {
            addr: listener.local_addr()?,
            socket: Some(listener),
            watch: outages.watch(),
            closed_for: None,
        })
    }

    /// The next connection. During a `refuse` outage this waits, with the socket closed,
    /// until the outage is over or replaced by a `blackhole`. Cancel-safe (the accept loop
    /// selects on it with its shutdown).
    ///
    /// An error is either the accept's or a failed rebind (the port taken by someone else
    /// meanwhile); the next call tries again.
    pub async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let Some(socket) = &self.socket else {
                // Kept in `self` (not in this future), so a call dropped while waiting
                // leaves the next one still waiting rather than binding during the outage.
                if let Some(id) = self.closed_for {
                    match self.watch.changed_from(id).await {
                        Some(next) if next.mode == Mode::Refuse => {
                            self.closed_for = Some(next.id);
                            continue;
                        }
                        _ => self.closed_for = None,
                    }
                }
                self.socket = Some(self.rebind().await?);
                continue;
            };
            let down = tokio::select! {
                accepted = socket.accept() => return accepted,
                down = self.watch.hit() => down,
            };
            if down.mode == Mode::Refuse {
                self.socket = None;
                self.closed_for = Some(down.id);
                tracing::info!(addr = %self.addr, "SMTP listener closed for the outage");
            }
        }
    }

    async fn rebind(&self) -> io::Result<TcpListener> {
        let socket = TcpListener::bind(self.addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind {} again after the outage: {e}", self.addr),
            )
        })?;
        tracing::info!(addr = %self.addr, "SMTP listener back");
        Ok(socket)
    }
}
