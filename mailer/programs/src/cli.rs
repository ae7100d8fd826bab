//! What expiration-mailer and notify-mailer share around the library, one module per job:
//!
//! - `exit`: exit codes (0 done, 1 store or server unusable, 2 bad input) and [`Fatal`].
//! - `runtime`: [`main`]: flags, logging, the tokio runtime, the exit code.
//! - `flags`: clap parsing in one line, durations and sizes, the SMTP flags ([`SmtpArgs`]).
//! - `logging`: tracing to stderr, `RUST_LOG`.
//! - `clock`: the run's clock (`FAKECLOCK`) and day/second numbers.
//! - `template`: bounded minijinja templates of user-facing mail.
//! - `signals`: SIGINT/SIGTERM cancel the run.
//! - `summary`: the SMTP words and the `backoff:` line of the summary.

mod clock;
mod exit;
mod flags;
mod logging;
mod runtime;
mod signals;
mod summary;
mod template;

pub use clock::{clock, day_of, unix_seconds};
pub use exit::{EXIT_FAILURE, EXIT_USAGE, Fatal, finish};
pub use flags::{
    SmtpArgs, TlsArg, check_readable, parse_args, parse_duration, parse_size, read_password_file,
};
pub use logging::init_logging;
pub use runtime::main;
pub use signals::cancel_on_signal;
pub use summary::{backoff_line, smtp_words};
pub use template::{DEFAULT_FUEL, DEFAULT_MAX_OUTPUT, MailTemplates, TemplateArgs, template_error};
