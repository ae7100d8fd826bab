//! The server's side of a failed scenario: the transcripts of the SMTP sessions that went wrong,
//! printed under the error, so the reader sees the refused RCPT, the fault that closed the
//! connection or the copy sent twice, not only the harness's count.
//!
//! A scenario points at the sessions that matter by wrapping its error in a [`Suspect`] (see
//! [`suspect`] and [`Blame`]) with a [`Clue`]:
//! - [`Clue::Missing`] (an address holds less mail than it should): the sessions since the
//!   scenario started that sent `RCPT TO:<address>` and went wrong (a refusal, a fault, an end
//!   other than QUIT). When none did, the mail never got as far as RCPT (a close at MAIL), and the
//!   last sessions that went wrong are shown instead, after a line saying so.
//! - [`Clue::Stored`] (an address holds mail it should not, too much, or the wrong mail): the
//!   sessions that stored mail to it.
//! - [`Clue::Sessions`]: the sessions the error names (the copies of one message, a fault's).
//!
//! An error without a clue (a mailer that gave up) shows the last sessions that went wrong while
//! the scenario ran. At most [`MAX_SESSIONS`] transcripts are shown, each cut to the lines around
//! the address and the first refusal or fault plus its end (about [`MAX_LINES`] lines), with the
//! URL of the whole one; a run's servers stop with it, so the whole transcript is also saved to a
//! file when a folder is given.

use std::fmt;
use std::path::Path;

use anyhow::Context;

use crate::api::{Session, SessionDetail, TranscriptLine};
use crate::servers::Server;

/// Transcripts shown under one failure.
pub const MAX_SESSIONS: usize = 3;
/// A transcript this long or shorter is shown whole; a longer one is cut (see [`excerpt`]).
pub const MAX_LINES: usize = 40;
/// Lines shown from the start (the greeting and EHLO: who the client says it is).
const HEAD: usize = 2;
/// Lines shown before and after a line that matters.
const BEFORE: usize = 4;
const AFTER: usize = 6;
/// Lines shown from the end (how the session ended).
const TAIL: usize = 6;
/// Sessions looked at after a scenario's start, newest first: more than any scenario opens.
const SCAN: usize = 5_000;
/// Whole transcripts fetched while looking for the ones that name an address.
const DETAILS: usize = 300;

/// Which sessions explain a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clue {
    /// Mail to this address is missing: its sessions that went wrong.
    Missing(String),
    /// Mail to this address is there but should not be (or not so often, or not so): the sessions
    /// that stored it.
    Stored(String),
    /// These sessions (the `session` of a message, the `connection` of a fault event).
    Sessions(Vec<u64>),
}

impl Clue {
    /// For `address` holding `held` messages where `want` were expected.
    pub fn count(address: &str, held: usize, want: usize) -> Clue {
        if held < want {
            Clue::Missing(address.to_owned())
        } else {
            Clue::Stored(address.to_owned())
        }
    }
}

/// A scenario's error with the clue to the sessions behind it. It displays as the error it wraps
/// (with the same sources), so the message printed does not change.
#[derive(Debug)]
pub struct Suspect {
    error: anyhow::Error,
    /// The server (its [`Server::name`]) whose sessions to look at; all when `None`.
    server: Option<&'static str>,
    clue: Clue,
}

impl Suspect {
    /// The suspect in `error`'s chain, if a check put one there.
    pub fn find(error: &anyhow::Error) -> Option<&Suspect> {
        error.chain().find_map(|e| e.downcast_ref::<Suspect>())
    }

    pub fn clue(&self) -> &Clue {
        &self.clue
    }

    /// The server whose sessions to look at; all when `None`.
    pub fn server(&self) -> Option<&'static str> {
        self.server
    }
}

impl fmt::Display for Suspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{}`, not the caller's flags: `{:#}` would print the sources here and again below.
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for Suspect {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// `error`, pointing at the sessions of `server` (all servers when `None`) that `clue` finds.
pub fn suspect(error: anyhow::Error, server: Option<&'static str>, clue: Clue) -> anyhow::Error {
    anyhow::Error::new(Suspect {
        error,
        server,
        clue,
    })
}

/// `error` pointed at `server` when it is a [`Suspect`] that names no server yet (a check that
/// knows the sessions but not the server they are on).
pub fn on_server(error: anyhow::Error, server: &'static str) -> anyhow::Error {
    match error.downcast::<Suspect>() {
        Ok(mut found) => {
            found.server.get_or_insert(server);
            anyhow::Error::new(found)
        }
        Err(error) => error,
    }
}

/// [`suspect`] for a whole `Result`: `check(mail).blame(Some(server.name), Clue::Stored(to))`.
pub trait Blame<T> {
    fn blame(self, server: Option<&'static str>, clue: Clue) -> anyhow::Result<T>;
}

impl<T> Blame<T> for anyhow::Result<T> {
    fn blame(self, server: Option<&'static str>, clue: Clue) -> anyhow::Result<T> {
        self.map_err(|error| suspect(error, server, clue))
    }
}

/// A server of the run and where the current scenario's sessions start on it.
#[derive(Debug, Clone)]
pub struct Window {
    pub server: Server,
    /// The newest session before the scenario: its own sessions have higher ids.
    pub since: u64,
}

impl Window {
    /// Marks the start of a scenario on `server`. A server that does not answer gives 0 (every
    /// session counts): the scenario's report is then only less focused.
    pub async fn open(server: &Server) -> Window {
        Window {
            server: server.clone(),
            since: server.api.newest_session().await.unwrap_or(0),
        }
    }

    /// The scenario's sessions that went wrong, newest first.
    async fn went_wrong(&self) -> anyhow::Result<Vec<Session>> {
        let sessions = self.server.api.sessions_since(self.since, SCAN).await?;
        Ok(sessions.into_iter().filter(Session::went_wrong).collect())
    }
}

/// Sessions of one server to show, under a line saying why these.
struct Group<'w> {
    window: &'w Window,
    heading: String,
    sessions: Vec<SessionDetail>,
}

/// The transcripts that explain `error`, as indented lines to print under it; empty when no
/// session is to blame. With `save`, the whole transcript of each session shown is written
/// there as `SERVER-session-ID.txt`.
pub async fn explain(
    error: &anyhow::Error,
    windows: &[Window],
    save: Option<&Path>,
) -> anyhow::Result<String> {
    let suspect = Suspect::find(error);
    let server = suspect.and_then(|s| s.server);
    let clue = suspect.map(|s| &s.clue);
    let mut groups = Vec::new();
    let mut left = MAX_SESSIONS;
    for window in windows {
        if left == 0 || server.is_some_and(|name| name != window.server.name) {
            continue;
        }
        let group = match clue {
            Some(Clue::Missing(address)) => missing(window, address, left).await?,
            Some(Clue::Stored(address)) => stored(window, address, left).await?,
            Some(Clue::Sessions(ids)) => named(window, ids, left).await?,
            None => {
                let heading = format!(
                    "{}: the last sessions that went wrong while the scenario ran",
                    window.server.name
                );
                recent(window, left, heading).await?
            }
        };
        if let Some(group) = group {
            left = left.saturating_sub(group.sessions.len());
            groups.push(group);
        }
    }
    let focus = match clue {
        Some(Clue::Missing(address) | Clue::Stored(address)) => Some(address.as_str()),
        _ => None,
    };
    let mut out = String::new();
    for group in &groups {
        out.push_str(&format!("  {}:\n", group.heading));
        for detail in &group.sessions {
            out.push_str(&render(group.window, detail, focus, save).await);
        }
    }
    Ok(out)
}

/// Sessions that sent `RCPT TO:<address>` and went wrong; else the last that went wrong.
async fn missing<'w>(
    window: &'w Window,
    address: &str,
    most: usize,
) -> anyhow::Result<Option<Group<'w>>> {
    let wrong = window.went_wrong().await?;
    let mut found = Vec::new();
    for session in wrong.iter().take(DETAILS) {
        let detail = window.server.api.session(session.id).await?;
        if detail.lines.iter().any(|l| names(l, address)) {
            found.push(detail);
            if found.len() == most {
                break;
            }
        }
    }
    let name = window.server.name;
    if found.is_empty() {
        let heading = format!(
            "{name}: no session that went wrong since the scenario started sent RCPT TO:<{address}>; \
             the last ones that went wrong"
        );
        return recent(window, most, heading).await;
    }
    found.reverse();
    Ok(Some(Group {
        window,
        heading: format!(
            "{name}: sessions that sent RCPT TO:<{address}> and were refused, met a fault or did not \
             end with QUIT"
        ),
        sessions: found,
    }))
}

/// Sessions that stored mail to `address`, oldest first.
async fn stored<'w>(
    window: &'w Window,
    address: &str,
    most: usize,
) -> anyhow::Result<Option<Group<'w>>> {
    let mut ids: Vec<u64> = Vec::new();
    for message in window.server.api.messages().await? {
        let to_it = message
            .recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(address));
        if to_it && !ids.contains(&message.session) {
            ids.push(message.session);
        }
    }
    let name = window.server.name;
    let mut heading = format!("{name}: sessions that stored mail to {address}");
    if ids.len() > most {
        heading.push_str(&format!(
            " (the first {most} of {}; the others: {})",
            ids.len(),
            list(&ids[most..])
        ));
    }
    group(window, &ids, most, heading).await
}

/// The sessions `ids`.
async fn named<'w>(
    window: &'w Window,
    ids: &[u64],
    most: usize,
) -> anyhow::Result<Option<Group<'w>>> {
    let mut unique: Vec<u64> = Vec::new();
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    let heading = format!("{}: the sessions it names", window.server.name);
    group(window, &unique, most, heading).await
}

/// The newest `most` of the scenario's sessions that went wrong, oldest first.
async fn recent<'w>(
    window: &'w Window,
    most: usize,
    mut heading: String,
) -> anyhow::Result<Option<Group<'w>>> {
    let wrong = window.went_wrong().await?;
    if wrong.len() > most {
        heading.push_str(&format!(" (the last {most} of {})", wrong.len()));
    }
    let ids: Vec<u64> = wrong.iter().take(most).map(|s| s.id).rev().collect();
    group(window, &ids, most, heading).await
}

/// The first `most` of `ids` that the server still keeps, as a group; `None` when there are none.
async fn group<'w>(
    window: &'w Window,
    ids: &[u64],
    most: usize,
    heading: String,
) -> anyhow::Result<Option<Group<'w>>> {
    let mut sessions = Vec::new();
    for id in ids.iter().take(most) {
        // A session the server no longer keeps (evicted past --max-sessions) is left out.
        if let Ok(detail) = window.server.api.session(*id).await {
            sessions.push(detail);
        }
    }
    Ok((!sessions.is_empty()).then_some(Group {
        window,
        heading,
        sessions,
    }))
}

/// One session: a line about it, its excerpt, and where the whole transcript is.
async fn render(
    window: &Window,
    detail: &SessionDetail,
    focus: Option<&str>,
    save: Option<&Path>,
) -> String {
    let api = &window.server.api;
    let id = detail.summary.id;
    let mut out = format!("  session {id} {}\n", describe(&detail.summary));
    for shown in excerpt(&detail.lines, focus) {
        match shown {
            Shown::Line(at) => out.push_str(&format!("    {}\n", detail.lines[at].text())),
            Shown::Gap(n) => out.push_str(&format!("    ... {n} lines ...\n")),
        }
    }
    out.push_str(&format!("    whole transcript: {}", api.transcript_url(id)));
    if let Some(dir) = save {
        let path = dir.join(format!("{}-session-{id}.txt", window.server.name));
        match save_transcript(window, id, &path).await {
            Ok(()) => out.push_str(&format!(" (saved to {})", path.display())),
            Err(e) => out.push_str(&format!(" (not saved: {e:#})")),
        }
    }
    out.push('\n');
    out
}

async fn save_transcript(window: &Window, id: u64, path: &Path) -> anyhow::Result<()> {
    let text = window.server.api.transcript(id).await?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `(127.0.0.1:40312, TLS, 2 stored, 1 fault, refused at rcpt: 550 5.1.1 ...; ended client-quit)`.
fn describe(session: &Session) -> String {
    let mut parts = vec![session.peer.clone()];
    if session.tls.is_some() {
        parts.push("TLS".to_owned());
    }
    parts.push(format!("{} stored", session.messages.len()));
    if session.faults > 0 {
        parts.push(format!(
            "{} fault{}",
            session.faults,
            if session.faults == 1 { "" } else { "s" }
        ));
    }
    if let Some(first) = session.refusals.first() {
        let mut refused = format!("refused at {}: {}", first.stage, first.reason);
        if session.refusals.len() > 1 {
            refused.push_str(&format!(" (+{} more)", session.refusals.len() - 1));
        }
        parts.push(refused);
    }
    let ended = session.outcome.as_deref().unwrap_or("still open");
    format!("({}; ended {ended})", parts.join(", "))
}

/// `1, 2, 3` (the first ten, then how many more).
fn list(ids: &[u64]) -> String {
    let mut text: Vec<String> = ids.iter().take(10).map(u64::to_string).collect();
    if ids.len() > 10 {
        text.push(format!("and {} more", ids.len() - 10));
    }
    text.join(", ")
}

/// A client line naming `address` in angle brackets (RCPT TO:<address>), in any case.
fn names(line: &TranscriptLine, address: &str) -> bool {
    line.dir == "c"
        && line
            .line
            .to_ascii_lowercase()
            .contains(&format!("<{}>", address.to_ascii_lowercase()))
}

/// A server reply 4xx or 5xx, or a note of a fault (not the server's own `... N lines ...`).
fn trouble(line: &TranscriptLine) -> bool {
    match line.dir.as_str() {
        "s" => matches!(line.line.as_bytes().first(), Some(b'4' | b'5')),
        "note" => !line.is_gap(),
        _ => false,
    }
}

/// What [`excerpt`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The line at this index.
    Line(usize),
    /// This many lines left out.
    Gap(usize),
}

/// The lines of a transcript worth printing: all of it up to [`MAX_LINES`]; else the first
/// lines, the lines around the first client line naming `focus` and around the first refusal
/// or fault after it, and the last lines (how it ended), with gaps counted.
pub fn excerpt(lines: &[TranscriptLine], focus: Option<&str>) -> Vec<Shown> {
    let n = lines.len();
    if n <= MAX_LINES {
        return (0..n).map(Shown::Line).collect();
    }
    let named = focus.and_then(|f| lines.iter().position(|l| names(l, f)));
    let from = named.unwrap_or(0);
    let failed = lines[from..].iter().position(trouble).map(|i| from + i);
    let mut ranges = vec![(0, HEAD), (n - TAIL, n)];
    for key in [named, failed].into_iter().flatten() {
        ranges.push((key.saturating_sub(BEFORE), (key + AFTER + 1).min(n)));
    }
    ranges.sort_unstable();
    let mut shown = Vec::new();
    let mut next = 0;
    for (start, end) in ranges {
        if start > next {
            shown.push(Shown::Gap(start - next));
            next = start;
        }
        shown.extend((next.max(start)..end).map(Shown::Line));
        next = next.max(end);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(dir: &str, text: &str) -> TranscriptLine {
        TranscriptLine {
            t: 0.0,
            dir: dir.to_owned(),
            line: text.to_owned(),
        }
    }

    /// A session delivering `n` messages, one to each `r{i}@x`, the one to `bad@x` refused.
    fn session(n: usize) -> Vec<TranscriptLine> {
        let mut lines = vec![line("s", "220 hi"), line("c", "EHLO me")];
        for i in 0..n {
            let to = if i == n / 2 {
                "bad@x".to_owned()
            } else {
                format!("r{i}@x")
            };
            lines.push(line("c", "MAIL FROM:<h@x>"));
            lines.push(line("s", "250 Ok"));
            lines.push(line("c", &format!("RCPT TO:<{to}>")));
            if to == "bad@x" {
                lines.push(line("s", "550 5.1.1 no"));
                lines.push(line("c", "RSET"));
                lines.push(line("s", "250 Ok"));
                continue;
            }
            lines.push(line("s", "250 Ok"));
            lines.push(line("c", "DATA"));
            lines.push(line("s", "354 go"));
            lines.push(line("c", "<120 bytes>"));
            lines.push(line("s", "250 queued"));
        }
        lines.push(line("c", "QUIT"));
        lines.push(line("s", "221 bye"));
        lines
    }

    fn texts(lines: &[TranscriptLine], shown: &[Shown]) -> Vec<String> {
        shown
            .iter()
            .map(|s| match s {
                Shown::Line(at) => lines[*at].line.clone(),
                Shown::Gap(n) => format!("... {n}"),
            })
            .collect()
    }

    #[test]
    fn a_short_transcript_is_shown_whole() {
        let lines = session(3);
        assert!(lines.len() <= MAX_LINES);
        let shown = excerpt(&lines, Some("bad@x"));
        assert_eq!(shown.len(), lines.len());
        assert!(shown.iter().all(|s| matches!(s, Shown::Line(_))));
    }

    #[test]
    fn a_long_one_keeps_its_start_the_address_the_refusal_and_its_end() {
        let lines = session(100);
        let shown = excerpt(&lines, Some("BAD@x"));
        let text = texts(&lines, &shown);
        assert!(shown.len() <= MAX_LINES, "{text:#?}");
        assert_eq!(text[..2], ["220 hi", "EHLO me"]);
        let rcpt = text.iter().position(|t| t == "RCPT TO:<bad@x>").unwrap();
        assert_eq!(text[rcpt + 1], "550 5.1.1 no");
        assert_eq!(text[text.len() - 2..], ["QUIT", "221 bye"]);
        // Every line is either shown or counted in a gap.
        let counted: usize = shown
            .iter()
            .map(|s| match s {
                Shown::Line(_) => 1,
                Shown::Gap(n) => *n,
            })
            .sum();
        assert_eq!(counted, lines.len());
    }

    #[test]
    fn without_an_address_the_first_fault_is_the_focus() {
        let mut lines = session(20);
        let at = lines.len() - 2;
        lines.insert(at, line("note", "fault mail:close:35% (close)"));
        let text = texts(&lines, &excerpt(&lines, None));
        // The refusal of bad@x comes first and is shown; the fault falls in the last lines.
        assert!(text.contains(&"550 5.1.1 no".to_owned()), "{text:#?}");
        assert!(text.contains(&"fault mail:close:35% (close)".to_owned()));
        // The server's own gap note is not a fault.
        assert!(!trouble(&line("note", "... 12 lines ...")));
    }

    #[test]
    fn a_suspect_displays_as_its_error_and_is_found_under_context() {
        let inner = anyhow::anyhow!("low").context("a@x should hold 1 message");
        let error =
            suspect(inner, Some("srv"), Clue::count("a@x", 0, 1)).context("scenario notify");
        assert_eq!(
            format!("{error:#}"),
            "scenario notify: a@x should hold 1 message: low"
        );
        let found = Suspect::find(&error).unwrap();
        assert_eq!(found.clue(), &Clue::Missing("a@x".to_owned()));
        assert_eq!(found.server(), Some("srv"));
        let moved = on_server(
            anyhow::Error::new(Suspect {
                error: anyhow::anyhow!("x"),
                server: None,
                clue: Clue::Sessions(vec![1]),
            }),
            "other",
        );
        assert_eq!(Suspect::find(&moved).unwrap().server(), Some("other"));
        assert_eq!(Clue::count("a@x", 2, 1), Clue::Stored("a@x".to_owned()));
    }

    #[test]
    fn a_session_is_described_in_one_line() {
        let session: Session = serde_json::from_str(
            r#"{"id": 4, "peer": "127.0.0.1:5", "open": false, "tls": null, "helo": "me",
                "commands": 6, "messages": [1], "faults": 1,
                "refusals": [{"stage": "rcpt", "from": "h@x", "recipients": [], "size": null,
                              "reason": "550 5.1.1 no"}],
                "outcome": "client-quit"}"#,
        )
        .unwrap();
        assert!(session.went_wrong());
        assert_eq!(
            describe(&session),
            "(127.0.0.1:5, 1 stored, 1 fault, refused at rcpt: 550 5.1.1 no; ended client-quit)"
        );
        assert_eq!(
            list(&(1..=12).collect::<Vec<_>>()),
            "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, and 2 more"
        );
    }
}
