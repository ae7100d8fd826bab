//! Greylisting state: when each (client IP, sender, recipient) triple was first seen.
//!
//! A greylisting server answers `451 4.7.1` to a triple it has not seen for long enough, and
//! accepts it once the client retries after the window: the behaviour that makes mailers
//! queue and retry. The table is per server instance, cleared by a reset, and bounded: past
//! [`MAX_TRIPLES`] it starts over, as a real greylisting table expires its entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Triples remembered at most; then the table is emptied (every triple starts again).
pub const MAX_TRIPLES: usize = 100_000;

/// Client address, sender and recipient (lower-cased).
type Triple = (Option<IpAddr>, String, String);

/// When each triple was first seen.
#[derive(Debug, Default)]
pub struct Greylist {
    first_seen: Mutex<HashMap<Triple, Instant>>,
}

impl Greylist {
    /// Whether the triple is still held back by a window of `window`: true the first time it
    /// is seen and until `window` has passed since, false afterwards.
    pub fn holds(&self, peer: Option<IpAddr>, from: &str, to: &str, window: Duration) -> bool {
        let now = Instant::now();
        let mut seen = self.first_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_TRIPLES {
            seen.clear();
        }
        let key = (peer, from.to_ascii_lowercase(), to.to_ascii_lowercase());
        let first = *seen.entry(key).or_insert(now);
        now < first + window
    }

    /// Forgets every triple.
    pub fn clear(&self) {
        self.first_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_triple_passes_once_its_window_is_over() {
        let g = Greylist::default();
        let ip = Some("127.0.0.1".parse().unwrap());
        let window = Duration::from_secs(60);
        assert!(g.holds(ip, "a@x", "b@x", window), "first sight");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(g.holds(ip, "a@x", "B@X", window), "case does not matter");
        assert!(
            g.holds(ip, "a@x", "c@x", window),
            "another recipient is new"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!g.holds(ip, "a@x", "b@x", window), "window over");
        let other = Some("127.0.0.2".parse().unwrap());
        assert!(
            g.holds(other, "a@x", "b@x", window),
            "another client is new"
        );
        g.clear();
        assert!(g.holds(ip, "a@x", "b@x", window), "forgotten");
    }
}
