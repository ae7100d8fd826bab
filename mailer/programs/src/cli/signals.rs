//! SIGINT and SIGTERM: the first stops the run after the message in flight, the second at once.

/// Cancels `cancel` on the first SIGINT or SIGTERM, so the run stops after the message in
/// flight (recorded, never half-written); exits at once with 130 on a second one.
pub async fn cancel_on_signal(cancel: tokio_util::sync::CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    cancel.cancel();
    // A second signal means "now": do not wait for a send stuck in reconnect backoff.
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    std::process::exit(130);
}
