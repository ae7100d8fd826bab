//! Latency percentiles and the exactly-once tally: pure functions over what the load
//! generator recorded and what the server reports, with unit tests beside them.

use std::collections::HashMap;
use std::time::Duration;

/// Per-message latency summary (one `send_mail` call, reconnects and resends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// Nearest-rank percentiles (the smallest sample with at least p% of the samples at or
    /// below it); all zero for no samples.
    pub fn of(samples: &mut [Duration]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let rank = |p: usize| {
            // ceil(p/100 * n), as an index from 1; never 0.
            let n = samples.len();
            let r = (p * n).div_ceil(100).max(1);
            samples[r - 1]
        };
        Latency {
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: samples[samples.len() - 1],
        }
    }
}

/// How the messages the client says were accepted compare with what the server stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Accepted messages stored exactly once.
    pub exactly_once: usize,
    /// Accepted but not stored.
    pub missing: usize,
    /// Accepted and stored more than once (extra copies counted).
    pub duplicates: usize,
    /// Stored messages whose Message-ID we never sent (another client of the server).
    pub foreign: usize,
}

impl Tally {
    /// Message-IDs compared without angle brackets: the mailer reports `<id>`, the server's
    /// summary gives the bare `id`.
    pub fn of<'a>(sent: &[String], stored: impl IntoIterator<Item = Option<&'a str>>) -> Tally {
        let mut copies: HashMap<&str, usize> = sent.iter().map(|id| (bare(id), 0)).collect();
        let mut tally = Tally::default();
        for id in stored {
            match id.map(bare).and_then(|id| copies.get_mut(id)) {
                Some(n) => *n += 1,
                None => tally.foreign += 1,
            }
        }
        for n in copies.values() {
            match n {
                0 => tally.missing += 1,
                1 => tally.exactly_once += 1,
                more => {
                    tally.exactly_once += 1;
                    tally.duplicates += more - 1;
                }
            }
        }
        tally
    }

    /// True when every accepted message was stored once and only once.
    pub fn perfect(&self, accepted: usize) -> bool {
        self.exactly_once == accepted && self.missing == 0 && self.duplicates == 0
    }
}

fn bare(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// Milliseconds with three decimals, for the report.
pub fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples = ms_list(&(1..=100).rev().collect::<Vec<_>>());
        let l = Latency::of(&mut samples);
        assert_eq!(l.p50, Duration::from_millis(50));
        assert_eq!(l.p90, Duration::from_millis(90));
        assert_eq!(l.p99, Duration::from_millis(99));
        assert_eq!(l.max, Duration::from_millis(100));
    }

    #[test]
    fn few_samples_and_none() {
        let l = Latency::of(&mut ms_list(&[7]));
        let seven = Duration::from_millis(7);
        assert_eq!((l.p50, l.p99, l.max), (seven, seven, seven));
        let l = Latency::of(&mut ms_list(&[1, 1000]));
        assert_eq!(l.p50, Duration::from_millis(1));
        assert_eq!(l.p90, Duration::from_millis(1000));
        assert_eq!(Latency::of(&mut []), Latency::default());
    }

    #[test]
    fn tally_counts_missing_duplicates_and_foreign() {
        let sent: Vec<String> = ["<a@x>", "<b@x>", "<c@x>"].map(String::from).to_vec();
        let stored = [Some("a@x"), Some("b@x"), Some("b@x"), Some("zz@x"), None];
        let t = Tally::of(&sent, stored);
        assert_eq!(
            t,
            Tally {
                exactly_once: 2,
                missing: 1,
                duplicates: 1,
                foreign: 2
            }
        );
        assert!(!t.perfect(3));
        let all = Tally::of(&sent, [Some("a@x"), Some("<b@x>"), Some("c@x")]);
        assert!(all.perfect(3));
    }
}
