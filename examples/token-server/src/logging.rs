//! The server's log: `tracing` to stderr, filtered by `RUST_LOG`, with a floor that no filter
//! can lower for the libraries that print what they carry.
//!
//! The WebSocket library logs every message at TRACE (`Received message {…}`), and room
//! messages carry tokens; hyper and the PostgreSQL driver can print request or query data at
//! TRACE/DEBUG too. Their events above INFO are dropped before any filter sees them, so
//! `RUST_LOG=trace` shows the server's own trace events and never a token.

use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// Targets (crates) whose events more verbose than INFO are never logged.
pub const QUIET_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "tokio_postgres",
    "postgres_protocol",
    "deadpool",
    "rusqlite",
    "reqwest",
    "axum",
    "tower",
    "tower_http",
    "mio",
];

/// Whether an event of `target` at `level` may be logged at all.
pub fn allowed(target: &str, level: &Level) -> bool {
    let quiet = QUIET_TARGETS.iter().any(|q| {
        target == *q
            || target
                .strip_prefix(q)
                .is_some_and(|rest| rest.starts_with("::"))
    });
    !quiet || *level <= Level::INFO
}

/// The log layer: `RUST_LOG` (default `default_filter`) over the [`QUIET_TARGETS`] floor.
pub fn layer<S>(default_filter: &str) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(env)
        .with_filter(filter_fn(|m| allowed(m.target(), m.level())))
}

/// Installs the server log on stderr (the binaries call this once at start). Log records of
/// libraries using the `log` crate pass through the same floor. Returns `false` when a global
/// subscriber was already installed.
pub fn init(default_filter: &str) -> bool {
    Registry::default()
        .with(layer(default_filter))
        .try_init()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_and_http_libraries_are_capped_at_info() {
        assert!(!allowed("tungstenite::protocol", &Level::TRACE));
        assert!(!allowed("tokio_tungstenite", &Level::DEBUG));
        assert!(!allowed("hyper::proto::h1::role", &Level::TRACE));
        assert!(allowed("tungstenite::protocol", &Level::WARN));
        assert!(allowed("tokenkeeper_server::rtc", &Level::TRACE));
        assert!(
            allowed("hyperion", &Level::TRACE),
            "only whole crate names match"
        );
    }
}
