//! Where "now" comes from: the system clock, or a fixed instant (the programs read one from
//! `FAKECLOCK` so the integration harness can run them days before a certificate expires).
//!
//! Passed around as `Arc<dyn Clock>` (no global clock): the `Date:` header and the
//! programs' expiry windows both read it.

use std::fmt::Debug;
use std::time::SystemTime;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock stopped at one instant (what `FAKECLOCK` gives, as in the original).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // 2006-01-02T15:04:05Z is 1136214245 seconds after the epoch.
    const GO_REFERENCE: u64 = 1_136_214_245;

    #[test]
    fn fixed_clock_stays_put() {
        let t = UNIX_EPOCH + Duration::from_secs(GO_REFERENCE);
        let clock = FixedClock(t);
        assert_eq!(clock.now(), t);
        assert_eq!(clock.now(), t);
    }
}
