//! An open SMTP session hit by an outage: reset at once (`refuse`), or silenced until the
//! outage ends (`blackhole`). Replies not yet sent are dropped either way: a server that is
//! gone sends nothing more.

use tokio_util::sync::CancellationToken;

use super::{Down, Mode, Silenced, silence};
use crate::State;
use crate::smtp::stream::Stream;
use crate::transcript::{Dir, Outcome, Recorder};

/// Ends the session on `stream` as outage `down` demands, recording why in its transcript
/// (outcome `server-fault (outage)`).
pub async fn cut(
    mut stream: Stream,
    recorder: Option<&Recorder>,
    down: Down,
    state: &State,
    shutdown: &CancellationToken,
) {
    if let Some(r) = recorder {
        let note = match down.mode {
            Mode::Refuse => "outage refuse: connection reset, no reply",
            Mode::Blackhole => "outage blackhole: no more replies",
        };
        r.line(Dir::Note, note.as_bytes());
        r.update(|record| record.faults += 1);
        r.outcome(Outcome::ServerFault("outage".into()));
    }
    match down.mode {
        Mode::Refuse => stream.reset(),
        Mode::Blackhole => {
            let mut watch = state.outages().watch();
            if silence(&mut stream, &mut watch, &down, shutdown).await == Silenced::Refused {
                stream.reset();
            }
            // Otherwise dropped: a FIN without a word (TLS without close_notify).
        }
    }
}
