//! `harness`: the integration stage (`cargo run -p harness`), or `harness serve`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = harness::cli::Cli::parse();
    match harness::main(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("harness: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
