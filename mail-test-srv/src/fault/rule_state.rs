//! What one installed rule remembers while it runs: when it was installed (or last reset),
//! for the time windows (`for=`, `after-time=`), and the recent reaches of its stage, for the
//! rate trigger (`rate=N/s`, over the whole server or per client with `per-peer`).
//!
//! Times are tokio's, so tests can pause and advance the clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The rate trigger's window.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// Clients a per-client rate remembers at most; then it starts over.
const MAX_PEERS: usize = 10_000;

/// The runtime state of one installed rule.
#[derive(Debug)]
pub(super) struct RuleState {
    since: Mutex<Instant>,
    /// Reaches of the stage in the last second: the whole server's, or each client's.
    rate: Option<Mutex<Reaches>>,
}

#[derive(Debug, Default)]
struct Reaches {
    all: VecDeque<Instant>,
    by_peer: HashMap<Option<IpAddr>, VecDeque<Instant>>,
}

/// Adds `now` to `window` and returns how many reaches it holds within the last second.
/// Only `limit + 1` are ever kept: more cannot change whether the rate was exceeded.
fn count_in(window: &mut VecDeque<Instant>, now: Instant, limit: u32) -> usize {
    window.push_back(now);
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
    {
        window.pop_front();
    }
    while window.len() > limit as usize + 1 {
        window.pop_front();
    }
    window.len()
}

impl RuleState {
    /// State for a rule installed now; `rate` when it has a rate trigger.
    pub(super) fn new(rate: bool) -> Self {
        RuleState {
            since: Mutex::new(Instant::now()),
            rate: rate.then(|| Mutex::new(Reaches::default())),
        }
    }

    /// Time since the rule was installed or the engine last reset.
    pub(super) fn age(&self) -> Duration {
        self.since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Counts this reach of the rule's stage and tells whether more than `limit` happened in
    /// the last second, this one included (over the server, or for `peer` when `per_peer`).
    pub(super) fn over_rate(&self, limit: u32, per_peer: bool, peer: Option<IpAddr>) -> bool {
        let Some(rate) = &self.rate else {
            return false;
        };
        let now = Instant::now();
        let mut reaches = rate.lock().unwrap_or_else(|e| e.into_inner());
        let window = if per_peer {
            if reaches.by_peer.len() >= MAX_PEERS && !reaches.by_peer.contains_key(&peer) {
                reaches.by_peer.clear();
            }
            reaches.by_peer.entry(peer).or_default()
        } else {
            &mut reaches.all
        };
        count_in(window, now, limit) > limit as usize
    }

    /// Starts the time windows again and forgets the recent reaches.
    pub(super) fn reset(&self) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if let Some(rate) = &self.rate {
            *rate.lock().unwrap_or_else(|e| e.into_inner()) = Reaches::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_rate_counts_the_last_second_only() {
        let state = RuleState::new(true);
        let over: Vec<bool> = (0..5).map(|_| state.over_rate(3, false, None)).collect();
        assert_eq!(
            over,
            [false, false, false, true, true],
            "the 4th and 5th exceed 3/s"
        );
        tokio::time::advance(Duration::from_millis(1000)).await;
        assert!(!state.over_rate(3, false, None), "a new second");
    }

    #[tokio::test(start_paused = true)]
    async fn per_peer_rates_are_apart() {
        let state = RuleState::new(true);
        let a = Some("127.0.0.1".parse().unwrap());
        let b = Some("127.0.0.2".parse().unwrap());
        assert!(!state.over_rate(1, true, a));
        assert!(!state.over_rate(1, true, b));
        assert!(state.over_rate(1, true, a));
        state.reset();
        assert!(!state.over_rate(1, true, a));
    }

    #[tokio::test(start_paused = true)]
    async fn age_counts_from_install_or_reset() {
        let state = RuleState::new(false);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(state.age(), Duration::from_secs(5));
        state.reset();
        assert_eq!(state.age(), Duration::ZERO);
        assert!(
            !state.over_rate(0, false, None),
            "no rate trigger, never over"
        );
    }
}
