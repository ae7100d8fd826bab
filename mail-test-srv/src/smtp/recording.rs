//! What a session tells its transcript: the lines in and out, the faults that fired, the
//! transactions refused, the HELO name, the AUTH user, the messages stored, how it ended.
//!
//! Every method is a no-op when transcripts are off (no [`Recorder`]), so the protocol code
//! calls them unconditionally and stays readable.

use super::session::Session;
use crate::fault::Decision;
use crate::transcript::{Dir, Outcome, Recorder, Refusal, TlsInfo};

/// The stage a refused command line belongs to, for the refusals of a transcript.
pub(super) fn refusable_stage(line: &[u8]) -> Option<&'static str> {
    let verb = line.get(..4)?;
    if verb.eq_ignore_ascii_case(b"MAIL") {
        Some("mail")
    } else if verb.eq_ignore_ascii_case(b"RCPT") {
        Some("rcpt")
    } else if verb.eq_ignore_ascii_case(b"DATA") {
        Some("data")
    } else {
        None
    }
}

/// The reply code at the start of `replies`, if any.
fn first_code(replies: &[u8]) -> Option<u16> {
    std::str::from_utf8(replies.get(..3)?).ok()?.parse().ok()
}

impl Session {
    /// Records this session through `recorder` (from `Sessions::open`); `None` records nothing.
    pub fn with_recorder(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// The transcript this session writes, if any.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    pub(super) fn record_client(&self, line: &[u8]) {
        if let Some(r) = &self.recorder {
            r.line(Dir::Client, line);
        }
    }

    /// The reply lines appended to `out` since position `from`.
    pub(super) fn record_replies_since(&self, from: usize) {
        if let Some(r) = &self.recorder
            && self.out.len() > from
        {
            r.replies(&self.out[from..]);
        }
    }

    /// A note (formatted only when recorded).
    pub(super) fn record_note(&self, text: impl FnOnce() -> String) {
        if let Some(r) = &self.recorder {
            r.line(Dir::Note, text().as_bytes());
        }
    }

    pub(super) fn record_fault(&self, decision: &Decision) {
        if let Some(r) = &self.recorder {
            let text = format!(
                "fault {} ({})",
                decision.rule.definition, decision.rule.action
            );
            r.line(Dir::Note, text.as_bytes());
            r.update(|record| record.faults += 1);
        }
    }

    pub(super) fn record_outcome(&self, outcome: Outcome) {
        if let Some(r) = &self.recorder {
            r.outcome(outcome);
        }
    }

    pub fn record_tls(&self, info: TlsInfo) {
        if let Some(r) = &self.recorder {
            let text = format!("TLS {} {}", info.version, info.cipher);
            r.line(Dir::Note, text.as_bytes());
            r.tls(info);
        }
    }

    /// The message content as one line: `<N bytes, Message-ID <id>>`.
    pub(super) fn record_data(&self, size: usize, message_id: Option<&str>) {
        if let Some(r) = &self.recorder {
            let text = match message_id {
                Some(id) => format!("<{size} bytes, Message-ID <{id}>>"),
                None => format!("<{size} bytes>"),
            };
            r.line(Dir::Client, text.as_bytes());
        }
    }

    pub(super) fn record_stored(&self, id: u64) {
        if let Some(r) = &self.recorder {
            r.update(|record| record.messages.push(id));
        }
    }

    pub(super) fn record_helo(&self, name: &str) {
        if let Some(r) = &self.recorder {
            r.update(|record| record.helo = Some(name.to_owned()));
        }
    }

    pub(super) fn record_auth_user(&self, user: &str) {
        if let Some(r) = &self.recorder {
            r.update(|record| record.auth_user = Some(user.to_owned()));
        }
    }

    /// After a command line of `stage` (MAIL, RCPT, DATA) was handled: a 4xx/5xx reply, or
    /// a fault that ended the session without one, refused the transaction. `line` is the
    /// command, `replies` what it got.
    pub(super) fn record_refusal_if_any(
        &self,
        stage: &'static str,
        line: &[u8],
        replies: &[u8],
        ended: bool,
    ) {
        let Some(r) = &self.recorder else {
            return;
        };
        let reason = match first_code(replies) {
            Some(code) if code >= 400 => String::from_utf8_lossy(replies)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None if ended => "connection ended by a fault".to_owned(),
            _ => return,
        };
        let (from, recipients) = match &self.tx {
            Some(tx) => (Some(tx.from.clone()), tx.recipients.clone()),
            // A refused MAIL: the sender the client tried, as it wrote it.
            None if stage == "mail" => {
                let arg = line.get(10..).unwrap_or_default();
                (
                    Some(String::from_utf8_lossy(arg).trim().to_owned()),
                    Vec::new(),
                )
            }
            None => (None, Vec::new()),
        };
        r.refused(Refusal {
            stage,
            from,
            recipients,
            size: None,
            reason,
        });
    }

    /// A message refused after its final dot with `replies` (empty: a fault ended the session).
    pub(super) fn record_data_refusal(
        &self,
        from: &str,
        recipients: &[String],
        size: usize,
        replies: &[u8],
    ) {
        let Some(r) = &self.recorder else {
            return;
        };
        let reason = String::from_utf8_lossy(replies)
            .lines()
            .next()
            .unwrap_or("connection ended by a fault")
            .to_owned();
        r.refused(Refusal {
            stage: "data-end",
            from: Some(from.to_owned()),
            recipients: recipients.to_vec(),
            size: Some(size),
            reason,
        });
    }
}
