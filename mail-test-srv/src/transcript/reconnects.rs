//! Reconnects seen: new connections from a client IP whose previous session from that IP
//! was ended by the server (a fault, an outage) within the last [`WINDOW`]. It tells
//! whether a client under test really retries after a failure, which is the point of
//! injecting one.
//!
//! A bounded table, client IP → when a session of theirs was ended by a fault. A new
//! connection from an IP in it (within the window) counts once and takes the IP out, so one
//! failure counts one reconnect however many connections follow. While the table is empty,
//! which is always the case without faults, a connection costs one atomic load.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How recent the failure must be for a new connection to count as its reconnect.
pub const WINDOW: Duration = Duration::from_secs(60);
/// IPs remembered at most; past it expired entries go, then the oldest.
const MAX_CLIENTS: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct Reconnects {
    failed: Mutex<HashMap<IpAddr, Instant>>,
    /// Entries in `failed`, readable without the lock.
    len: AtomicUsize,
    seen: AtomicU64,
}

impl Reconnects {
    /// A session from `ip` was ended by the server.
    pub(super) fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut failed = self.lock();
        if failed.len() >= MAX_CLIENTS && !failed.contains_key(&ip) {
            failed.retain(|_, at| now.duration_since(*at) <= WINDOW);
            if failed.len() >= MAX_CLIENTS
                && let Some(oldest) = failed.iter().min_by_key(|(_, at)| **at).map(|(ip, _)| *ip)
            {
                failed.remove(&oldest);
            }
        }
        failed.insert(ip, now);
        self.len.store(failed.len(), Ordering::Relaxed);
    }

    /// A new connection from `ip`.
    pub(super) fn connected(&self, ip: IpAddr) {
        if self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut failed = self.lock();
        if let Some(at) = failed.remove(&ip)
            && at.elapsed() <= WINDOW
        {
            self.seen.fetch_add(1, Ordering::Relaxed);
        }
        self.len.store(failed.len(), Ordering::Relaxed);
    }

    pub(super) fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, Instant>> {
        // Each critical section is one insert, remove or retain: a poisoned map is whole.
        self.failed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_one_reconnect_per_failure_within_the_window() {
        let r = Reconnects::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        r.connected(a);
        assert_eq!(r.seen(), 0, "no failure before");
        r.failed(a);
        r.connected(b);
        assert_eq!(r.seen(), 0, "another client");
        r.connected(a);
        r.connected(a);
        assert_eq!(r.seen(), 1, "one failure, one reconnect");
        r.failed(a);
        tokio::time::advance(WINDOW + Duration::from_secs(1)).await;
        r.connected(a);
        assert_eq!(r.seen(), 1, "too late");
    }

    #[test]
    fn the_table_is_bounded() {
        let r = Reconnects::default();
        for i in 0..(MAX_CLIENTS as u32 + 100) {
            r.failed(IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(r.len.load(Ordering::Relaxed), MAX_CLIENTS);
    }
}
