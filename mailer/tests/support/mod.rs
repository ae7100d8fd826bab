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

/// A minimal scripted SMTP server on 127.0.0.1 for what mail-test-srv does not do (it
/// always offers PIPELINING): it records every command line, refuses RCPT for the
/// `refuse` addresses with 550, and accepts everything else, one connection at a time.
pub struct Scripted {
    pub addr: std::net::SocketAddr,
    pub commands: Arc<Mutex<Vec<String>>>,
}

pub async fn scripted_server(pipelining: bool, refuse: &'static [&'static str]) -> Scripted {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let commands = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&commands);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 scripted ready\r\n").await.unwrap();
            let mut valid_recipients = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line.clone());
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: String = match verb.as_str() {
                    "EHLO" if pipelining => "250-scripted\r\n250 PIPELINING\r\n".into(),
                    "EHLO" => "250-scripted\r\n250 8BITMIME\r\n".into(),
                    "RCPT" if refuse.iter().any(|r| line.contains(&format!("<{r}>"))) => {
                        "550 5.1.1 no such user\r\n".into()
                    }
                    "RCPT" => {
                        valid_recipients += 1;
                        "250 2.1.5 OK\r\n".into()
                    }
                    "DATA" if valid_recipients == 0 => "554 5.5.1 no valid recipients\r\n".into(),
                    "DATA" => {
                        write.write_all(b"354 go ahead\r\n").await.unwrap();
                        while let Ok(Some(data)) = lines.next_line().await {
                            if data == "." {
                                break;
                            }
                        }
                        valid_recipients = 0;
                        "250 2.0.0 queued\r\n".into()
                    }
                    "RSET" | "MAIL" => {
                        valid_recipients = 0;
                        "250 2.0.0 OK\r\n".into()
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    }
                    _ => "250 OK\r\n".into(),
                };
                if write.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    });
    Scripted { addr, commands }
}

impl Scripted {
    /// The verbs received so far (first word, upper case).
    pub fn verbs(&self) -> Vec<String> {
        self.commands
            .lock()
            .unwrap()
            .iter()
            .map(|l| {
                l.split([' ', ':'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase()
            })
            .collect()
    }

    pub fn config(&self) -> Config {
        Config {
            server: "127.0.0.1".to_owned(),
            port: self.addr.port(),
            from: "mailer@example.com".to_owned(),
            step_timeout: Duration::from_secs(10),
            ..Config::default()
        }
    }
}
