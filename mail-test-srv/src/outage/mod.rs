//! The server gone away: an outage of the SMTP side (`POST /api/v1/outage`, `--outage-at`),
//! while the HTTP port stays up.
//!
//! - `refuse`: the listener is closed, so connects get ECONNREFUSED; open sessions are cut
//!   with a TCP RST and no reply; the listener is bound again on the same address at the end.
//! - `blackhole`: connections are accepted and never greeted, and open sessions stop
//!   answering (reads are discarded); when the outage ends every such connection is closed
//!   without a word (FIN), as a host coming back after a partition would have forgotten them.
//!
//! One outage is on at a time; beginning another replaces it (an `end` event for the old one,
//! then a `start` for the new). The state is one [`watch`] channel: the accept loop, the
//! sessions and the clock task all wait on it, so nobody polls.
//!
//! - `listener.rs`: the SMTP listener that closes and rebinds itself ([`Listener`]).
//! - `silence.rs`: a connection inside a blackhole ([`silence`], [`swallow`]).
//! - `cut.rs`: an open session hit by an outage ([`cut`]).
//! - `clock.rs`: ends outages at their time and starts the `--outage-at` ones ([`clock`]).

mod clock;
mod cut;
mod listener;
mod silence;

pub(crate) use clock::clock;
pub(crate) use cut::cut;
pub(crate) use listener::Listener;
pub(crate) use silence::{Silenced, silence, swallow};

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fault::{FaultEngine, Stage};

/// The longest outage accepted: anything longer is surely a typo, and would outlive the test.
pub const MAX_LENGTH: Duration = Duration::from_secs(3600);

/// How the server is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Nothing listens: ECONNREFUSED, open sessions reset.
    #[default]
    Refuse,
    /// Connections accepted, nothing ever answered.
    Blackhole,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Refuse => "refuse",
            Mode::Blackhole => "blackhole",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Mode, String> {
        match text {
            "refuse" => Ok(Mode::Refuse),
            "blackhole" => Ok(Mode::Blackhole),
            _ => Err(format!(
                "unknown outage mode {text:?} (expected refuse or blackhole)"
            )),
        }
    }
}

/// An outage's length from its text (`10s`, `1m30s`): more than zero, at most [`MAX_LENGTH`].
pub fn parse_length(text: &str) -> Result<Duration, String> {
    let length =
        humantime::parse_duration(text).map_err(|e| format!("bad duration {text:?}: {e}"))?;
    if length.is_zero() {
        return Err(format!("outage length {text:?} must be more than zero"));
    }
    if length > MAX_LENGTH {
        return Err(format!(
            "outage length {text:?} too long (at most {})",
            humantime::format_duration(MAX_LENGTH)
        ));
    }
    Ok(length)
}

/// An outage planned at start (`--outage-at AFTER:FOR[:MODE]`), `after` counted from when
/// the server is up (the READY line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub after: Duration,
    pub length: Duration,
    pub mode: Mode,
}

impl FromStr for Scheduled {
    type Err = String;

    fn from_str(text: &str) -> Result<Scheduled, String> {
        let mut parts = text.split(':');
        let (Some(after), Some(length)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "{text:?}: expected AFTER:FOR[:MODE], e.g. 5s:10s:refuse"
            ));
        };
        let mode = parts
            .next()
            .map(str::parse)
            .transpose()?
            .unwrap_or_default();
        if parts.next().is_some() {
            return Err(format!(
                "{text:?}: expected AFTER:FOR[:MODE], e.g. 5s:10s:refuse"
            ));
        }
        Ok(Scheduled {
            after: humantime::parse_duration(after)
                .map_err(|e| format!("bad AFTER {after:?}: {e}"))?,
            length: parse_length(length)?,
            mode,
        })
    }
}

/// The outage on now.
#[derive(Debug, Clone)]
pub struct Down {
    /// Counts outages begun by this server, from 1; tells a replacement from the one it replaced.
    pub id: u64,
    pub mode: Mode,
    pub length: Duration,
    pub until: Instant,
    /// `until` on the wall clock, for reports.
    pub until_wall: SystemTime,
}

impl Down {
    /// The text shown as the rule of its events: `outage refuse for 10s`.
    fn describe(&self) -> String {
        format!(
            "outage {} for {}",
            self.mode,
            humantime::format_duration(self.length)
        )
    }

    /// What `/api/v1/stats` and `/api/v1/outage` show.
    pub fn status(&self) -> Status {
        Status {
            active: true,
            mode: self.mode,
            length: humantime::format_duration(self.length).to_string(),
            until: humantime::format_rfc3339_millis(self.until_wall).to_string(),
        }
    }
}

/// An active outage as JSON: `{"active": true, "mode": "refuse", "for": "10s", "until": RFC3339}`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub active: bool,
    pub mode: Mode,
    #[serde(rename = "for")]
    pub length: String,
    pub until: String,
}

/// What the watch channel carries.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    pub down: Option<Down>,
    /// Outages begun so far (the last one's id).
    pub begun: u64,
}

/// Why an outage ended, for its `end` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Its time was up.
    Expired,
    /// `DELETE /api/v1/outage`.
    Early,
    /// Another outage began.
    Replaced,
}

/// The outage state of one server instance. Shared through `State`.
#[derive(Debug)]
pub struct Outages {
    phase: watch::Sender<Phase>,
    faults: FaultEngine,
}

impl Outages {
    /// No outage; events go to `faults`' log.
    pub fn new(faults: FaultEngine) -> Self {
        Outages {
            phase: watch::Sender::new(Phase::default()),
            faults,
        }
    }

    /// The outage on now, if any.
    pub fn current(&self) -> Option<Down> {
        self.phase.borrow().down.clone()
    }

    /// The outage on now, when it is a blackhole.
    pub fn blackhole(&self) -> Option<Down> {
        self.current().filter(|d| d.mode == Mode::Blackhole)
    }

    /// What `/api/v1/stats` reports: the outage on now, or `None`.
    pub fn status(&self) -> Option<Status> {
        self.phase.borrow().down.as_ref().map(Down::status)
    }

    /// Begins an outage of `length` now, replacing the one on (if any).
    pub fn begin(&self, mode: Mode, length: Duration) -> Down {
        let mut begun = Phase::default();
        self.phase.send_modify(|phase| {
            // Recorded under the channel's lock, so two callers' events pair up in order.
            if let Some(old) = phase.down.take() {
                self.record_end(&old, Ending::Replaced);
            }
            phase.begun += 1;
            let down = Down {
                id: phase.begun,
                mode,
                length,
                until: Instant::now() + length,
                until_wall: SystemTime::now() + length,
            };
            self.faults
                .record_external(Stage::Outage, "start", down.describe());
            tracing::info!(mode = %mode, length = ?length, "outage begins");
            phase.down = Some(down);
            begun = phase.clone();
        });
        // Just set above; `Phase::default()` has none, so this never takes the fallback.
        begun
            .down
            .unwrap_or_else(|| unreachable!("an outage was just begun"))
    }

    /// Ends the outage on now (`DELETE /api/v1/outage`); `None` when there is none.
    pub fn end_early(&self) -> Option<Down> {
        self.end_if(|_| true, Ending::Early)
    }

    /// Ends outage `id` if it is still the one on (its time is up).
    pub fn expire(&self, id: u64) -> Option<Down> {
        self.end_if(|down| down.id == id, Ending::Expired)
    }

    fn end_if(&self, which: impl Fn(&Down) -> bool, why: Ending) -> Option<Down> {
        let mut ended = None;
        self.phase.send_if_modified(|phase| {
            if !phase.down.as_ref().is_some_and(&which) {
                return false;
            }
            ended = phase.down.take();
            if let Some(down) = &ended {
                self.record_end(down, why);
            }
            true
        });
        ended
    }

    fn record_end(&self, down: &Down, why: Ending) {
        let text = match why {
            Ending::Expired => down.describe(),
            Ending::Early => format!("{} (ended early)", down.describe()),
            Ending::Replaced => format!("{} (replaced)", down.describe()),
        };
        tracing::info!(mode = %down.mode, how = ?why, "outage ends");
        self.faults.record_external(Stage::Outage, "end", text);
    }

    /// A view for one waiter; an outage on now counts as not yet seen by it.
    pub fn watch(&self) -> OutageWatch {
        let rx = self.phase.subscribe();
        let seen = {
            let phase = rx.borrow();
            phase.down.as_ref().map_or(phase.begun, |d| d.id - 1)
        };
        OutageWatch { rx, seen }
    }

    /// The raw channel, for the clock task.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }
}

/// One waiter's view of the outages: which it has already been hit by.
#[derive(Debug)]
pub struct OutageWatch {
    rx: watch::Receiver<Phase>,
    seen: u64,
}

impl OutageWatch {
    /// Resolves when an outage is on that this waiter has not been hit by yet.
    /// Cancel-safe: dropping it and asking again loses nothing.
    pub async fn hit(&mut self) -> Down {
        let seen = self.seen;
        let down = match self
            .rx
            .wait_for(|p| p.down.as_ref().is_some_and(|d| d.id > seen))
            .await
        {
            Ok(phase) => phase.down.clone(),
            Err(_) => None,
        };
        match down {
            Some(down) => {
                self.seen = down.id;
                down
            }
            // The server (and its `State`) is gone: no outage will ever come.
            None => std::future::pending().await,
        }
    }

    /// Like [`OutageWatch::hit`], owning the watch, for a future pinned once per session.
    pub async fn into_hit(mut self) -> Down {
        self.hit().await
    }

    /// Resolves when outage `id` is no longer the one on: with the outage that replaced it
    /// (counted as seen), or `None` when the server is back.
    pub async fn changed_from(&mut self, id: u64) -> Option<Down> {
        let next = match self
            .rx
            .wait_for(|p| p.down.as_ref().is_none_or(|d| d.id != id))
            .await
        {
            Ok(phase) => phase.down.clone(),
            Err(_) => None,
        };
        if let Some(down) = &next {
            self.seen = self.seen.max(down.id);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_outages_parse_with_refuse_by_default() {
        let s: Scheduled = "1s:2s".parse().unwrap();
        assert_eq!(
            s,
            Scheduled {
                after: Duration::from_secs(1),
                length: Duration::from_secs(2),
                mode: Mode::Refuse
            }
        );
        let s: Scheduled = "0s:1m:blackhole".parse().unwrap();
        assert_eq!(s.mode, Mode::Blackhole);
        assert_eq!(s.length, Duration::from_secs(60));
        for bad in [
            "1s",
            "1s:0s",
            "x:1s",
            "1s:2h",
            "1s:1s:sideways",
            "1s:1s:refuse:x",
            "",
        ] {
            assert!(
                bad.parse::<Scheduled>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[tokio::test]
    async fn a_replacement_ends_the_old_outage_and_watchers_see_each_once() {
        let outages = Outages::new(FaultEngine::new(Vec::new(), 1));
        let mut watch = outages.watch();
        let first = outages.begin(Mode::Refuse, Duration::from_secs(60));
        assert_eq!(watch.hit().await.id, first.id);
        let second = outages.begin(Mode::Blackhole, Duration::from_secs(1));
        assert_eq!(
            watch.changed_from(first.id).await.map(|d| d.id),
            Some(second.id)
        );
        // Already seen through `changed_from`: a fresh hit waits for a third outage.
        let pending = tokio::time::timeout(Duration::from_millis(20), watch.hit()).await;
        assert!(pending.is_err());
        assert!(outages.expire(first.id).is_none(), "not the one on");
        assert_eq!(outages.expire(second.id).map(|d| d.id), Some(second.id));
        assert!(outages.end_early().is_none());
        let actions: Vec<String> = outages
            .faults
            .events()
            .since(0)
            .events
            .iter()
            .map(|e| format!("{} {}", e.action, e.definition))
            .collect();
        assert_eq!(
            actions,
            [
                "start outage refuse for 1m",
                "end outage refuse for 1m (replaced)",
                "start outage blackhole for 1s",
                "end outage blackhole for 1s"
            ]
        );
    }
}
