//! The reconnect schedule and the sleeping that carries it out.
//!
//! `retry_backoff(i, base, max, 2)` is the original's `RetryBackoff`: 0 for the first
//! reconnect (the server may just have dropped one connection), then base·2^(i-1) capped at
//! `max`, times a jitter factor uniform in [0.8, 1.2] so that many clients cut off together
//! do not come back together. No crate matches this formula exactly (see CRATES.md).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rand::RngExt;

/// The jitter factor's range: ±20%.
pub const JITTER: (f64, f64) = (0.8, 1.2);

/// How long to sleep before reconnect attempt `attempt` (0-based) of one outage.
/// As in the original the jitter applies after the cap, so a sleep may reach 1.2·max.
pub fn retry_backoff(attempt: u32, base: Duration, max: Duration, factor: u32) -> Duration {
    let jitter = rand::rng().random_range(JITTER.0..=JITTER.1);
    let delay = backoff_before_jitter(attempt, base, max, factor);
    // try_from: a `max` near Duration::MAX must not panic in mul_f64.
    Duration::try_from_secs_f64(delay.as_secs_f64() * jitter).unwrap_or(delay)
}

/// The schedule without jitter: 0, base, base·f, base·f², ... capped at `max`.
pub fn backoff_before_jitter(attempt: u32, base: Duration, max: Duration, factor: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let mut delay = base;
    for _ in 1..attempt {
        // Saturating, and stopping at the cap, so a huge attempt number costs nothing.
        match delay.checked_mul(factor.max(1)) {
            Some(next) if next < max => delay = next,
            _ => return max,
        }
    }
    delay.min(max)
}

/// How the reconnect loop waits and measures its deadline. The default sleeps through
/// tokio (so tests can pause time); a test may inject one that records what was asked for
/// and keeps its own virtual time, since paused tokio time and real sockets mix badly.
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// The time the reconnect deadline is measured in.
    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }
}

/// Sleeps with `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn schedule_without_jitter_doubles_from_base_and_caps() {
        let got: Vec<u64> = (0..12)
            .map(|i| backoff_before_jitter(i, BASE, MAX, 2).as_secs())
            .collect();
        assert_eq!(got, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_before_jitter(u32::MAX, BASE, MAX, 2), MAX);
        assert_eq!(
            backoff_before_jitter(3, Duration::from_millis(10), MAX, 3),
            Duration::from_millis(90)
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_varies() {
        for attempt in 0..15 {
            let plain = backoff_before_jitter(attempt, BASE, MAX, 2);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..200 {
                let d = retry_backoff(attempt, BASE, MAX, 2);
                assert!(
                    d >= plain.mul_f64(0.8),
                    "attempt {attempt}: {d:?} < 0.8 x {plain:?}"
                );
                assert!(
                    d <= plain.mul_f64(1.2),
                    "attempt {attempt}: {d:?} > 1.2 x {plain:?}"
                );
                seen.insert(d);
            }
            if attempt == 0 {
                assert_eq!(seen.len(), 1, "the first reconnect never waits");
            } else {
                assert!(
                    seen.len() > 50,
                    "jitter should spread the sleeps: {}",
                    seen.len()
                );
            }
        }
    }

    #[test]
    fn huge_max_does_not_panic() {
        let d = retry_backoff(200, BASE, Duration::MAX, 2);
        assert!(d >= Duration::from_secs(u64::MAX / 2));
    }
}
