//! Reading a service's output: the pipes are read to EOF into a bounded tail (what an error
//! report shows), and the first line whose first word is the readiness prefix is handed over.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::oneshot;

/// Lines of output kept per service (stdout and stderr together, in arrival order).
pub const TAIL_LINES: usize = 50;
/// Longest line kept in a tail; the rest of a longer line is cut so a binary blob cannot eat memory.
const MAX_LINE: usize = 2000;

/// The line that made a service ready, with its `key=value` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadyLine {
    pub line: String,
    pub fields: BTreeMap<String, String>,
}

impl ReadyLine {
    pub fn parse(line: &str) -> Self {
        let fields = line
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        ReadyLine {
            line: line.to_owned(),
            fields,
        }
    }
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    /// A socket address field such as `smtp=127.0.0.1:40025`.
    pub fn addr(&self, key: &str) -> Result<SocketAddr, String> {
        let value = self
            .field(key)
            .ok_or_else(|| format!("no `{key}=` in ready line {:?}", self.line))?;
        value
            .parse()
            .map_err(|e| format!("`{key}={value}` in ready line {:?}: {e}", self.line))
    }
}

/// The last lines a service printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail(pub Vec<String>);

impl Tail {
    pub fn contains(&self, needle: &str) -> bool {
        self.0.iter().any(|line| line.contains(needle))
    }
}

impl fmt::Display for Tail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "    (no output)");
        }
        for (i, line) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "    | {line}")?;
        }
        Ok(())
    }
}

/// The last lines of one child's output, shared with the tasks that read its pipes.
pub(super) type SharedTail = Arc<Mutex<VecDeque<String>>>;

/// Reads one pipe to EOF into the tail; the first line starting with the watched word is sent on.
pub(super) async fn pump<R: AsyncRead + Unpin>(
    pipe: R,
    tail: SharedTail,
    echo: Option<String>,
    mut watch: Option<(String, oneshot::Sender<String>)>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&buf);
        let line: String = text
            .trim_end_matches(['\n', '\r'])
            .chars()
            .take(MAX_LINE)
            .collect();
        if let Some(name) = &echo {
            eprintln!("[{name}] {line}");
        }
        if watch
            .as_ref()
            .is_some_and(|(prefix, _)| line.split_whitespace().next() == Some(prefix.as_str()))
            && let Some((_, sender)) = watch.take()
        {
            let _ = sender.send(line.clone());
        }
        let mut lines = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

pub(super) fn snapshot(tail: &SharedTail) -> Tail {
    let lines = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Tail(lines.iter().cloned().collect())
}
