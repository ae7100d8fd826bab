//! Running expiration-mailer and notify-mailer against one server: the SMTP flags they share,
//! a bounded run time, and a failure report that shows the command and its output. The other
//! programs a scenario runs (the Go client, `go build`) go through the same [`run_within`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

/// Longest a mailer may run; with the fast reconnect settings a healthy run takes a few seconds.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// Lines of a failed mailer's output shown in the report.
const SHOWN_LINES: usize = 30;

/// Where and how the mailers reach the server.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub addr: SocketAddr,
    /// Implicit TLS, trusting this CA (PEM); plain text when `None`.
    pub tls_ca: Option<PathBuf>,
}

impl Smtp {
    /// The flags every mailer run gets. The reconnect delays are short so a run against a server
    /// that closes a third of the connections still takes seconds, not minutes.
    pub fn flags(&self, from: &str) -> Vec<OsString> {
        let mut flags: Vec<OsString> = vec![
            "--smtp-server".into(),
            self.addr.ip().to_string().into(),
            "--smtp-port".into(),
            self.addr.port().to_string().into(),
            "--from".into(),
            from.into(),
            "--reconnect-base".into(),
            "10ms".into(),
            "--reconnect-max".into(),
            "200ms".into(),
        ];
        if let Some(ca) = &self.tls_ca {
            flags.extend([
                "--smtp-tls".into(),
                "implicit".into(),
                "--smtp-root-ca".into(),
                ca.clone().into(),
            ]);
        }
        flags
    }
}

/// What a successful mailer run printed.
#[derive(Debug, Clone)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
}

/// Runs a mailer to completion (killed at the limit or when the future is dropped);
/// a non-zero exit is an error with the command line and the end of its output.
pub async fn run(
    program: &Path,
    args: &[OsString],
    env: &[(&str, String)],
    cwd: &Path,
) -> anyhow::Result<Ran> {
    run_within(RUN_LIMIT, program, args, env, cwd).await
}

/// [`run`] with another time limit, for programs that are not mailers (a compiler).
pub async fn run_within(
    limit: Duration,
    program: &Path,
    args: &[OsString],
    env: &[(&str, String)],
    cwd: &Path,
) -> anyhow::Result<Ran> {
    let shown = command_line(program, args, env);
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let output = match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.with_context(|| format!("waiting for {shown}"))?,
        Err(_) => bail!("{shown} did not finish within {limit:?} (killed)"),
    };
    let ran = Ran {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if !output.status.success() {
        bail!(
            "{shown} failed ({}); its last output:\n{}",
            output.status,
            last_lines(&format!("{}{}", ran.stdout, ran.stderr), SHOWN_LINES)
        );
    }
    Ok(ran)
}

/// The command as one could paste it into a shell (env first).
fn command_line(program: &Path, args: &[OsString], env: &[(&str, String)]) -> String {
    let mut words: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    let name = program.file_name().unwrap_or(program.as_os_str());
    words.push(name.to_string_lossy().into_owned());
    words.extend(args.iter().map(|a| quote(&a.to_string_lossy())));
    words.join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The last `n` lines, indented for a report.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    if lines.is_empty() {
        return "    (no output)".to_owned();
    }
    lines[start..]
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_adds_the_mode_and_the_ca() {
        let plain = Smtp {
            addr: "127.0.0.1:2525".parse().unwrap(),
            tls_ca: None,
        };
        let flags: Vec<String> = plain
            .flags("Bot <bot@example.com>")
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            flags[..4],
            ["--smtp-server", "127.0.0.1", "--smtp-port", "2525"]
        );
        assert!(!flags.iter().any(|f| f == "--smtp-tls"));
        let tls = Smtp {
            tls_ca: Some("/tmp/ca.pem".into()),
            ..plain
        };
        let flags: Vec<String> = tls
            .flags("b@example.com")
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect();
        assert!(flags.ends_with(&[
            "--smtp-tls".into(),
            "implicit".into(),
            "--smtp-root-ca".into(),
            "/tmp/ca.pem".into()
        ]));
    }

    #[test]
    fn the_command_line_can_be_pasted() {
        let line = command_line(
            Path::new("/t/notify-mailer"),
            &["--subject".into(), "it's here".into()],
            &[("FAKECLOCK", "2026-01-01T00:00:00Z".into())],
        );
        assert_eq!(
            line,
            r"FAKECLOCK=2026-01-01T00:00:00Z notify-mailer --subject 'it'\''s here'"
        );
    }

    #[tokio::test]
    async fn a_failing_program_is_reported_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let error = run(
            Path::new("/bin/sh"),
            &[
                "-c".into(),
                "echo working; echo 'no such flag' >&2; exit 2".into(),
            ],
            &[],
            dir.path(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("exit status: 2") && error.contains("| no such flag"),
            "{error}"
        );
    }
}
