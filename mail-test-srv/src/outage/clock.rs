//! The task that ends each outage when its time is up and begins the `--outage-at` ones.
//!
//! One task per server rather than a timer per outage: a replaced or deleted outage leaves
//! no timer behind to cancel, and the task ends with the server (`stop`).

use std::collections::VecDeque;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::State;

/// Runs until `stop`: expires outages and starts the configured ones, counted from now.
pub async fn clock(state: State, stop: CancellationToken) {
    let origin = Instant::now();
    let mut planned: Vec<_> = state
        .config()
        .outages
        .iter()
        // An AFTER too far to add to an instant (centuries) never comes.
        .filter_map(|s| Some((origin.checked_add(s.after)?, s.mode, s.length)))
        .collect();
    planned.sort_by_key(|(at, _, _)| *at);
    let mut planned = VecDeque::from(planned);
    let outages = state.outages();
    let mut phase = outages.subscribe();
    loop {
        let current = phase
            .borrow_and_update()
            .down
            .as_ref()
            .map(|d| (d.id, d.until));
        let wake = [
            current.map(|(_, until)| until),
            planned.front().map(|p| p.0),
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            // `origin` stands in when there is nothing to wait for; the branch is off then.
            _ = tokio::time::sleep_until(wake.unwrap_or(origin)), if wake.is_some() => {
                let now = Instant::now();
                if let Some((id, until)) = current
                    && until <= now
                {
                    outages.expire(id);
                }
                while let Some(&(at, mode, length)) = planned.front()
                    && at <= now
                {
                    planned.pop_front();
                    outages.begin(mode, length);
                }
            }
        }
    }
}
