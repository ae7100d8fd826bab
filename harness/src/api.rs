//! The HTTP report API of one mail-test-srv, as the scenarios need it: the original text routes
//! (`/count`, `/mail/N`) for what was delivered to whom, and the JSON API for message summaries,
//! fault events, stats and session transcripts (what a failed scenario's report shows).
//!
//! ureq is blocking; each call runs on tokio's blocking pool so the runtime (signals, the
//! children's output readers) keeps going meanwhile.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A client of one server's HTTP API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    agent: ureq::Agent,
}

/// One record of the original API: one recipient of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub from: String,
    pub to: String,
    /// The message as stored (CRLF line ends).
    pub raw: String,
}

/// One message in `GET /api/v1/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    pub id: u64,
    pub from: String,
    pub recipients: Vec<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub tls: bool,
    pub connection: u64,
    /// The SMTP session it arrived in (`/api/v1/sessions/ID`).
    pub session: u64,
}

#[derive(Debug, Deserialize)]
struct Page {
    messages: Vec<Summary>,
}

/// One injected fault from `GET /api/v1/events`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub connection: u64,
    pub stage: String,
    /// The rule as text; the log may keep only its index, so this may be empty.
    #[serde(default)]
    pub rule: String,
    pub action: String,
    pub stored: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventPage {
    pub events: Vec<Event>,
    pub last_seq: u64,
    pub dropped: u64,
}

/// The parts of `GET /api/v1/stats` the harness reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Stats {
    pub messages: u64,
    pub seed: u64,
    pub faults: FaultStats,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FaultStats {
    pub total: u64,
    pub by_stage: BTreeMap<String, u64>,
    pub by_action: BTreeMap<String, u64>,
}

impl FaultStats {
    /// `mail 12, data-end 1` for the non-zero stages.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .by_stage
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(stage, n)| format!("{stage} {n}"))
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// One SMTP session in `GET /api/v1/sessions` (the summary, without its lines).
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: u64,
    pub peer: String,
    pub open: bool,
    /// Negotiated TLS (version, cipher, SNI); only whether there was any is shown.
    #[serde(default)]
    pub tls: Option<serde_json::Value>,
    pub helo: Option<String>,
    pub commands: u64,
    /// Ids of the messages it stored.
    pub messages: Vec<u64>,
    pub faults: u64,
    pub refusals: Vec<Refusal>,
    /// `client-quit`, `client-closed`, `server-fault (close)`, `idle-timeout`, ...; none while open.
    pub outcome: Option<String>,
}

/// A transaction the server refused, at whatever stage (a fault's close counts).
#[derive(Debug, Clone, Deserialize)]
pub struct Refusal {
    /// `mail`, `rcpt`, `data` or `data-end`.
    pub stage: String,
    pub from: Option<String>,
    /// Recipients accepted before the refusal.
    pub recipients: Vec<String>,
    /// The reply that refused it, or what the fault did.
    pub reason: String,
}

impl Session {
    /// Refused something, met a fault, or ended any other way than the client's QUIT. A session
    /// still open counts only by its refusals and faults: it may simply not be over yet.
    pub fn went_wrong(&self) -> bool {
        !self.refusals.is_empty()
            || self.faults > 0
            || self.outcome.as_deref().is_some_and(|o| o != "client-quit")
    }
}

#[derive(Debug, Deserialize)]
struct SessionPage {
    sessions: Vec<Session>,
    next_before: Option<u64>,
}

/// `GET /api/v1/sessions/ID`: the summary and every line kept.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: Session,
    pub lines: Vec<TranscriptLine>,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TranscriptLine {
    /// Seconds since the session started.
    pub t: f64,
    /// `c` (client), `s` (server) or `note` (a fault, a gap of lines left out).
    pub dir: String,
    pub line: String,
}

impl TranscriptLine {
    /// As the text transcript writes it: `+0.012s C: MAIL FROM:<a@b>`, and the server's mark of
    /// lines it did not keep as `... N lines ...` alone.
    pub fn text(&self) -> String {
        let who = match self.dir.as_str() {
            "c" => "C:",
            "s" => "S:",
            _ if self.is_gap() => return self.line.clone(),
            _ => "*:",
        };
        format!("+{:.3}s {who} {}", self.t, self.line)
    }

    /// The server's `... N lines ...` in place of the lines of a long session it left out.
    pub fn is_gap(&self) -> bool {
        self.dir == "note" && self.line.starts_with("... ") && self.line.ends_with(" lines ...")
    }
}

/// Largest page the server returns from `/api/v1/messages`.
const PAGE: usize = 10_000;
/// Largest page the server returns from `/api/v1/sessions`.
const SESSION_PAGE: usize = 1_000;

impl Api {
    pub fn new(http: SocketAddr) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Loopback only: a proxy from the environment must not see these requests.
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Api {
            base: format!("http://{http}"),
            agent,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Status and body of a GET; `query` is percent-encoded by ureq.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let agent = self.agent.clone();
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let shown = url.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<(u16, String), ureq::Error> {
            let mut response = agent.get(&url).query_pairs(query).call()?;
            let status = response.status().as_u16();
            Ok((status, response.body_mut().read_to_string()?))
        })
        .await
        .context("the HTTP task failed")?;
        result.with_context(|| format!("GET {shown}"))
    }

    async fn json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let (status, body) = self.get(path, query).await?;
        if status != 200 {
            bail!("GET {path}: status {status}: {}", body.trim());
        }
        serde_json::from_str(&body)
            .with_context(|| format!("GET {path}: unexpected JSON {body:.200}"))
    }

    /// `GET /count[?to=]`: records (message × recipient) stored.
    pub async fn count(&self, to: Option<&str>) -> anyhow::Result<usize> {
        let query: Vec<(&str, &str)> = to.map(|to| ("to", to)).into_iter().collect();
        let (status, body) = self.get("/count", &query).await?;
        if status != 200 {
            bail!("GET /count: status {status}");
        }
        body.trim()
            .parse()
            .with_context(|| format!("GET /count: not a number: {body:?}"))
    }

    /// `GET /mail/N[?to=]`; `None` on 404.
    pub async fn mail(&self, index: usize, to: Option<&str>) -> anyhow::Result<Option<Record>> {
        let query: Vec<(&str, &str)> = to.map(|to| ("to", to)).into_iter().collect();
        let path = format!("/mail/{index}");
        let (status, body) = self.get(&path, &query).await?;
        match status {
            200 => Record::parse(&body)
                .with_context(|| format!("GET {path}"))
                .map(Some),
            404 => Ok(None),
            other => bail!("GET {path}: status {other}"),
        }
    }

    /// Every record (to one address, or all), oldest first, through the original routes.
    pub async fn records(&self, to: Option<&str>) -> anyhow::Result<Vec<Record>> {
        let count = self.count(to).await?;
        let mut records = Vec::with_capacity(count);
        for index in 0..count {
            match self.mail(index, to).await? {
                Some(record) => records.push(record),
                None => bail!("GET /count said {count} but /mail/{index} is 404"),
            }
        }
        Ok(records)
    }

    /// Every message summary, oldest first.
    pub async fn messages(&self) -> anyhow::Result<Vec<Summary>> {
        let mut all = Vec::new();
        loop {
            let offset = all.len().to_string();
            let limit = PAGE.to_string();
            let page: Page = self
                .json(
                    "/api/v1/messages",
                    &[("offset", &offset), ("limit", &limit)],
                )
                .await?;
            let done = page.messages.len() < PAGE;
            all.extend(page.messages);
            if done {
                return Ok(all);
            }
        }
    }

    /// Every fault event after sequence number `since`, oldest first. The server may answer a
    /// page at a time (newest sequence number in `last_seq`), so this asks until it has them all.
    pub async fn events(&self, since: u64) -> anyhow::Result<EventPage> {
        let mut all: EventPage = self
            .json("/api/v1/events", &[("since", &since.to_string())])
            .await?;
        loop {
            let Some(last) = all.events.last().map(|e| e.seq) else {
                return Ok(all);
            };
            if last >= all.last_seq {
                return Ok(all);
            }
            let next: EventPage = self
                .json("/api/v1/events", &[("since", &last.to_string())])
                .await?;
            if next.events.is_empty() {
                return Ok(all);
            }
            all.events.extend(next.events);
            all.last_seq = next.last_seq;
            all.dropped = next.dropped;
        }
    }

    /// `POST /api/v1/outage`: the SMTP side gone for `length` (`refuse` or `blackhole`),
    /// replacing the outage on, if any. The HTTP port stays up throughout.
    pub async fn outage(&self, mode: &str, length: Duration) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/outage", self.base);
        let body = serde_json::json!({ "for": format!("{}ms", length.as_millis()), "mode": mode })
            .to_string();
        let agent = self.agent.clone();
        let shown = url.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<(u16, String), ureq::Error> {
            let mut response = agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body)?;
            let status = response.status().as_u16();
            Ok((status, response.body_mut().read_to_string()?))
        })
        .await
        .context("the HTTP task failed")?;
        let (status, body) = result.with_context(|| format!("POST {shown}"))?;
        if !(200..300).contains(&status) {
            bail!(
                "POST {shown} ({mode} for {length:?}): status {status}: {}",
                body.trim()
            );
        }
        Ok(())
    }

    pub async fn stats(&self) -> anyhow::Result<Stats> {
        self.json("/api/v1/stats", &[]).await
    }

    /// Id of the newest session so far (0 before the first): later sessions have higher ids.
    pub async fn newest_session(&self) -> anyhow::Result<u64> {
        let page: SessionPage = self.json("/api/v1/sessions", &[("limit", "1")]).await?;
        Ok(page.sessions.first().map_or(0, |s| s.id))
    }

    /// Summaries of the sessions after session `since`, newest first, at most `most` of them.
    pub async fn sessions_since(&self, since: u64, most: usize) -> anyhow::Result<Vec<Session>> {
        let mut all = Vec::new();
        let mut before = None;
        while all.len() < most {
            let limit = (most - all.len()).min(SESSION_PAGE).to_string();
            let below = before.map(|id: u64| id.to_string());
            let mut query = vec![("limit", limit.as_str())];
            if let Some(below) = &below {
                query.push(("before", below));
            }
            let page: SessionPage = self.json("/api/v1/sessions", &query).await?;
            let done =
                page.next_before.is_none() || page.sessions.last().is_none_or(|s| s.id <= since);
            all.extend(page.sessions.into_iter().take_while(|s| s.id > since));
            if done {
                break;
            }
            before = page.next_before;
        }
        Ok(all)
    }

    /// `GET /api/v1/sessions/ID`.
    pub async fn session(&self, id: u64) -> anyhow::Result<SessionDetail> {
        self.json(&format!("/api/v1/sessions/{id}"), &[]).await
    }

    /// `GET /api/v1/sessions/ID/transcript`: the whole transcript as text.
    pub async fn transcript(&self, id: u64) -> anyhow::Result<String> {
        let path = format!("/api/v1/sessions/{id}/transcript");
        let (status, body) = self.get(&path, &[]).await?;
        if status != 200 {
            bail!("GET {path}: status {status}: {}", body.trim());
        }
        Ok(body)
    }

    /// Where the whole transcript of session `id` is.
    pub fn transcript_url(&self, id: u64) -> String {
        format!("{}/api/v1/sessions/{id}/transcript", self.base)
    }
}

impl Record {
    /// `FROM <from>\nTO <to>\n\n<raw message>\n`, as the original server writes it.
    pub fn parse(body: &str) -> anyhow::Result<Record> {
        let (head, raw) = body
            .split_once("\n\n")
            .context("no blank line after the FROM/TO lines")?;
        let mut lines = head.lines();
        let from = lines
            .next()
            .and_then(|l| l.strip_prefix("FROM "))
            .context("no FROM line")?;
        let to = lines
            .next()
            .and_then(|l| l.strip_prefix("TO "))
            .context("no TO line")?;
        Ok(Record {
            from: from.to_owned(),
            to: to.to_owned(),
            // The record ends with the SMTP terminating dot line, then a newline (Go's format).
            raw: raw
                .strip_suffix('\n')
                .map(|r| r.strip_suffix(".\r\n").unwrap_or(r))
                .unwrap_or(raw)
                .to_owned(),
        })
    }

    /// The message parsed: headers decoded, body text decoded from its transfer encoding.
    pub fn message(&self) -> anyhow::Result<Mail> {
        let parsed = mail_parser::MessageParser::default()
            .parse(self.raw.as_bytes())
            .with_context(|| format!("the message to {} does not parse", self.to))?;
        Ok(Mail {
            message_id: parsed.message_id().map(str::to_owned),
            subject: parsed.subject().unwrap_or_default().to_owned(),
            date: parsed.date().map(|d| d.to_timestamp()),
            body: parsed
                .body_text(0)
                .map(|b| b.into_owned())
                .unwrap_or_default(),
        })
    }
}

/// What the scenarios check in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub subject: String,
    /// The Date header in Unix seconds.
    pub date: Option<i64>,
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_split_into_envelope_and_message() {
        let body = "FROM bot@example.com\nTO a@example.com\n\nSubject: hi\r\nMessage-ID: <x1@h>\r\n\r\nline=\r\n one\r\n.\r\n\n";
        let record = Record::parse(body).unwrap();
        assert_eq!(record.from, "bot@example.com");
        assert_eq!(record.to, "a@example.com");
        assert_eq!(
            record.raw,
            "Subject: hi\r\nMessage-ID: <x1@h>\r\n\r\nline=\r\n one\r\n"
        );
        let mail = record.message().unwrap();
        assert_eq!(mail.message_id.as_deref(), Some("x1@h"));
        assert_eq!(mail.subject, "hi");
    }

    #[test]
    fn a_garbled_record_is_an_error() {
        assert!(Record::parse("TO a@example.com\n\nx").is_err());
        assert!(Record::parse("FROM a\nTO b").is_err());
    }
}
