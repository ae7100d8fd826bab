//! Sending the reminders of a run over `--parallel-sends` connections, recording each one
//! right after the server accepted it (its own transaction), so that a crash between
//! sending and recording repeats at most that one reminder and never skips one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use mailer::cli::{Fatal, day_of, unix_seconds};
use mailer::db::Store;
use mailer::{Clock, Mailer};
use tokio_util::sync::CancellationToken;

use crate::limit::Limiter;
use crate::nag::Reminder;
use crate::templates::Templates;

/// What the sending part of a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub sent: u64,
    pub bad_addresses: u64,
    pub failures: u64,
    /// Left for a later run by the per-address daily limit.
    pub deferred: u64,
}

/// Everything the workers share.
pub struct Sender {
    pub store: Store,
    pub mailer: Arc<Mailer>,
    pub clock: Arc<dyn Clock>,
    pub templates: Arc<Templates>,
    pub limiter: Limiter,
    pub dry_run: bool,
    pub cancel: CancellationToken,
}

struct Shared {
    sender: Sender,
    queue: Mutex<VecDeque<Reminder>>,
    tally: Mutex<Tally>,
}

/// How a worker ended when it did not simply run out of work.
enum Stop {
    /// The server could not be reached; the reminder it held went back to the queue.
    Unreachable(mailer::Error),
    /// The store failed: the run cannot record what it sends, so it stops.
    Store(Fatal),
}

/// Sends every reminder; returns when the queue is empty, the run is cancelled, or no
/// worker can reach the server (then the error, exit 1).
pub async fn send_all(
    sender: Sender,
    reminders: Vec<Reminder>,
    parallel: u32,
) -> Result<Tally, Fatal> {
    if reminders.is_empty() {
        return Ok(Tally::default());
    }
    let workers = (parallel as usize).clamp(1, reminders.len());
    let shared = Arc::new(Shared {
        sender,
        queue: Mutex::new(reminders.into()),
        tally: Mutex::new(Tally::default()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(worker(Arc::clone(&shared)));
    }
    let mut unreachable = None;
    let mut store_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(None) => {}
            Ok(Some(Stop::Unreachable(e))) => unreachable = Some(e),
            Ok(Some(Stop::Store(e))) => {
                shared.sender.cancel.cancel();
                store_error = Some(e);
            }
            Err(e) => {
                store_error = Some(Fatal::failure(anyhow::anyhow!("a send worker failed: {e}")))
            }
        }
    }
    if let Some(e) = store_error {
        return Err(e);
    }
    let left = lock(&shared.queue).len() as u64;
    let mut tally = *lock(&shared.tally);
    if left > 0
        && let Some(e) = unreachable
    {
        tally.failures += left;
        return Err(Fatal::failure(anyhow::anyhow!(
            "cannot connect to the SMTP server ({left} reminder(s) not sent; {} sent before): {e}",
            tally.sent
        )));
    }
    Ok(tally)
}

async fn worker(shared: Arc<Shared>) -> Option<Stop> {
    let s = &shared.sender;
    let mut connection = None;
    let stop = loop {
        if s.cancel.is_cancelled() {
            break None;
        }
        let Some(reminder) = lock(&shared.queue).pop_front() else {
            break None;
        };
        let to = match s.limiter.reserve(&s.store, &reminder.addresses).await {
            Ok(to) => to,
            Err(e) => break Some(Stop::Store(e.into())),
        };
        if to.is_empty() {
            lock(&shared.tally).deferred += 1;
            continue;
        }
        let (subject, body) = match s.templates.render(&reminder.data) {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::error!(
                    registration = reminder.registration_id,
                    "cannot render the reminder: {e:#}"
                );
                s.limiter.release(&to);
                lock(&shared.tally).failures += 1;
                continue;
            }
        };
        if connection.is_none() {
            match s.mailer.connect().await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    s.limiter.release(&to);
                    lock(&shared.queue).push_front(reminder);
                    break Some(Stop::Unreachable(e));
                }
            }
        }
        let Some(conn) = connection.as_mut() else {
            continue;
        };
        match conn.send_mail(&to, &subject, &body).await {
            Ok(_) => {
                if s.dry_run {
                    println!(
                        "dry run: would remind {} (registration {}): {subject}",
                        to.join(", "),
                        reminder.registration_id
                    );
                }
                let counted: Vec<String> = to.iter().map(|a| a.to_ascii_lowercase()).collect();
                if let Err(e) = record(s, &reminder.serials, &counted).await {
                    break Some(Stop::Store(e));
                }
                lock(&shared.tally).sent += 1;
            }
            Err(e) if e.is_bad_address() => {
                tracing::warn!(registration = reminder.registration_id, "not retried: {e}");
                s.limiter.release(&to);
                if let Err(e) = record(s, &reminder.serials, &[]).await {
                    break Some(Stop::Store(e));
                }
                lock(&shared.tally).bad_addresses += 1;
            }
            Err(e) => {
                tracing::warn!(
                    registration = reminder.registration_id,
                    "left for the next run: {e}"
                );
                s.limiter.release(&to);
                // The connection stays: the mailer reconnects on the next send by itself.
                lock(&shared.tally).failures += 1;
            }
        }
    };
    if let Some(conn) = connection {
        // QUIT is a courtesy; the reminders are recorded already.
        let _ = conn.close().await;
    }
    stop
}

/// Marks the reminder as done (not in a dry run, which leaves the store as it was).
async fn record(s: &Sender, serials: &[String], counted: &[String]) -> Result<(), Fatal> {
    if s.dry_run {
        return Ok(());
    }
    let now = s.clock.now();
    s.store
        .record_reminder(serials, unix_seconds(now), counted, day_of(now))
        .await
        .map_err(Fatal::from)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Poisoning means a worker panicked mid-update; the data (counters, a queue) stays usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
