//! The result table printed at the end of a run.

use std::fmt::Write as _;
use std::time::Duration;

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result {
    Passed,
    Failed,
    /// Not run: an earlier scenario failed (without --keep-going), the run was interrupted, or
    /// a tool the scenario needs is missing (outside CI; under CI that fails it).
    Skipped,
}

impl Result {
    fn as_str(self) -> &'static str {
        match self {
            Result::Passed => "ok",
            Result::Failed => "FAILED",
            Result::Skipped => "skipped",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub result: Result,
    pub time: Duration,
    /// Distinct messages checked (copies of one Message-ID count once).
    pub mails: usize,
    pub faults: u64,
    /// Copies sent again after a lost reply (accept-close), when the scenario counts them.
    pub resent: Option<u64>,
}

impl Row {
    pub fn skipped(scenario: &'static str) -> Row {
        Row {
            scenario,
            result: Result::Skipped,
            time: Duration::ZERO,
            mails: 0,
            faults: 0,
            resent: None,
        }
    }
}

/// The table: scenario, result, time, mails, faults injected, copies resent after a lost reply.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<8} {:>7} {:>6} {:>16} {:>7}",
        "scenario", "result", "time", "mails", "faults injected", "resent"
    );
    for row in rows {
        let (time, mails, faults) = if row.result == Result::Skipped {
            ("-".to_owned(), "-".to_owned(), "-".to_owned())
        } else {
            (
                format!("{:.2}s", row.time.as_secs_f64()),
                row.mails.to_string(),
                row.faults.to_string(),
            )
        };
        let resent = match (row.result, row.resent) {
            (Result::Passed, Some(n)) => n.to_string(),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<14} {:<8} {time:>7} {mails:>6} {faults:>16} {resent:>7}",
            row.scenario,
            row.result.as_str()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_and_skipped_ones_have_no_numbers() {
        let rows = [
            Row {
                scenario: "notify",
                result: Result::Passed,
                time: Duration::from_millis(1234),
                mails: 120,
                faults: 61,
                resent: Some(9),
            },
            Row::skipped("tls"),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("notify         ok")
                && lines[1].contains("1.23s")
                && lines[1].ends_with(" 61       9"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("tls            skipped") && lines[2].ends_with(" -"),
            "{text}"
        );
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{text}");
    }
}
