//! Counters of one [`Mailer`](crate::Mailer): send attempts by result and cause, retries by
//! cause, reconnects, dry runs, and the backoff sleeps. Plain atomics, bumped on the hot path
//! without a lock (the sleep log has one, sleeps being rare); read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::disposition::Cause;
use crate::sleeps::{BackoffSleep, SleepLog};

/// The live counters, shared by every clone of a `Mailer` and its connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sent: AtomicU64,
    bad_address: AtomicU64,
    failed: [AtomicU64; Cause::ALL.len()],
    retries: [AtomicU64; Cause::ALL.len()],
    reconnect_attempts: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: [AtomicU64; Cause::ALL.len()],
    dry_run: AtomicU64,
    sleeps: SleepLog,
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
    pub(crate) fn retried(&self, cause: Cause) {
        bump(&self.retries[index(cause)]);
    }
    pub(crate) fn slept(&self, sleep: BackoffSleep) {
        self.sleeps.push(sleep);
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
        let (sleeps, sleeps_not_kept) = self.sleeps.read();
        CountersSnapshot {
            sent: read(&self.sent),
            bad_address: read(&self.bad_address),
            failed_by_cause: by_cause(&self.failed),
            retries_by_cause: by_cause(&self.retries),
            reconnect_attempts: read(&self.reconnect_attempts),
            reconnects: read(&self.reconnects),
            connect_failures_by_cause: by_cause(&self.connect_failures),
            dry_run: read(&self.dry_run),
            sleeps,
            sleeps_not_kept,
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
    /// Failed attempts after which the mailer went on (to reconnect and resend, or to RSET
    /// and retry after a temporary refusal), by cause; the rest of `failed_by_cause` ended
    /// as errors at once. A reconnect that then reaches the bound still counts here.
    pub retries_by_cause: Vec<(Cause, u64)>,
    /// Connection attempts made after a failure (each one after a backoff sleep).
    pub reconnect_attempts: u64,
    /// Reconnect attempts that gave a usable connection.
    pub reconnects: u64,
    /// Connection attempts (first or reconnect) that failed, by cause.
    pub connect_failures_by_cause: Vec<(Cause, u64)>,
    /// Messages logged instead of sent in dry-run mode.
    pub dry_run: u64,
    /// The backoff sleeps, oldest first (the first 512).
    pub sleeps: Vec<BackoffSleep>,
    /// Backoff sleeps past those kept in `sleeps`.
    pub sleeps_not_kept: u64,
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
    /// Retried attempts of one cause (`Cause::Temporary`: greylisting, rate limits...).
    pub fn retries(&self, cause: Cause) -> u64 {
        lookup(&self.retries_by_cause, cause)
    }
    /// Retried attempts of any cause.
    pub fn retries_total(&self) -> u64 {
        self.retries_by_cause.iter().map(|(_, n)| n).sum()
    }
    /// Failed connection attempts of any cause.
    pub fn connect_failures_total(&self) -> u64 {
        self.connect_failures_by_cause.iter().map(|(_, n)| n).sum()
    }
    /// The backoff sleeps as one line of words (`r1=98/99ms r2=205/207ms t1=...`), with
    /// `+N more` when some were not kept; empty when there were none.
    pub fn sleeps_line(&self) -> String {
        let mut words: Vec<String> = self.sleeps.iter().map(ToString::to_string).collect();
        if self.sleeps_not_kept > 0 {
            words.push(format!("+{} more", self.sleeps_not_kept));
        }
        words.join(" ")
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

/// ` (closed=1 421=2)`: the non-zero causes, nothing when all are zero.
fn write_causes(f: &mut std::fmt::Formatter<'_>, list: &[(Cause, u64)]) -> std::fmt::Result {
    let causes: Vec<String> = list
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| format!("{c}={n}"))
        .collect();
    if causes.is_empty() {
        return Ok(());
    }
    write!(f, " ({})", causes.join(" "))
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
        write_causes(f, &self.failed_by_cause)?;
        if self.retries_total() > 0 {
            write!(f, " retries={}", self.retries_total())?;
            write_causes(f, &self.retries_by_cause)?;
        }
        write!(
            f,
            " reconnects={}/{}",
            self.reconnects, self.reconnect_attempts
        )?;
        if self.connect_failures_total() > 0 {
            write!(f, " connect-failures={}", self.connect_failures_total())?;
            write_causes(f, &self.connect_failures_by_cause)?;
        }
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
        counters.retried(Cause::Closed);
        counters.retried(Cause::Reply421);
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
        assert_eq!(snap.retries(Cause::Reply421), 1);
        assert_eq!(snap.retries_total(), 2);
        assert_eq!(
            snap.to_string(),
            "sent=2 bad-address=1 failed=3 (closed=1 421=2) retries=2 (closed=1 421=1) \
             reconnects=1/1 connect-failures=1 (refused=1)"
        );
        assert_eq!(snap.sleeps_line(), "");
    }
}
