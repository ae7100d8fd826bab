//! The load itself: N tasks, each with its own [`mailer::Connection`] from one shared
//! [`mailer::Mailer`], sending its share of the messages one after another and timing each
//! `send_mail` (reconnects and resends included, as a caller would feel them). With
//! `--transport`, the tasks send the same messages as lettre `Message`s through one
//! [`mailer::ReconnectingTransport`] with a pool of N sessions.

use std::time::{Duration, Instant};

use mailer::lettre::AsyncTransport;
use mailer::lettre::message::Mailbox;
use mailer::{Connection, CountersSnapshot, Mailer, ReconnectingTransport};
use tokio::task::JoinSet;

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    pub connections: u16,
    pub messages: u64,
    /// Body bytes per message.
    pub size: u64,
    /// The one recipient of every message.
    pub to: String,
    /// Through a pooled `ReconnectingTransport` rather than a `Connection` per task.
    pub transport: bool,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Message-IDs of the messages the server accepted.
    pub accepted: Vec<String>,
    /// One per accepted message.
    pub latencies: Vec<Duration>,
    /// Messages given up on, with the first few errors as text.
    pub failed: u64,
    pub errors: Vec<String>,
    /// Connections that could not be opened at all.
    pub connect_failures: u64,
    /// From the first connect to the last reply, all connections together.
    pub elapsed: Duration,
    pub counters: CountersSnapshot,
    /// Per connection: messages accepted and the time it took, for `--verbose`.
    pub per_connection: Vec<(u64, Duration)>,
}

/// Errors kept as text for the report; the rest are only counted.
const KEPT_ERRORS: usize = 5;

/// A body of `size` bytes in numbered 72-character lines of plain ASCII, so quoted-printable
/// encoding leaves it unchanged and its size on the wire is `size` plus line-end growth
/// (`\n` becomes `\r\n`).
pub fn body(size: u64) -> String {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let mut out = String::with_capacity(size);
    let mut line = 1u64;
    while out.len() < size {
        let left = size - out.len();
        let mut text = format!("{line:06} ");
        while text.len() < 71 {
            text.push_str("abcdefghij");
        }
        text.truncate(71.min(left.saturating_sub(1)));
        out.push_str(&text);
        out.push('\n');
        line += 1;
    }
    out.truncate(size);
    out
}

/// Runs the load to the end: every task sends its share, then QUITs.
pub async fn run(mailer: &Mailer, load: &Load) -> Outcome {
    let body = body(load.size);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let connections = u64::from(load.connections);
    let pooled = load
        .transport
        .then(|| mailer.transport(usize::from(load.connections)));
    for task in 0..connections {
        // An even split; the first `messages % connections` tasks take one more.
        let share = load.messages / connections + u64::from(task < load.messages % connections);
        let mailer = mailer.clone();
        let to = vec![load.to.clone()];
        let body = body.clone();
        let pooled = pooled.clone();
        tasks.spawn(async move { one_connection(mailer, pooled, task, share, to, body).await });
    }
    let mut outcome = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        let part = match joined {
            Ok(part) => part,
            Err(e) => {
                outcome.errors.push(format!("a load task failed: {e}"));
                continue;
            }
        };
        outcome
            .per_connection
            .push((part.accepted.len() as u64, part.elapsed));
        outcome.accepted.extend(part.accepted);
        outcome.latencies.extend(part.latencies);
        outcome.failed += part.failed;
        outcome.connect_failures += u64::from(part.connect_failed);
        for e in part.errors {
            if outcome.errors.len() < KEPT_ERRORS {
                outcome.errors.push(e);
            }
        }
    }
    if let Some(transport) = &pooled {
        // The run's wall time includes the QUITs, as with a connection per task.
        transport.close().await;
    }
    outcome.elapsed = started.elapsed();
    outcome.counters = mailer.counters();
    outcome
}

#[derive(Debug, Default)]
struct Part {
    accepted: Vec<String>,
    latencies: Vec<Duration>,
    failed: u64,
    connect_failed: bool,
    errors: Vec<String>,
    elapsed: Duration,
}

/// How one task sends: its own session, or the shared pool.
enum Sender {
    /// Boxed: a session is large next to a handle on the shared pool.
    Connection(Box<Connection>),
    Transport(ReconnectingTransport, Mailbox, Mailer),
}

impl Sender {
    async fn send(
        &mut self,
        to: &[String],
        subject: &str,
        body: &str,
    ) -> Result<mailer::Sent, mailer::Error> {
        match self {
            Sender::Connection(connection) => connection.send_mail(to, subject, body).await,
            Sender::Transport(transport, from, mailer) => {
                let message = mailer::text_message(from, to, subject, body, mailer.clock().now())?;
                transport.send(message).await
            }
        }
    }
}

async fn one_connection(
    mailer: Mailer,
    pooled: Option<ReconnectingTransport>,
    task: u64,
    share: u64,
    to: Vec<String>,
    body: String,
) -> Part {
    let started = Instant::now();
    let mut part = Part {
        accepted: Vec::with_capacity(usize::try_from(share).unwrap_or(0)),
        latencies: Vec::with_capacity(usize::try_from(share).unwrap_or(0)),
        ..Part::default()
    };
    let opened = match pooled {
        Some(transport) => match mailer::parse_from(&mailer.config().from) {
            Ok(from) => transport
                .test_connection()
                .await
                .map(|_| Sender::Transport(transport, from, mailer)),
            Err(e) => Err(e),
        },
        None => mailer
            .connect()
            .await
            .map(|connection| Sender::Connection(Box::new(connection))),
    };
    let mut connection = match opened {
        Ok(connection) => connection,
        Err(e) => {
            part.connect_failed = true;
            part.failed = share;
            part.errors
                .push(format!("connection {task}: cannot connect: {e}"));
            return part;
        }
    };
    for i in 0..share {
        let subject = format!("bench {task}.{i}");
        let sent_at = Instant::now();
        match connection.send(&to, &subject, &body).await {
            Ok(sent) => {
                part.latencies.push(sent_at.elapsed());
                part.accepted.push(sent.message_id);
            }
            Err(e) => {
                part.failed += 1;
                if part.errors.len() < KEPT_ERRORS {
                    part.errors
                        .push(format!("connection {task}, message {i}: {e}"));
                }
            }
        }
    }
    part.elapsed = started.elapsed();
    // The run's wall time includes this QUIT, as smtp-source's does (the pool's QUITs
    // come when every task is done).
    if let Sender::Connection(connection) = connection
        && let Err(e) = connection.close().await
    {
        part.errors.push(format!("connection {task}: QUIT: {e}"));
    }
    part
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_asked_size_in_short_ascii_lines() {
        for size in [0, 1, 2, 71, 72, 73, 1024, 102_400] {
            let b = body(size);
            assert_eq!(b.len() as u64, size, "size {size}");
            assert!(b.is_ascii());
            assert!(b.lines().all(|l| l.len() <= 71), "size {size}");
        }
        assert!(body(1024).starts_with("000001 abcdefghij"));
    }
}
