//! The service table: what to start, what it needs first, how to tell it is ready, and the
//! start order that follows from it. Plain data and a pure function; nothing here spawns.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::StartError;

/// One entry of the service table.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Names of services that must be ready before this one starts.
    pub after: Vec<String>,
    pub ready: Readiness,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub grace: Duration,
    /// Also copy every output line to our stderr, prefixed with `[name]` (for `serve`).
    pub echo: bool,
}

impl Service {
    /// A service that is ready when it prints a line starting with `READY`, within 30 s.
    pub fn new(name: impl Into<String>, program: impl Into<PathBuf>) -> Self {
        Service {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            after: Vec::new(),
            ready: Readiness::line("READY", Duration::from_secs(30)),
            grace: Duration::from_secs(5),
            echo: false,
        }
    }
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn after(mut self, name: impl Into<String>) -> Self {
        self.after.push(name.into());
        self
    }
    pub fn ready(mut self, ready: Readiness) -> Self {
        self.ready = ready;
        self
    }
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
    pub fn echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }
}

/// How to tell that a service is ready.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// Ready when a stdout line's first word is `prefix`; not ready after `deadline` is an error.
    Line { prefix: String, deadline: Duration },
    /// Ready as soon as it is spawned (for helpers nothing else waits on).
    Spawned,
}

impl Readiness {
    pub fn line(prefix: impl Into<String>, deadline: Duration) -> Self {
        Readiness::Line {
            prefix: prefix.into(),
            deadline,
        }
    }
}

/// Indexes of `table` in a start order that puts every service after what it needs; ties keep
/// table order. Unknown names, duplicates and cycles are errors.
pub fn start_order(table: &[Service]) -> Result<Vec<usize>, StartError> {
    let mut names = HashSet::new();
    for service in table {
        if !names.insert(service.name.as_str()) {
            return Err(StartError::Table(format!(
                "two services are named {}",
                service.name
            )));
        }
    }
    for service in table {
        if let Some(missing) = service.after.iter().find(|d| !names.contains(d.as_str())) {
            return Err(StartError::Table(format!(
                "{} needs {missing}, which is not in the table",
                service.name
            )));
        }
    }
    let mut started: HashSet<&str> = HashSet::new();
    let mut order = Vec::with_capacity(table.len());
    while order.len() < table.len() {
        let next = table.iter().enumerate().find(|(_, s)| {
            !started.contains(s.name.as_str())
                && s.after.iter().all(|d| started.contains(d.as_str()))
        });
        match next {
            Some((index, service)) => {
                started.insert(service.name.as_str());
                order.push(index);
            }
            None => {
                let stuck: Vec<&str> = table
                    .iter()
                    .map(|s| s.name.as_str())
                    .filter(|n| !started.contains(n))
                    .collect();
                return Err(StartError::Table(format!(
                    "dependency cycle among {}",
                    stuck.join(", ")
                )));
            }
        }
    }
    Ok(order)
}
