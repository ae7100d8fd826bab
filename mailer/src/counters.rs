//! Counters of one [`Mailer`](crate::Mailer): send attempts by result and cause, reconnects,
//! dry runs. Plain atomics, bumped on the hot path without a lock; read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::disposition::Cause;

/// The live counters, shared by every clone of a `Mailer` and its connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    bad_address: AtomicU64,
    failed: [AtomicU64; Cause::ALL.len()],
    reconnect_attempts: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: [AtomicU64; Cause::ALL.len()],
    dry_run: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn index(cause: Cause) -> usize {
    Cause::ALL
        .iter()
        .position(|c| *c == cause)
        .unwrap_or(Cause::ALL.len() - 1)
}

impl Counters {
    pub(crate) fn sent(&self) {
        bump(&self.sent);
    }
    pub(crate) fn bad_address(&self) {
        bump(&self.bad_address);
    }
    pub(crate) fn failed(&self, cause: Cause) {
        bump(&self.failed[index(cause)]);
    }
    pub(crate) fn reconnect_attempt(&self) {
        bump(&self.reconnect_attempts);
    }
    pub(crate) fn reconnected(&self) {
        bump(&self.reconnects);
    }
    pub(crate) fn connect_failed(&self, cause: Cause) {
        bump(&self.connect_failures[index(cause)]);
    }
    pub(crate) fn dry_run(&self) {
        bump(&self.dry_run);
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let by_cause = |counters: &[AtomicU64; Cause::ALL.len()]| {
            Cause::ALL
                .iter()
                .zip(counters)
                .map(|(cause, c)| (*cause, read(c)))
                .collect()
        };
        CountersSnapshot {
            sent: read(&self.sent),
            bad_address: read(&self.bad_address),
            failed_by_cause: by_cause(&self.failed),
            reconnect_attempts: read(&self.reconnect_attempts),
            reconnects: read(&self.reconnects),
            connect_failures_by_cause: by_cause(&self.connect_failures),
            dry_run: read(&self.dry_run),
        }
    }
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CountersSnapshot {
    /// Attempts that ended with the message accepted (250 after the final dot).
    pub sent: u64,
    /// Attempts that ended with a bad-address reply.
    pub bad_address: u64,
    /// Failed attempts (resent or not) by cause, every cause listed, in `Cause::ALL` order.
    pub failed_by_cause: Vec<(Cause, u64)>,
    /// Connection attempts made after a failure (each one after a backoff sleep).
    pub reconnect_attempts: u64,
    /// Reconnect attempts that gave a usable connection.
    pub reconnects: u64,
    /// Connection attempts (first or reconnect) that failed, by cause.
    pub connect_failures_by_cause: Vec<(Cause, u64)>,
    /// Messages logged instead of sent in dry-run mode.
    pub dry_run: u64,
}

impl CountersSnapshot {
    /// Failed attempts of one cause.
    pub fn failed(&self, cause: Cause) -> u64 {
        lookup(&self.failed_by_cause, cause)
    }
    /// Failed attempts of any cause.
    pub fn failed_total(&self) -> u64 {
        self.failed_by_cause.iter().map(|(_, n)| n).sum()
    }
    /// Failed connection attempts of one cause.
    pub fn connect_failures(&self, cause: Cause) -> u64 {
        lookup(&self.connect_failures_by_cause, cause)
    }
    /// Every send attempt: sent + bad address + failed.
    pub fn attempts(&self) -> u64 {
        self.sent + self.bad_address + self.failed_total()
    }
}

fn lookup(list: &[(Cause, u64)], cause: Cause) -> u64 {
    list.iter()
        .find(|(c, _)| *c == cause)
        .map_or(0, |(_, n)| *n)
}

impl std::fmt::Display for CountersSnapshot {
    /// One line for a summary: `sent=3 bad-address=1 failed=2 (closed=1 421=1) reconnects=2/2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent={} bad-address={} failed={}",
            self.sent,
            self.bad_address,
            self.failed_total()
        )?;
        let causes: Vec<String> = self
            .failed_by_cause
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        if !causes.is_empty() {
            write!(f, " ({})", causes.join(" "))?;
        }
        write!(
            f,
            " reconnects={}/{}",
            self.reconnects, self.reconnect_attempts
        )?;
        if self.dry_run > 0 {
            write!(f, " dry-run={}", self.dry_run)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_counts_by_result_and_cause() {
        let counters = Counters::default();
        counters.sent();
        counters.sent();
        counters.bad_address();
        counters.failed(Cause::Closed);
        counters.failed(Cause::Reply421);
        counters.failed(Cause::Reply421);
        counters.reconnect_attempt();
        counters.reconnected();
        counters.connect_failed(Cause::Refused);
        let snap = counters.snapshot();
        assert_eq!(snap.sent, 2);
        assert_eq!(snap.bad_address, 1);
        assert_eq!(snap.failed(Cause::Closed), 1);
        assert_eq!(snap.failed(Cause::Reply421), 2);
        assert_eq!(snap.failed(Cause::Reset), 0);
        assert_eq!(snap.failed_total(), 3);
        assert_eq!(snap.attempts(), 6);
        assert_eq!(snap.connect_failures(Cause::Refused), 1);
        assert_eq!(snap.failed_by_cause.len(), Cause::ALL.len());
        assert_eq!(
            snap.to_string(),
            "sent=2 bad-address=1 failed=3 (closed=1 421=2) reconnects=1/1"
        );
    }
}
