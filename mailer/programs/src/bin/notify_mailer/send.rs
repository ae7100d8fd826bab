//! Sending one message per recipient over `--parallel-sends` connections, pausing `--sleep`
//! after each, with a progress bar when stderr is a terminal.
//!
//! Each message is the library's plain-text lettre `Message` (`mailer::text_message`, dated
//! by the mailer's clock, so `FAKECLOCK` holds), sent through a `ReconnectingTransport`
//! whose pool has one session per worker.
//!
//! Each worker renders its next message right before sending it and drops it right after,
//! so memory is bounded by the number of connections, not by the length of the list (a
//! 50 MB body to 20 recipients, rendered up front, held 1.1 GiB).

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use mailer::lettre::AsyncTransport;
use mailer::lettre::message::Mailbox;
use mailer::{Clock, Mailer, ReconnectingTransport};
use mailer_programs::cli::Fatal;
use tokio_util::sync::CancellationToken;

use crate::recipients::Recipient;

/// Turns a recipient into its message (the templates, in the program).
pub type Render = Arc<dyn Fn(&Recipient) -> anyhow::Result<Message> + Send + Sync>;

/// One rendered message.
#[derive(Debug, Clone)]
pub struct Message {
    pub address: String,
    pub subject: String,
    pub body: String,
}

/// What happened to the list.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: u64,
    /// Address and why it failed, in the order of failure.
    pub failed: Vec<(String, String)>,
    /// Not attempted: the run was interrupted.
    pub skipped: u64,
}

struct Shared {
    transport: ReconnectingTransport,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    queue: Mutex<VecDeque<Recipient>>,
    render: Render,
    outcome: Mutex<Outcome>,
    progress: ProgressBar,
    pause: Duration,
    dry_run: bool,
    cancel: CancellationToken,
}

/// Sends every message. Fails (exit 1) only when no connection to the server could be made
/// for the messages left; single failures are listed in the outcome.
pub async fn send_all(
    mailer: Arc<Mailer>,
    recipients: Vec<Recipient>,
    render: Render,
    parallel: u32,
    pause: Duration,
    dry_run: bool,
    cancel: CancellationToken,
) -> Result<Outcome, Fatal> {
    let total = recipients.len();
    let progress = if std::io::stderr().is_terminal() && total > 0 {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} (eta {eta})") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let workers = (parallel as usize).clamp(1, total.max(1));
    let from = mailer::parse_from(&mailer.config().from).map_err(Fatal::usage)?;
    let shared = Arc::new(Shared {
        transport: mailer.transport(workers),
        from,
        clock: mailer.clock(),
        queue: Mutex::new(recipients.into()),
        render,
        outcome: Mutex::new(Outcome::default()),
        progress,
        pause,
        dry_run,
        cancel,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(Arc::clone(&shared)));
    }
    let mut unreachable = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Some(e)) => unreachable = Some(e),
            Ok(None) => {}
            Err(e) => unreachable = Some(format!("a send worker failed: {e}")),
        }
    }
    shared.progress.finish_and_clear();
    // QUIT is a courtesy; every outcome is counted already.
    shared.transport.close().await;
    let left: Vec<Recipient> = lock(&shared.queue).drain(..).collect();
    let mut outcome = std::mem::take(&mut *lock(&shared.outcome));
    if left.is_empty() {
        return Ok(outcome);
    }
    match unreachable {
        Some(e) => {
            for recipient in left {
                outcome
                    .failed
                    .push((recipient.address, format!("not sent: {e}")));
            }
            if outcome.sent == 0 {
                return Err(Fatal::failure(anyhow::anyhow!(
                    "cannot connect to the SMTP server: {e}"
                )));
            }
            Ok(outcome)
        }
        None => {
            outcome.skipped = left.len() as u64;
            Ok(outcome)
        }
    }
}

/// Returns the connect error when it stopped because the server could not be reached.
async fn worker(shared: Arc<Shared>) -> Option<String> {
    let mut connected = false;
    loop {
        if shared.cancel.is_cancelled() {
            break None;
        }
        let Some(recipient) = lock(&shared.queue).pop_front() else {
            break None;
        };
        // A session for this worker before its first message (in the pool, where its
        // sends find it): a server that cannot be reached stops the worker here, within
        // the reconnect bound, rather than failing each message in turn.
        if !connected {
            match shared.transport.test_connection().await {
                Ok(_) => connected = true,
                Err(e) => {
                    lock(&shared.queue).push_front(recipient);
                    break Some(e.to_string());
                }
            }
        }
        let message = match (shared.render)(&recipient) {
            Ok(message) => message,
            Err(e) => {
                // Checked for every recipient before the run; kept as a failure, not a
                // panic, should a template ever depend on more than its row.
                tracing::warn!(address = %recipient.address, "not rendered: {e:#}");
                lock(&shared.outcome)
                    .failed
                    .push((recipient.address, format!("{e:#}")));
                shared.progress.inc(1);
                continue;
            }
        };
        drop(recipient);
        let to = [message.address.clone()];
        let result = match mailer::text_message(
            &shared.from,
            &to,
            &message.subject,
            &message.body,
            shared.clock.now(),
        ) {
            Ok(mail) => shared.transport.send(mail).await,
            Err(e) => Err(e),
        };
        // The body can be big: gone before the pause and the next render.
        let Message {
            address,
            subject,
            body,
        } = message;
        drop(body);
        match result {
            Ok(_) => {
                if shared.dry_run {
                    shared.progress.suspend(|| {
                        println!("dry run: would send {subject:?} to {address}");
                    });
                }
                lock(&shared.outcome).sent += 1;
            }
            Err(e) => {
                tracing::warn!(%address, "not sent: {e}");
                // The session stays (or is replaced): the next send reconnects by itself.
                lock(&shared.outcome).failed.push((address, e.to_string()));
            }
        }
        shared.progress.inc(1);
        if !shared.pause.is_zero() {
            tokio::select! {
                () = shared.cancel.cancelled() => {}
                () = tokio::time::sleep(shared.pause) => {}
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning means a worker panicked mid-update; the data (counters, a queue) stays usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dry_mailer() -> Arc<Mailer> {
        let config = mailer::Config {
            from: "sender@example.com".into(),
            dry_run: true,
            ..mailer::Config::default()
        };
        Arc::new(Mailer::new(config, Arc::new(mailer::SystemClock)).expect("dry-run mailer"))
    }

    fn recipients(n: usize) -> Vec<Recipient> {
        (0..n)
            .map(|i| Recipient {
                address: format!("r{i}@example.com"),
                rows: Vec::new(),
            })
            .collect()
    }

    fn plain() -> Render {
        Arc::new(|r: &Recipient| {
            Ok(Message {
                address: r.address.clone(),
                subject: "s".into(),
                body: "b".into(),
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_pauses_after_each_message_per_connection() {
        let start = tokio::time::Instant::now();
        let pause = Duration::from_secs(10);
        let outcome = send_all(
            dry_mailer(),
            recipients(3),
            plain(),
            1,
            pause,
            true,
            CancellationToken::new(),
        )
        .await
        .expect("sent");
        assert_eq!(outcome.sent, 3);
        assert_eq!(start.elapsed(), Duration::from_secs(30));

        // Three connections share the list: one pause each.
        let start = tokio::time::Instant::now();
        let outcome = send_all(
            dry_mailer(),
            recipients(3),
            plain(),
            3,
            pause,
            true,
            CancellationToken::new(),
        )
        .await
        .expect("sent");
        assert_eq!(outcome.sent, 3);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_stops_before_the_next_message() {
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(15)).await;
            stop.cancel();
        });
        let outcome = send_all(
            dry_mailer(),
            recipients(5),
            plain(),
            1,
            Duration::from_secs(10),
            true,
            cancel,
        )
        .await
        .expect("sent");
        // Sent at 0s and 10s; cancelled during the second pause.
        assert_eq!(outcome.sent, 2);
        assert_eq!(outcome.skipped, 3);
        assert!(outcome.failed.is_empty());
    }

    /// Messages are rendered as they are sent: at any time at most one rendered message per
    /// connection is waiting, however long the list (all of them, before).
    #[tokio::test]
    async fn rendering_keeps_pace_with_sending() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mailer = dry_mailer();
        let rendered = Arc::new(AtomicU64::new(0));
        let most_ahead = Arc::new(AtomicU64::new(0));
        let render: Render = {
            let (mailer, rendered, most_ahead) = (
                Arc::clone(&mailer),
                Arc::clone(&rendered),
                Arc::clone(&most_ahead),
            );
            Arc::new(move |r: &Recipient| {
                let ahead = rendered.fetch_add(1, Ordering::SeqCst) + 1 - mailer.counters().dry_run;
                most_ahead.fetch_max(ahead, Ordering::SeqCst);
                Ok(Message {
                    address: r.address.clone(),
                    subject: "s".into(),
                    body: "b".into(),
                })
            })
        };
        let outcome = send_all(
            mailer,
            recipients(50),
            render,
            3,
            Duration::ZERO,
            true,
            CancellationToken::new(),
        )
        .await
        .expect("sent");
        assert_eq!(outcome.sent, 50);
        assert_eq!(rendered.load(Ordering::SeqCst), 50);
        let ahead = most_ahead.load(Ordering::SeqCst);
        assert!(
            (1..=3).contains(&ahead),
            "{ahead} messages rendered ahead of sending"
        );
    }

    #[tokio::test]
    async fn a_message_that_cannot_be_rendered_is_a_failure_and_the_rest_go() {
        let render: Render = Arc::new(|r: &Recipient| {
            if r.address.starts_with("r1@") {
                anyhow::bail!("template body.txt, line 1: boom")
            }
            Ok(Message {
                address: r.address.clone(),
                subject: "s".into(),
                body: "b".into(),
            })
        });
        let outcome = send_all(
            dry_mailer(),
            recipients(3),
            render,
            1,
            Duration::ZERO,
            true,
            CancellationToken::new(),
        )
        .await
        .expect("sent");
        assert_eq!(outcome.sent, 2);
        assert_eq!(outcome.failed.len(), 1);
        assert!(outcome.failed[0].1.contains("boom"), "{:?}", outcome.failed);
    }
}
