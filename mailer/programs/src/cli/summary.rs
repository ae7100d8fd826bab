//! What both programs add to their summary line about the SMTP side, and the `backoff:` line
//! listing their sleeps: `key=value` words, so scripts and the harness read them like the rest
//! of the summary (`failed=`, `sent=`), and the schedule can be checked from outside.

use mailer::{Cause, CountersSnapshot};

/// ` reconnect_attempts=3 refused_connects=2 connect_timeouts=0 resends=1 retries_4xx=4`:
/// connections tried again after a failure, those refused (nobody listening) and timed out
/// (no greeting), messages resent after a lost connection, and transactions retried after a
/// temporary refusal (greylisting, rate limits). Counted since the program started.
pub fn smtp_words(counters: &CountersSnapshot) -> String {
    let retries_4xx = counters.retries(Cause::Temporary);
    format!(
        " reconnect_attempts={} refused_connects={} connect_timeouts={} resends={} retries_4xx={}",
        counters.reconnect_attempts,
        counters.connect_failures(Cause::Refused),
        counters.connect_failures(Cause::Timeout),
        counters.retries_total() - retries_4xx,
        retries_4xx,
    )
}

/// `PROGRAM: backoff: r1=98/99ms r2=205/207ms t1=...` when the mailer slept at all (see
/// [`BackoffSleep`](mailer::BackoffSleep)'s display), else `None`.
pub fn backoff_line(program: &str, counters: &CountersSnapshot) -> Option<String> {
    let sleeps = counters.sleeps_line();
    (!sleeps.is_empty()).then(|| format!("{program}: backoff: {sleeps}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_counters_give_zeros_and_no_backoff_line() {
        let counters = CountersSnapshot::default();
        assert_eq!(
            smtp_words(&counters),
            " reconnect_attempts=0 refused_connects=0 connect_timeouts=0 resends=0 retries_4xx=0"
        );
        assert_eq!(backoff_line("p", &counters), None);
    }
}
