//! Sending the rendered messages over `--parallel-sends` connections, pausing `--sleep`
//! after each, with a progress bar when stderr is a terminal.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use mailer::Mailer;
use mailer::cli::Fatal;
use tokio_util::sync::CancellationToken;

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
    mailer: Arc<Mailer>,
    queue: Mutex<VecDeque<Message>>,
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
    messages: Vec<Message>,
    parallel: u32,
    pause: Duration,
    dry_run: bool,
    cancel: CancellationToken,
) -> Result<Outcome, Fatal> {
    let total = messages.len();
    let progress = if std::io::stderr().is_terminal() && total > 0 {
        let bar = ProgressBar::new(total as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} (eta {eta})") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let shared = Arc::new(Shared {
        mailer,
        queue: Mutex::new(messages.into()),
        outcome: Mutex::new(Outcome::default()),
        progress,
        pause,
        dry_run,
        cancel,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..(parallel as usize).clamp(1, total.max(1)) {
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
    let left: Vec<Message> = lock(&shared.queue).drain(..).collect();
    let mut outcome = std::mem::take(&mut *lock(&shared.outcome));
    if left.is_empty() {
        return Ok(outcome);
    }
    match unreachable {
        Some(e) => {
            for message in left {
                outcome
                    .failed
                    .push((message.address, format!("not sent: {e}")));
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
    let mut connection = None;
    let stop = loop {
        if shared.cancel.is_cancelled() {
            break None;
        }
        let Some(message) = lock(&shared.queue).pop_front() else {
            break None;
        };
        if connection.is_none() {
            match shared.mailer.connect().await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    lock(&shared.queue).push_front(message);
                    break Some(e.to_string());
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        let to = [message.address.clone()];
        match conn.send_mail(&to, &message.subject, &message.body).await {
            Ok(_) => {
                if shared.dry_run {
                    shared.progress.suspend(|| {
                        println!(
                            "dry run: would send {:?} to {}",
                            message.subject, message.address
                        );
                    });
                }
                lock(&shared.outcome).sent += 1;
            }
            Err(e) => {
                tracing::warn!(address = %message.address, "not sent: {e}");
                // The connection stays: the mailer reconnects on the next send by itself.
                lock(&shared.outcome)
                    .failed
                    .push((message.address, e.to_string()));
            }
        }
        shared.progress.inc(1);
        if !shared.pause.is_zero() {
            tokio::select! {
                () = shared.cancel.cancelled() => {}
                () = tokio::time::sleep(shared.pause) => {}
            }
        }
    };
    if let Some(conn) = connection {
        // QUIT is a courtesy; every outcome is counted already.
        let _ = conn.close().await;
    }
    stop
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

    fn messages(n: usize) -> Vec<Message> {
        (0..n)
            .map(|i| Message {
                address: format!("r{i}@example.com"),
                subject: "s".into(),
                body: "b".into(),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_pauses_after_each_message_per_connection() {
        let start = tokio::time::Instant::now();
        let pause = Duration::from_secs(10);
        let outcome = send_all(
            dry_mailer(),
            messages(3),
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
            messages(3),
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
            messages(5),
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
}
