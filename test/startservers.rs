//! The service table and its lifecycle: start in dependency order, wait for each to be ready,
//! notice early exits, stop in reverse order.
//!
//! A [`Service`] is plain data: name, program, arguments, environment, the services it needs
//! first, and how to tell it is ready (normally a `READY key=value ...` line on stdout, so every
//! port can be 0 and the real addresses come from that line). [`Services::start`] spawns the
//! table and returns one value that owns every child. Each child gets its own process group, so
//! stopping it also stops whatever it spawned; stopping is SIGTERM to the group, then SIGKILL after
//! a grace period. [`Services::stop`] does that in reverse start order; dropping a [`Services`]
//! does the same synchronously, so an error path or a panic leaves no process behind.
//!
//! Each child's stdout and stderr are read to the end by two tasks that keep the last
//! [`TAIL_LINES`] lines: a service that exits early or never gets ready is reported with them.
//! Nothing is global: two `Services` values in one process share nothing.

use std::fmt;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "startservers/output.rs"]
mod output;
pub use output::{ReadyLine, TAIL_LINES, Tail};
use output::{SharedTail, pump, snapshot};
#[path = "startservers/table.rs"]
mod table;
pub use table::{Readiness, Service, start_order};

/// How long output is still drained after a child exited, so its last words make it into the tail.
const DRAIN: Duration = Duration::from_secs(2);

/// Why the table could not be started. Services already started were stopped before this returns.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("service table: {0}")]
    Table(String),
    #[error("service {name}: cannot start {program}: {source}")]
    Spawn {
        name: String,
        program: String,
        source: io::Error,
    },
    #[error("service {name} exited ({status}) before it was ready; its last output:\n{tail}")]
    ExitedEarly {
        name: String,
        status: String,
        tail: Tail,
    },
    #[error("service {name} was not ready within {deadline:?}; its last output:\n{tail}")]
    NotReady {
        name: String,
        deadline: Duration,
        tail: Tail,
    },
}

/// A started service that exited while it was still needed.
#[derive(Debug, thiserror::Error)]
#[error("service {name} exited ({status}) while it was still needed; its last output:\n{tail}")]
pub struct ServiceDied {
    pub name: String,
    pub status: String,
    pub tail: Tail,
}

/// How one service ended when it was stopped.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub name: String,
    pub pid: u32,
    /// `None` when its status could not be collected.
    pub status: Option<ExitStatus>,
    /// It did not exit within its grace period and was killed.
    pub killed: bool,
}

/// One running child and the tasks reading its output.
struct Running {
    name: String,
    pid: u32,
    grace: Duration,
    child: Child,
    ready: ReadyLine,
    tail: SharedTail,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    fn tail(&self) -> Tail {
        snapshot(&self.tail)
    }

    /// Waits (bounded) until both pipes reached EOF, so the tail holds the last lines.
    async fn drain(&mut self) {
        for reader in &mut self.readers {
            // A finished handle must not be polled again (tokio panics); `is_finished` covers both cases.
            if !reader.is_finished() {
                let _ = tokio::time::timeout(DRAIN, &mut *reader).await;
            }
        }
    }

    fn signal_group(&self, signal: Signal) {
        // The child leads its own group (process_group(0)); signalling the group reaches its children too.
        // ESRCH (already gone) is the expected outcome late in a stop and needs no report.
        if let Some(pid) = Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    fn group_alive(&self) -> bool {
        Pid::from_raw(self.pid as i32)
            .is_some_and(|pid| rustix::process::test_kill_process_group(pid).is_ok())
    }

    /// SIGTERM, then SIGKILL after the grace period; then leftovers of the group are killed.
    async fn stop(&mut self) -> Stopped {
        let mut killed = false;
        let mut status = self.child.try_wait().ok().flatten();
        if status.is_none() {
            self.signal_group(Signal::TERM);
            status = match tokio::time::timeout(self.grace, self.child.wait()).await {
                Ok(result) => result.ok(),
                Err(_) => {
                    killed = true;
                    self.signal_group(Signal::KILL);
                    self.child.wait().await.ok()
                }
            };
        }
        if self.group_alive() {
            self.signal_group(Signal::KILL);
        }
        self.drain().await;
        Stopped {
            name: self.name.clone(),
            pid: self.pid,
            status,
            killed,
        }
    }

    /// The synchronous form of [`Running::stop`] for `Drop`, where nothing can be awaited.
    fn stop_blocking(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group(Signal::TERM);
            let until = Instant::now() + self.grace;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if matches!(self.child.try_wait(), Ok(None)) || self.group_alive() {
            self.signal_group(Signal::KILL);
            let _ = self.child.start_kill();
            let until = Instant::now() + Duration::from_secs(1);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Every started service, in start order. Stops them in reverse order on [`Services::stop`] or drop.
pub struct Services {
    running: Vec<Running>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<(&str, u32)> = self
            .running
            .iter()
            .map(|r| (r.name.as_str(), r.pid))
            .collect();
        f.debug_struct("Services").field("running", &names).finish()
    }
}

impl Services {
    /// Starts the table in dependency order, each one ready before the next starts.
    /// On any failure the services already started are stopped (in reverse) before the error returns.
    pub async fn start(table: Vec<Service>) -> Result<Services, StartError> {
        let order = start_order(&table)?;
        let mut services = Services {
            running: Vec::new(),
        };
        for index in order {
            match start_one(&table[index]).await {
                Ok(running) => services.running.push(running),
                Err(error) => {
                    services.stop().await;
                    return Err(error);
                }
            }
        }
        Ok(services)
    }

    fn find(&self, name: &str) -> Option<&Running> {
        self.running.iter().find(|r| r.name == name)
    }

    /// Names in start order.
    pub fn names(&self) -> Vec<String> {
        self.running.iter().map(|r| r.name.clone()).collect()
    }
    pub fn ready_line(&self, name: &str) -> Option<&ReadyLine> {
        self.find(name).map(|r| &r.ready)
    }
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.find(name).map(|r| r.pid)
    }
    pub fn tail(&self, name: &str) -> Option<Tail> {
        self.find(name).map(Running::tail)
    }

    /// Err for the first service that has exited since it was started.
    pub async fn check_alive(&mut self) -> Result<(), ServiceDied> {
        for running in &mut self.running {
            if let Ok(Some(status)) = running.child.try_wait() {
                running.drain().await;
                return Err(ServiceDied {
                    name: running.name.clone(),
                    status: status.to_string(),
                    tail: running.tail(),
                });
            }
        }
        Ok(())
    }

    /// Waits until any service exits and reports it (never returns while all run; pending forever
    /// when the table is empty).
    pub async fn wait_for_exit(&mut self) -> ServiceDied {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if let Err(died) = self.check_alive().await {
                return died;
            }
        }
    }

    /// Stops every service, the last started first, each given its grace period.
    pub async fn stop(mut self) -> Vec<Stopped> {
        let mut stopped = Vec::new();
        while let Some(mut running) = self.running.pop() {
            stopped.push(running.stop().await);
        }
        stopped
    }
}

impl Drop for Services {
    /// Reached on error paths and panics: blocks for at most the grace periods, because a child
    /// left running would hold its ports and confuse the next run.
    fn drop(&mut self) {
        while let Some(mut running) = self.running.pop() {
            running.stop_blocking();
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made (so a signal that comes while the
/// services start is not lost, and does not kill us before we stop them).
#[derive(Debug)]
pub struct Shutdown {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub fn new() -> io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next signal and names it.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

async fn start_one(service: &Service) -> Result<Running, StartError> {
    let mut command = Command::new(&service.program);
    command
        .args(&service.args)
        .envs(service.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| StartError::Spawn {
        name: service.name.clone(),
        program: service.program.display().to_string(),
        source,
    })?;
    let pid = child.id().unwrap_or(0);
    let tail = SharedTail::default();
    let (ready_tx, ready_rx) = oneshot::channel();
    let prefix = match &service.ready {
        Readiness::Line { prefix, .. } => Some(prefix.clone()),
        Readiness::Spawned => None,
    };
    let echo = service.echo.then(|| service.name.clone());
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let watch = prefix.map(|p| (p, ready_tx));
        readers.push(tokio::spawn(pump(
            stdout,
            tail.clone(),
            echo.clone(),
            watch,
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(pump(stderr, tail.clone(), echo, None)));
    }
    let mut running = Running {
        name: service.name.clone(),
        pid,
        grace: service.grace,
        child,
        ready: ReadyLine::default(),
        tail,
        readers,
    };
    let Readiness::Line { deadline, .. } = &service.ready else {
        return Ok(running);
    };
    match wait_ready(&mut running.child, ready_rx, *deadline).await {
        Ok(line) => {
            running.ready = ReadyLine::parse(&line);
            Ok(running)
        }
        Err(status) => {
            // Stop it before reading the tail: the pipes then close and the tail is complete.
            running.stop().await;
            let name = service.name.clone();
            let tail = running.tail();
            Err(match status {
                Some(status) => StartError::ExitedEarly {
                    name,
                    status: status.to_string(),
                    tail,
                },
                None => StartError::NotReady {
                    name,
                    deadline: *deadline,
                    tail,
                },
            })
        }
    }
}

/// The ready line, or `Err(Some(status))` when the child exited first, `Err(None)` at the deadline.
async fn wait_ready(
    child: &mut Child,
    mut ready: oneshot::Receiver<String>,
    deadline: Duration,
) -> Result<String, Option<ExitStatus>> {
    let expires = tokio::time::sleep(deadline);
    tokio::pin!(expires);
    let mut stdout_open = true;
    loop {
        tokio::select! {
            biased;
            line = &mut ready, if stdout_open => match line {
                Ok(line) => return Ok(line),
                // stdout closed without the line: only an exit or the deadline can end the wait now.
                Err(_) => stdout_open = false,
            },
            status = child.wait() => {
                // It may have printed the line just before exiting: the pipe still holds it.
                if stdout_open
                    && let Ok(Ok(line)) = tokio::time::timeout(DRAIN, &mut ready).await
                {
                    return Ok(line);
                }
                return Err(status.ok());
            }
            () = &mut expires => return Err(None),
        }
    }
}
