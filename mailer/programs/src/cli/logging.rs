//! Logging of both programs: tracing to stderr, the level from `RUST_LOG`.

/// Logs to stderr; `RUST_LOG` chooses the level (warnings only by default, so that the
/// summary on stdout and the progress bar stay readable).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Fails only when a subscriber is already installed, which is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
