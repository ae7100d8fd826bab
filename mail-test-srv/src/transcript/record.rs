//! One session's record: its summary (peer, times, TLS, HELO, AUTH user, counts, refusals,
//! outcome) and its lines, bounded.
//!
//! Lines are kept as the first [`HEAD_LINES`] and the last [`TAIL_LINES`], with the number
//! left out between them, and each is cut at [`MAX_LINE`] bytes: a client that sends
//! 100,000 commands leaves a transcript of about 600 short lines, not of everything.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

/// Lines kept from the start of a session.
pub const HEAD_LINES: usize = 500;
/// Lines kept from the end of a session (past the head).
pub const TAIL_LINES: usize = 100;
/// Bytes kept of one line; longer ones end with `…`.
pub const MAX_LINE: usize = 1000;
/// What a line costs besides its text (time, direction, the box), for the byte count.
const LINE_OVERHEAD: usize = std::mem::size_of::<Line>();

/// Who a line is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dir {
    /// A command line, AUTH line or the DATA summary, as the client sent it.
    #[serde(rename = "c")]
    Client,
    /// A reply line as the server sent it.
    #[serde(rename = "s")]
    Server,
    /// What the server did without a word on the wire: a fault, a discarded line.
    #[serde(rename = "note")]
    Note,
}

impl Dir {
    /// The prefix of the text transcript.
    pub fn prefix(self) -> &'static str {
        match self {
            Dir::Client => "C:",
            Dir::Server => "S:",
            Dir::Note => "*:",
        }
    }
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Time since the session started.
    pub t: Duration,
    pub dir: Dir,
    /// Valid UTF-8 as received; other bytes escaped (`\xff`); cut at [`MAX_LINE`].
    pub text: Box<str>,
}

/// TLS as negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    /// The name the client asked for (SNI), if any.
    pub sni: Option<String>,
}

/// A transaction the server refused, at whatever stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `mail`, `rcpt`, `data` or `data-end`.
    pub stage: &'static str,
    /// The envelope sender, when MAIL had been accepted.
    pub from: Option<String>,
    /// Recipients accepted so far.
    pub recipients: Vec<String>,
    /// Message bytes received, at `data-end`.
    pub size: Option<usize>,
    /// The reply that refused it, or what the fault did.
    pub reason: String,
}

/// How a session ended; shown (and serialised) as [`Outcome::name`], e.g.
/// `client-quit`, `server-fault (close)`, `limit (errors)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The client sent QUIT and got 221.
    ClientQuit,
    /// The client closed the connection (or it broke) without QUIT.
    ClientClosed,
    /// A fault ended it: `close`, `reset`, `421`, `hang`, `accept-close`.
    ServerFault(String),
    /// Silent past the idle timeout.
    IdleTimeout,
    /// A limit ended it: the session time, the error count, a bare LF refused.
    Limit(String),
    /// The server shut down.
    Shutdown,
    /// The TLS handshake failed.
    TlsFailed,
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl Outcome {
    /// A short word for logs and filters.
    pub fn name(&self) -> String {
        match self {
            Outcome::ClientQuit => "client-quit".into(),
            Outcome::ClientClosed => "client-closed".into(),
            Outcome::ServerFault(action) => format!("server-fault ({action})"),
            Outcome::IdleTimeout => "idle-timeout".into(),
            Outcome::Limit(which) => format!("limit ({which})"),
            Outcome::Shutdown => "shutdown".into(),
            Outcome::TlsFailed => "tls-failed".into(),
        }
    }
}

/// Everything known about one session.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: u64,
    pub peer: SocketAddr,
    pub started: SystemTime,
    started_at: Instant,
    pub ended: Option<SystemTime>,
    pub tls: Option<TlsInfo>,
    pub helo: Option<String>,
    pub auth_user: Option<String>,
    /// Command lines received (AUTH continuation lines included).
    pub commands: u64,
    /// Ids of the messages stored in this session.
    pub messages: Vec<u64>,
    /// Faults injected in this session.
    pub faults: u64,
    pub refusals: Vec<Refusal>,
    pub outcome: Option<Outcome>,
    head: Vec<Line>,
    tail: VecDeque<Line>,
    /// Lines left out between `head` and `tail`.
    omitted: u64,
    /// Bytes the lines hold.
    bytes: usize,
}

impl Record {
    pub fn new(id: u64, peer: SocketAddr) -> Self {
        Record {
            id,
            peer,
            started: SystemTime::now(),
            started_at: Instant::now(),
            ended: None,
            tls: None,
            helo: None,
            auth_user: None,
            commands: 0,
            messages: Vec::new(),
            faults: 0,
            refusals: Vec::new(),
            outcome: None,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
            bytes: 0,
        }
    }

    /// Adds a line; returns the change in bytes held (negative when an old tail line went).
    pub fn push(&mut self, dir: Dir, raw: &[u8]) -> isize {
        let line = Line {
            t: self.started_at.elapsed(),
            dir,
            text: shown(raw),
        };
        let added = (LINE_OVERHEAD + line.text.len()) as isize;
        self.bytes += added as usize;
        if self.head.len() < HEAD_LINES {
            self.head.push(line);
            return added;
        }
        self.tail.push_back(line);
        if self.tail.len() <= TAIL_LINES {
            return added;
        }
        let Some(dropped) = self.tail.pop_front() else {
            return added;
        };
        self.omitted += 1;
        let freed = LINE_OVERHEAD + dropped.text.len();
        self.bytes -= freed;
        added - freed as isize
    }

    /// Bytes this record holds, lines and summary (for the memory bound).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Record>()
            + self.bytes
            + self.messages.len() * 8
            + self
                .refusals
                .iter()
                .map(|r| {
                    std::mem::size_of::<Refusal>()
                        + r.reason.len()
                        + r.from.as_ref().map_or(0, String::len)
                        + r.recipients.iter().map(|t| t.len() + 24).sum::<usize>()
                })
                .sum::<usize>()
    }

    /// The lines in order; `None` stands where lines were left out (with their number).
    pub fn lines(&self) -> impl Iterator<Item = Result<&Line, u64>> {
        let gap = (self.omitted > 0).then_some(Err(self.omitted));
        self.head
            .iter()
            .map(Ok)
            .chain(gap)
            .chain(self.tail.iter().map(Ok))
    }

    /// A copy without the lines (what a list shows).
    pub fn summary(&self) -> Record {
        Record {
            id: self.id,
            peer: self.peer,
            started: self.started,
            started_at: self.started_at,
            ended: self.ended,
            tls: self.tls.clone(),
            helo: self.helo.clone(),
            auth_user: self.auth_user.clone(),
            commands: self.commands,
            messages: self.messages.clone(),
            faults: self.faults,
            refusals: self.refusals.clone(),
            outcome: self.outcome.clone(),
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: self.omitted,
            bytes: 0,
        }
    }

    /// Lines kept plus lines left out: how many the session produced.
    pub fn line_count(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64 + self.omitted
    }

    /// Marks the end.
    pub fn finish(&mut self, outcome: Outcome) {
        self.ended = Some(SystemTime::now());
        self.outcome.get_or_insert(outcome);
    }

    /// The lines as the text transcript: `+0.012s C: MAIL FROM:<a@b>`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            match line {
                Ok(line) => {
                    let secs = line.t.as_secs_f64();
                    out.push_str(&format!(
                        "+{secs:.3}s {} {}\n",
                        line.dir.prefix(),
                        line.text
                    ));
                }
                Err(omitted) => out.push_str(&format!("... {omitted} lines ...\n")),
            }
        }
        out
    }
}

/// A line as it may be shown: UTF-8 as it is, anything else escaped, cut at [`MAX_LINE`].
fn shown(raw: &[u8]) -> Box<str> {
    // A reply sent with a bare LF (the `bare-lf` fault) shows like any other line.
    let raw = raw
        .strip_suffix(b"\r\n")
        .or_else(|| raw.strip_suffix(b"\n"))
        .unwrap_or(raw);
    let cut = raw.len() > MAX_LINE;
    let kept = &raw[..raw.len().min(MAX_LINE)];
    let mut text = match std::str::from_utf8(kept) {
        Ok(text) => text.to_owned(),
        // A cut may fall inside a UTF-8 sequence: keep the valid prefix, escape the rest.
        Err(e) if cut && e.error_len().is_none() => std::str::from_utf8(&kept[..e.valid_up_to()])
            .unwrap_or_default()
            .to_owned(),
        Err(_) => kept.escape_ascii().to_string(),
    };
    if cut {
        text.push('…');
    }
    text.into_boxed_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn lines_are_shown_exactly_escaped_or_cut() {
        assert_eq!(&*shown(b"MAIL FROM:<a@b>\r\n"), "MAIL FROM:<a@b>");
        assert_eq!(&*shown("δ@x".as_bytes()), "δ@x");
        assert_eq!(&*shown(b"bad \xff byte"), "bad \\xff byte");
        let long = shown(&[b'x'; 5000]);
        assert_eq!(long.chars().count(), MAX_LINE + 1);
        assert!(long.ends_with('…'));
        // A cut inside a multi-byte character keeps the whole characters before it.
        let mut text = vec![b'x'; MAX_LINE - 1];
        text.extend_from_slice("δδ".as_bytes());
        assert_eq!(shown(&text).chars().count(), MAX_LINE);
    }

    #[test]
    fn a_long_session_keeps_its_head_and_tail() {
        let mut record = Record::new(1, peer());
        for i in 0..100_000 {
            record.push(Dir::Client, format!("NOOP {i}").as_bytes());
        }
        let lines: Vec<_> = record.lines().collect();
        assert_eq!(lines.len(), HEAD_LINES + 1 + TAIL_LINES);
        assert_eq!(lines[0].unwrap().text.as_ref(), "NOOP 0");
        assert_eq!(lines[HEAD_LINES], Err(100_000 - 600));
        assert_eq!(lines.last().unwrap().unwrap().text.as_ref(), "NOOP 99999");
        assert!(record.bytes() < 100 * 1024, "{}", record.bytes());
        let text = record.text();
        assert!(text.contains("\n... 99400 lines ...\n"), "{text}");
        assert!(text.starts_with("+0.0"));
    }

    #[test]
    fn the_first_outcome_stays() {
        let mut record = Record::new(1, peer());
        record.finish(Outcome::ServerFault("close".into()));
        record.finish(Outcome::ClientClosed);
        assert_eq!(record.outcome, Some(Outcome::ServerFault("close".into())));
        assert!(record.ended.is_some());
    }
}
