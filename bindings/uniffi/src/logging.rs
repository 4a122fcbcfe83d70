//! Forwards the SDK's `tracing` output to a host [`LogSink`] (logcat, os_log, Python logging),
//! through the core's forwarder (`tokenkeeper::logging`, shared with the Dart façade).
//!
//! The core never logs a token or secret; as a second line of defence every message is scrubbed
//! there too: any run of 24 or more token-alphabet characters is shown as its first 6 characters
//! and its length (`eyJhbG…(155 chars)`).

use std::sync::Arc;

use tokenkeeper::logging as core;

use crate::error::TokenKeeperError;

/// Severity of a log record, from most to least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Every step, including each timer.
    Trace,
    /// Decisions worth reading when debugging (schedules, retries).
    Debug,
    /// Lifecycle milestones (token issued, session closed).
    Info,
    /// Something failed and will be retried.
    Warn,
    /// Something failed for good.
    Error,
}

impl From<LogLevel> for core::LogLevel {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Trace => Self::Trace,
            LogLevel::Debug => Self::Debug,
            LogLevel::Info => Self::Info,
            LogLevel::Warn => Self::Warn,
            LogLevel::Error => Self::Error,
        }
    }
}

impl From<core::LogLevel> for LogLevel {
    fn from(level: core::LogLevel) -> Self {
        match level {
            core::LogLevel::Trace => Self::Trace,
            core::LogLevel::Debug => Self::Debug,
            core::LogLevel::Info => Self::Info,
            core::LogLevel::Warn => Self::Warn,
            core::LogLevel::Error => Self::Error,
        }
    }
}

/// One log line from the SDK, already redacted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The Rust module that logged it, e.g. `tokenkeeper::lifecycle`.
    pub target: String,
    /// The message followed by its fields as `key=value`.
    pub message: String,
}

/// Receives the SDK's log records; implemented by the host (e.g. `Log.println` on Android,
/// `os_log` on iOS). Called from SDK threads: it must be thread-safe and quick. An exception it
/// throws drops that record and nothing else.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// Handles one record.
    ///
    /// # Errors
    /// Whatever the host throws; the record is dropped.
    fn log(&self, record: LogRecord) -> Result<(), TokenKeeperError>;
}

/// Plugs a host [`LogSink`] into the core's forwarder.
struct HostLogSink(Arc<dyn LogSink>);

impl core::LogSink for HostLogSink {
    fn log(&self, record: core::LogRecord) {
        // A sink that throws loses this record only; logging about it would recurse.
        let _ = self.0.log(LogRecord {
            level: record.level.into(),
            target: record.target,
            message: record.message,
        });
    }
}

/// Sends the SDK's logs at `min_level` and above to `sink`, replacing any previous sink.
/// Records from other crates (HTTP stack) are forwarded at `Warn` and above only.
///
/// Default: no sink, nothing is logged.
///
/// # Errors
/// [`TokenKeeperError::Misconfigured`] when another `tracing` subscriber already owns this
/// process (an app embedding its own Rust code); route that subscriber to the host instead.
///
/// # Example (Kotlin)
/// ```kotlin
/// setLogSink(object : LogSink {
///     override fun log(record: LogRecord) { Log.println(Log.INFO, "tokenkeeper", record.message) }
/// }, LogLevel.INFO)   // throws TokenKeeperException.Misconfigured if another subscriber owns logging
/// ```
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, min_level: LogLevel) -> Result<(), TokenKeeperError> {
    core::set_log_sink(Arc::new(HostLogSink(sink)), min_level.into()).map_err(|e| {
        TokenKeeperError::Misconfigured {
            reason: e.to_string(),
        }
    })
}

/// Stops forwarding logs; the sink is released.
#[uniffi::export]
pub fn clear_log_sink() {
    core::clear_log_sink();
}
