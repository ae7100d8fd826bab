//! The whole `main` of a program: flags, logging, a multi-threaded tokio runtime, and the
//! exit code.

use std::process::ExitCode;

use super::exit::{Fatal, finish};
use super::flags::parse_args;
use super::logging::init_logging;

/// The whole `main` of a program: parse the flags (exit 2 on bad ones), set up logging, run
/// `run` on a multi-threaded runtime, and turn its result into one line and an exit code.
pub fn main<A, F, Fut>(program: &str, run: F) -> ExitCode
where
    A: clap::Parser,
    F: FnOnce(A) -> Fut,
    Fut: std::future::Future<Output = Result<ExitCode, Fatal>>,
{
    let args: A = parse_args(program);
    init_logging();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Fatal::failure)
        .and_then(|runtime| runtime.block_on(run(args)));
    finish(program, result)
}
