//! The backoff sleeps a mailer took, kept so a caller can check them against the schedule
//! (the harness's `gone-away` scenario does, from the programs' `backoff:` line): which loop
//! slept, its index i (the sleep is `retry_backoff(i)`), what was asked and how long it took.
//!
//! Sleeps are rare (one per failed attempt), so a mutex is fine; the log is capped so a
//! daemon fighting a dead server for days does not grow without end.

use std::sync::Mutex;
use std::time::Duration;

/// Entries kept; later sleeps are only counted.
pub(crate) const KEPT: usize = 512;

/// Which loop slept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffKind {
    /// Before reconnect attempt `index` after a dropped or refused connection.
    Reconnect,
    /// Before retrying a transaction the server refused for now (4xx), the `index`-th time.
    Retry,
}

/// One backoff sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffSleep {
    pub kind: BackoffKind,
    /// The i of `retry_backoff(i, base, max, 2)`: the schedule says base·2^(i-1), capped.
    pub index: u32,
    /// What the schedule asked for (jitter included).
    pub planned: Duration,
    /// How long the sleep took, by the mailer's sleeper.
    pub slept: Duration,
    /// Shortened to end at the reconnect deadline, so `planned` is below the schedule.
    pub cut_by_deadline: bool,
}

/// `r3=412/415ms`: reconnect sleep 3, 412 ms asked, 415 ms taken; `t1=...` for a retry
/// after a temporary refusal; a trailing `!` when the deadline shortened it.
impl std::fmt::Display for BackoffSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            BackoffKind::Reconnect => 'r',
            BackoffKind::Retry => 't',
        };
        write!(
            f,
            "{kind}{}={}/{}ms{}",
            self.index,
            self.planned.as_millis(),
            self.slept.as_millis(),
            if self.cut_by_deadline { "!" } else { "" }
        )
    }
}

/// The log itself: the first [`KEPT`] sleeps, and how many more there were.
#[derive(Debug, Default)]
pub(crate) struct SleepLog {
    inner: Mutex<(Vec<BackoffSleep>, u64)>,
}

impl SleepLog {
    pub(crate) fn push(&self, sleep: BackoffSleep) {
        // A poisoned lock means a panic elsewhere mid-push; the log is still usable.
        let mut log = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if log.0.len() < KEPT {
            log.0.push(sleep);
        } else {
            log.1 += 1;
        }
    }

    /// The kept sleeps and the count of those not kept.
    pub(crate) fn read(&self) -> (Vec<BackoffSleep>, u64) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleep(index: u32, kind: BackoffKind) -> BackoffSleep {
        BackoffSleep {
            kind,
            index,
            planned: Duration::from_millis(412),
            slept: Duration::from_micros(415_600),
            cut_by_deadline: false,
        }
    }

    #[test]
    fn shown_as_kind_index_planned_and_slept() {
        assert_eq!(sleep(3, BackoffKind::Reconnect).to_string(), "r3=412/415ms");
        let cut = BackoffSleep {
            cut_by_deadline: true,
            ..sleep(1, BackoffKind::Retry)
        };
        assert_eq!(cut.to_string(), "t1=412/415ms!");
    }

    #[test]
    fn keeps_the_first_sleeps_and_counts_the_rest() {
        let log = SleepLog::default();
        for i in 0..KEPT as u32 + 3 {
            log.push(sleep(i, BackoffKind::Reconnect));
        }
        let (kept, dropped) = log.read();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].index, 0);
        assert_eq!(dropped, 3);
    }
}
