//! The reconnect loop: after a connection died (or could not be opened), sleep
//! `retry_backoff(i)` before reconnect attempt i, within the bound of attempts and time;
//! then a clear [`Error::GaveUp`].
//!
//! `i` counts the attempts of one reconnect loop, as in the original mailer: a connection
//! that opens again ends the loop, so the next drop reconnects at once (i = 0) and only a
//! server that cannot be reached is waited for, ever longer. The bound, though, counts every
//! reconnect of the outage (one message's troubles), so a server that accepts connections
//! but always drops them still ends in `GaveUp` rather than an endless loop.
//!
//! Retries after a temporary refusal (a 4xx such as greylisting's 451) count against the same
//! bound, with their own index: the server answered, so there is no point in a zero first
//! sleep; retry k sleeps `retry_backoff(k)` = base·2^(k-1). When the bound is reached on a
//! refusal, the caller gets the refusal itself (still a 4xx, so `is_temporary()`).

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::backoff::retry_backoff;
use crate::config::Config;
use crate::disposition::{Cause, Disposition};
use crate::error::Error;
use crate::mailer::Mailer;
use crate::session::{Session, StepFailure};
use crate::sleeps::{BackoffKind, BackoffSleep};

impl Mailer {
    /// Opens a session; while the failures are of the reconnect kind, sleeps
    /// `retry_backoff(i)` before reconnect attempt i of this loop, until the outage's bound.
    pub(crate) async fn open(&self, outage: &mut Option<Outage>) -> Result<Session, Error> {
        let inner = &self.inner;
        let config = &inner.config;
        loop {
            if let Some(outage) = outage.as_mut() {
                let (delay, cut) = outage
                    .next_delay(config, inner.sleeper.now(), outage.backoff_index)
                    .ok_or_else(|| outage.gave_up(inner.sleeper.now()))?;
                if !delay.is_zero() {
                    info!(
                        attempt = outage.attempts + 1,
                        ?delay,
                        "sleeping before reconnecting to {}:{}",
                        config.server,
                        config.port
                    );
                    self.back_off(BackoffKind::Reconnect, outage.backoff_index, delay, cut)
                        .await;
                }
                outage.attempts += 1;
                outage.backoff_index += 1;
                inner.counters.reconnect_attempt();
            }
            match inner.dialer.open().await {
                Ok(conn) => {
                    if let Some(outage) = outage.as_mut() {
                        outage.backoff_index = 0;
                        inner.counters.reconnected();
                        info!("reconnected to {}:{}", config.server, config.port);
                    }
                    return Ok(conn);
                }
                Err(failure) => {
                    let cause = failure.cause();
                    inner.counters.connect_failed(cause);
                    // A 4xx greeting or EHLO (not 421) says "later" as well: the same loop.
                    if !matches!(
                        failure.disposition(),
                        Disposition::Reconnect | Disposition::Retry
                    ) {
                        return Err(failure.into_error());
                    }
                    warn!(%cause, "cannot connect: {}", failure.describe());
                    outage
                        .get_or_insert_with(|| Outage::start(inner.sleeper.now()))
                        .record(cause, &failure);
                }
            }
        }
    }

    /// Sleeps one backoff, logging what was asked and how long it took.
    pub(crate) async fn back_off(
        &self,
        kind: BackoffKind,
        index: u32,
        delay: Duration,
        cut_by_deadline: bool,
    ) {
        let sleeper = &self.inner.sleeper;
        let before = sleeper.now();
        sleeper.sleep(delay).await;
        self.inner.counters.slept(BackoffSleep {
            kind,
            index,
            planned: delay,
            slept: sleeper.now().saturating_duration_since(before),
            cut_by_deadline,
        });
    }

    /// One connection attempt without the backoff loop (see `Connection::gave_up`).
    pub(crate) async fn open_once_after_giving_up(&self) -> Result<Session, Error> {
        let inner = &self.inner;
        inner.counters.reconnect_attempt();
        match inner.dialer.open().await {
            Ok(conn) => {
                inner.counters.reconnected();
                Ok(conn)
            }
            Err(failure) => {
                let cause = failure.cause();
                inner.counters.connect_failed(cause);
                if failure.disposition() != Disposition::Reconnect {
                    return Err(failure.into_error());
                }
                Err(Error::GaveUp {
                    attempts: 1,
                    elapsed: Duration::ZERO,
                    last_cause: cause,
                    last: failure.describe(),
                })
            }
        }
    }
}

/// One run of failures, from the first until a connection works again.
#[derive(Debug)]
pub(crate) struct Outage {
    started: Instant,
    /// Reconnect attempts made so far in this outage (what the bound counts).
    attempts: u32,
    /// Attempts since a connection last opened: the `i` of `retry_backoff(i)`.
    backoff_index: u32,
    /// Retries after temporary refusals so far (the i of their `retry_backoff(i)`).
    retries: u32,
    last_cause: Cause,
    last: String,
}

impl Outage {
    pub(crate) fn start(now: Instant) -> Outage {
        Outage {
            started: now,
            attempts: 0,
            backoff_index: 0,
            retries: 0,
            last_cause: Cause::Other,
            last: String::new(),
        }
    }

    pub(crate) fn record(&mut self, cause: Cause, failure: &StepFailure) {
        self.last_cause = cause;
        self.last = failure.describe();
    }

    /// The sleep before the next attempt, `retry_backoff(index)`, and whether the deadline
    /// shortened it; `None` when the bound is reached.
    fn next_delay(&self, config: &Config, now: Instant, index: u32) -> Option<(Duration, bool)> {
        let elapsed = now.saturating_duration_since(self.started);
        let past_deadline = config.reconnect_deadline.is_some_and(|d| elapsed >= d);
        if self.attempts >= config.max_reconnects || past_deadline {
            return None;
        }
        let delay = retry_backoff(index, config.reconnect_base, config.reconnect_max, 2);
        // Never sleep past the deadline: one last attempt right at it instead.
        Some(match config.reconnect_deadline {
            Some(deadline) if delay > deadline.saturating_sub(elapsed) => {
                (deadline.saturating_sub(elapsed), true)
            }
            _ => (delay, false),
        })
    }

    /// Books a retry after a temporary refusal: its index and sleep, or `None` when the
    /// bound is reached (the caller then returns the refusal).
    pub(crate) fn next_retry(
        &mut self,
        config: &Config,
        now: Instant,
    ) -> Option<(u32, Duration, bool)> {
        let index = self.retries + 1;
        let (delay, cut) = self.next_delay(config, now, index)?;
        self.retries = index;
        self.attempts += 1;
        Some((index, delay, cut))
    }

    fn gave_up(&self, now: Instant) -> Error {
        Error::GaveUp {
            attempts: self.attempts,
            elapsed: now.saturating_duration_since(self.started),
            last_cause: self.last_cause,
            last: self.last.clone(),
        }
    }
}
