//! The server-wide budget of message bytes being received (`--max-inflight-bytes`).
//!
//! Each DATA transfer holds the bytes its receive buffer has allocated; the sum over all
//! sessions stays under the cap. Without it, a thousand unfinished 10 MB uploads (the
//! connection and size limits both allow that) would hold 10 GB. A DATA that finds the
//! budget spent gets 452 before 354; a transfer that runs it out while receiving stops
//! keeping its bytes, reads to the end marker, and gets 451 (RFC 5321 4.5.3.1.10 allows
//! a transient refusal for insufficient storage at either point).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget of one server. Cheap to clone; clones share it.
#[derive(Debug, Clone)]
pub struct InflightBudget {
    used: Arc<AtomicUsize>,
    cap: usize,
}

/// Bytes one transfer holds of the budget; given back on drop.
#[derive(Debug)]
pub struct Held {
    budget: InflightBudget,
    bytes: usize,
}

impl InflightBudget {
    pub fn new(cap: usize) -> Self {
        InflightBudget {
            used: Arc::new(AtomicUsize::new(0)),
            cap,
        }
    }

    /// Bytes held over all transfers now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A holding of `initial` bytes (the transfer's first buffer) for a new transfer, or
    /// `None` when the budget has no room for it.
    pub fn start(&self, initial: usize) -> Option<Held> {
        let mut held = Held {
            budget: self.clone(),
            bytes: 0,
        };
        held.grow_to(initial).then_some(held)
    }
}

impl Held {
    /// Grows the holding to `total` bytes; `false` (holding unchanged) when that would pass
    /// the cap.
    pub fn grow_to(&mut self, total: usize) -> bool {
        let Some(extra) = total.checked_sub(self.bytes).filter(|&e| e > 0) else {
            return true;
        };
        let used = &self.budget.used;
        let before = used.fetch_add(extra, Ordering::AcqRel);
        if before + extra > self.budget.cap {
            used.fetch_sub(extra, Ordering::AcqRel);
            return false;
        }
        self.bytes = total;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_stay_under_the_cap_and_are_given_back() {
        let budget = InflightBudget::new(100);
        let mut a = budget.start(10).unwrap();
        let mut b = budget.start(10).unwrap();
        assert_eq!(budget.in_use(), 20);
        assert!(a.grow_to(60));
        assert!(!b.grow_to(41), "60 + 41 > 100");
        assert!(b.grow_to(40));
        assert_eq!(budget.in_use(), 100);
        assert!(budget.start(1).is_none(), "spent");
        assert!(a.grow_to(10), "shrinking never fails");
        drop(a);
        assert_eq!(budget.in_use(), 40);
        drop(b);
        assert_eq!(budget.in_use(), 0);
        assert!(budget.start(100).is_some());
        assert!(
            budget.start(101).is_none(),
            "a first buffer larger than the cap"
        );
    }
}
