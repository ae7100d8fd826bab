//! Exit codes and how a failure ends a program: 0 the run completed; 1 the store or the mail
//! server could not be used ([`Fatal::failure`]); 2 the input was wrong: a flag, a file, a
//! URL, `FAKECLOCK` ([`Fatal::usage`]), as clap itself does for unknown flags. A fatal error
//! is one line on stderr, never clap's or anyhow's multi-line report.

use std::process::ExitCode;

use crate::db::StoreError;

/// Exit code of a run that could not reach the store or the mail server.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error: bad flag, unreadable or malformed input, bad URL.
pub const EXIT_USAGE: u8 = 2;

/// An error that ends the program, with the exit code it deserves.
#[derive(Debug)]
pub struct Fatal {
    code: u8,
    error: anyhow::Error,
}

impl Fatal {
    /// The user's input is wrong (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Fatal {
        Fatal {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
    /// The store or the server could not be used (exit 1).
    pub fn failure(error: impl Into<anyhow::Error>) -> Fatal {
        Fatal {
            code: EXIT_FAILURE,
            error: error.into(),
        }
    }
    pub fn code(&self) -> u8 {
        self.code
    }
    pub fn error(&self) -> &anyhow::Error {
        &self.error
    }
}

impl From<StoreError> for Fatal {
    fn from(error: StoreError) -> Fatal {
        if error.is_usage() {
            Fatal::usage(error)
        } else {
            Fatal::failure(error)
        }
    }
}

/// Turns the outcome of `run` into the process exit code, printing a fatal error as one line.
pub fn finish(program: &str, result: Result<ExitCode, Fatal>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(fatal) => {
            eprintln!(
                "{program}: error: {}",
                one_line(&format!("{:#}", fatal.error))
            );
            ExitCode::from(fatal.code)
        }
    }
}

fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_errors_become_one_line() {
        assert_eq!(one_line("a\n\n  b\n"), "a   b");
    }
}
