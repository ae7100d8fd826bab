//! Sending the reminders of a run over `--parallel-sends` connections, recording each one
//! right after the server accepted it (its own transaction), so that a crash between
//! sending and recording repeats at most that one reminder and never skips one.
//!
//! Each reminder is claimed in the store before it is sent (see `mailer_programs::db` claims), so a
//! second run working at the same time skips it instead of sending it again.
//!
//! Each reminder is the library's plain-text lettre `Message` (`mailer::text_message`, dated
//! by the run's clock, so `FAKECLOCK` holds), sent through a `ReconnectingTransport` whose
//! pool has one session per worker.
//!
//! What a refusal means for the books: a permanent bad address (5xx, or an address refused
//! before sending) is recorded and never retried; a temporary one (4xx, 450 "mailbox busy"
//! included, although the mailer types it as a bad address) and any other failure leave
//! the reminder to the next run, and count as failures (exit 1).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mailer::lettre::AsyncTransport;
use mailer::lettre::message::Mailbox;
use mailer::{Clock, Mailer, ReconnectingTransport};
use mailer_programs::cli::{Fatal, day_of, unix_seconds};
use mailer_programs::db::Store;
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
    /// Claimed by another run working at the same time: that run sends them.
    pub claimed_elsewhere: u64,
}

/// This run's claims: who we are in the store, and how long a claim lasts unless recorded
/// or given back (what a killed run leaves behind). It should outlast one send, reconnects
/// included; `--claim-lease`.
#[derive(Debug, Clone)]
pub struct Claims {
    pub owner: String,
    pub lease: Duration,
}

impl Claims {
    /// A fresh identity for this process's claims: its pid and 64 random bits.
    pub fn new(lease: Duration) -> Claims {
        Claims {
            owner: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
            lease,
        }
    }
}

/// Everything the workers share.
pub struct Sender {
    pub store: Store,
    pub mailer: Arc<Mailer>,
    pub clock: Arc<dyn Clock>,
    pub templates: Arc<Templates>,
    pub limiter: Limiter,
    /// `None` in a dry run, which leaves the store as it is.
    pub claims: Option<Claims>,
    pub dry_run: bool,
    pub cancel: CancellationToken,
}

struct Shared {
    sender: Sender,
    transport: ReconnectingTransport,
    from: Mailbox,
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
    let from = mailer::parse_from(&sender.mailer.config().from).map_err(Fatal::usage)?;
    let shared = Arc::new(Shared {
        transport: sender.mailer.transport(workers),
        from,
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
    // QUIT is a courtesy; the reminders are recorded already.
    shared.transport.close().await;
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
    let mut connected = false;
    loop {
        if s.cancel.is_cancelled() {
            break None;
        }
        let Some(reminder) = lock(&shared.queue).pop_front() else {
            break None;
        };
        match claim(s, &reminder).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(
                    registration = reminder.registration_id,
                    "claimed by another run, which sends it"
                );
                lock(&shared.tally).claimed_elsewhere += 1;
                continue;
            }
            Err(e) => break Some(Stop::Store(e)),
        }
        let to = match s.limiter.reserve(&s.store, &reminder.addresses).await {
            Ok(to) => to,
            Err(e) => break Some(Stop::Store(e.into())),
        };
        if to.is_empty() {
            if let Err(e) = release(s, &reminder.serials).await {
                break Some(Stop::Store(e));
            }
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
                if let Err(e) = release(s, &reminder.serials).await {
                    break Some(Stop::Store(e));
                }
                lock(&shared.tally).failures += 1;
                continue;
            }
        };
        // A session for this worker before its first reminder (in the pool, where its sends
        // find it): a server that cannot be reached stops the worker here, within the
        // reconnect bound, rather than failing each reminder in turn.
        if !connected {
            match shared.transport.test_connection().await {
                Ok(_) => connected = true,
                Err(e) => {
                    s.limiter.release(&to);
                    if let Err(e) = release(s, &reminder.serials).await {
                        break Some(Stop::Store(e));
                    }
                    lock(&shared.queue).push_front(reminder);
                    break Some(Stop::Unreachable(e));
                }
            }
        }
        let result = match mailer::text_message(&shared.from, &to, &subject, &body, s.clock.now()) {
            Ok(mail) => shared.transport.send(mail).await,
            Err(e) => Err(e),
        };
        drop(body);
        match result {
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
            Err(e) if e.is_permanent_bad_address() => {
                tracing::warn!(registration = reminder.registration_id, "not retried: {e}");
                s.limiter.release(&to);
                if let Err(e) = record(s, &reminder.serials, &[]).await {
                    break Some(Stop::Store(e));
                }
                lock(&shared.tally).bad_addresses += 1;
            }
            Err(e) => {
                let why = if e.is_temporary() {
                    "temporary refusal, left for the next run"
                } else {
                    "left for the next run"
                };
                tracing::warn!(registration = reminder.registration_id, "{why}: {e}");
                s.limiter.release(&to);
                if let Err(e) = release(s, &reminder.serials).await {
                    break Some(Stop::Store(e));
                }
                // The session stays (or is replaced): the next send reconnects by itself.
                lock(&shared.tally).failures += 1;
            }
        }
    }
}

/// Claims the reminder for this run; true when it is ours to send (always in a dry run).
async fn claim(s: &Sender, reminder: &Reminder) -> Result<bool, Fatal> {
    let Some(claims) = &s.claims else {
        return Ok(true);
    };
    let now = unix_seconds(SystemTime::now());
    let lease = i64::try_from(claims.lease.as_secs()).unwrap_or(i64::MAX / 4);
    s.store
        .claim_reminder(
            &reminder.serials,
            &claims.owner,
            now,
            now.saturating_add(lease.max(1)),
            reminder.nag_seconds,
        )
        .await
        .map_err(Fatal::from)
}

/// Gives the claim back: the reminder was not sent and the next run may try.
async fn release(s: &Sender, serials: &[String]) -> Result<(), Fatal> {
    let Some(claims) = &s.claims else {
        return Ok(());
    };
    s.store
        .release_claim(serials, &claims.owner)
        .await
        .map_err(Fatal::from)
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
