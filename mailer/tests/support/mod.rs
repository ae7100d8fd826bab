//! Shared helpers of the mailer's integration tests: an in-process mail-test-srv with a
//! fault plan, a mailer pointed at it, and a sleeper that keeps virtual time.
//!
//! Why a virtual sleeper rather than `tokio::time::pause()`: paused time auto-advances
//! while real socket I/O is pending, firing step timeouts that never happened. The
//! sleeper records every backoff sleep the mailer asks for, adds it to its own clock
//! (which the reconnect deadline reads), and can hold the mailer at a chosen point.

#![allow(dead_code)] // each test file uses a different part

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_test_srv::fault::FaultRule;
use mail_test_srv::store::{Filter, StoredMessage};
use mail_test_srv::{Config as ServerConfig, ServerHandle};
use mailer::{Config, FixedClock, Mailer, Sleeper};
use tokio::sync::watch;
use tokio::time::Instant;

/// 2006-01-02T15:04:05Z, the fixed "now" of every test mailer.
pub const NOW_SECS: u64 = 1_136_214_245;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

/// A server configuration on 127.0.0.1:0 with these `--fault` rules and a fixed seed.
pub fn server_config(faults: &[&str]) -> ServerConfig {
    ServerConfig {
        faults: faults
            .iter()
            .map(|f| f.parse::<FaultRule>().expect("valid fault rule"))
            .collect(),
        seed: Some(42),
        ..ServerConfig::ephemeral()
    }
}

pub async fn start_server(faults: &[&str]) -> ServerHandle {
    mail_test_srv::start(server_config(faults))
        .await
        .expect("server starts")
}

/// A mailer configuration for `server`: short backoff, generous bound.
pub fn mailer_config(server: &ServerHandle) -> Config {
    Config {
        server: "127.0.0.1".to_owned(),
        port: server.smtp_addr().port(),
        from: "Mailer Test <mailer@example.com>".to_owned(),
        hello_name: "client.test".to_owned(),
        reconnect_base: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(300),
        max_reconnects: 30,
        step_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

/// A mailer with a fixed clock and a virtual sleeper.
pub fn mailer(config: Config, sleeper: &Arc<VirtualSleeper>) -> Mailer {
    Mailer::with_sleeper(
        config,
        Arc::new(FixedClock(now())),
        Arc::clone(sleeper) as Arc<dyn Sleeper>,
    )
    .expect("valid mailer config")
}

/// Every stored message, oldest first.
pub fn stored(server: &ServerHandle) -> Vec<Arc<StoredMessage>> {
    server
        .state()
        .store()
        .messages(&Filter::default(), 0, usize::MAX)
}

/// Records backoff sleeps and keeps virtual time; optionally holds the caller once the
/// virtual total reaches a threshold, until [`VirtualSleeper::release`].
#[derive(Debug)]
pub struct VirtualSleeper {
    sleeps: Mutex<Vec<Duration>>,
    total: watch::Sender<Duration>,
    hold_at: Option<Duration>,
    released: watch::Sender<bool>,
}

impl VirtualSleeper {
    pub fn new() -> Arc<Self> {
        Self::holding_at(None)
    }

    /// A sleeper that, once `total` virtual time has passed, waits for `release()`.
    pub fn holding_at(hold_at: Option<Duration>) -> Arc<Self> {
        Arc::new(VirtualSleeper {
            sleeps: Mutex::new(Vec::new()),
            total: watch::Sender::new(Duration::ZERO),
            hold_at,
            released: watch::Sender::new(false),
        })
    }

    /// The sleeps asked for so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    pub fn total(&self) -> Duration {
        *self.total.borrow()
    }

    /// Waits until at least `at_least` virtual time has been slept.
    pub async fn wait_total(&self, at_least: Duration) {
        let mut rx = self.total.subscribe();
        rx.wait_for(|t| *t >= at_least).await.unwrap();
    }

    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

impl Sleeper for VirtualSleeper {
    fn sleep(
        &self,
        duration: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.sleeps.lock().unwrap().push(duration);
        let total = {
            let mut new_total = Duration::ZERO;
            self.total.send_modify(|t| {
                *t += duration;
                new_total = *t;
            });
            new_total
        };
        Box::pin(async move {
            if self.hold_at.is_some_and(|h| total >= h) {
                let mut rx = self.released.subscribe();
                rx.wait_for(|r| *r).await.unwrap();
            }
            tokio::task::yield_now().await;
        })
    }

    fn now(&self) -> Instant {
        Instant::now() + self.total()
    }
}

/// The Message-IDs of the stored messages (without angle brackets).
pub fn message_ids(server: &ServerHandle) -> Vec<String> {
    stored(server)
        .iter()
        .map(|m| {
            m.message_id
                .clone()
                .expect("every message has a Message-ID")
        })
        .collect()
}

/// `<id@x>` → `id@x`, as the store keeps it.
pub fn bare(message_id: &str) -> String {
    message_id
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

pub fn to(addrs: &[&str]) -> Vec<String> {
    addrs.iter().map(|s| (*s).to_owned()).collect()
}
