//! The SDK's logs as a Dart `Stream`, through the core's forwarder and redaction
//! (`tokenkeeper::logging`, shared with the Kotlin/Swift/Python façade).

use std::sync::Arc;

use flutter_rust_bridge::frb;
use tokenkeeper::logging as core;

use crate::api::error::TokenKeeperError;
use crate::frb_generated::StreamSink;
use crate::streams::StreamTarget;

/// Severity of a log record, from most to least verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// One log line from the SDK, already redacted: any run of 24 or more token characters shows as
/// its first 6 characters and its length (`007eJx…(139 chars)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The Rust module that logged it, e.g. `tokenkeeper::lifecycle`.
    pub target: String,
    /// The message followed by its fields as `key=value`.
    pub message: String,
}

/// Sends the SDK's log records at `minLevel` and above to the returned `Stream`, replacing (and
/// closing) any stream from an earlier call. Records of other libraries inside the SDK (the
/// HTTP stack) are sent at `warn` and above only. Default: no stream, nothing is logged.
///
/// Records arrive from SDK threads in the order they were logged. The stream stays open until
/// `clearLogSink()` or the next `setLogSink()`; cancelling your subscription alone does not stop
/// the SDK from formatting records, so call `clearLogSink()` when you are done.
///
/// If another Rust library in your app already installed a `tracing` subscriber, the stream
/// gets one `TokenKeeperError` (`misconfigured`) and closes.
///
/// ```dart
/// setLogSink(minLevel: LogLevel.info).listen(
///     (r) => debugPrint('[tokenkeeper ${r.level.name}] ${r.target}: ${r.message}'));
/// ```
pub fn set_log_sink(min_level: LogLevel, sink: StreamSink<LogRecord>) {
    let report = sink.clone();
    if let Err(e) = set_log_sink_into(min_level, sink) {
        let _ = report.add_error(e);
    }
}

/// [`set_log_sink`] into any [`StreamTarget`] (how Rust tests observe what Dart would
/// receive).
///
/// # Errors
/// `misconfigured` (setting `logSink`) when another `tracing` subscriber owns the process.
#[frb(ignore)]
pub fn set_log_sink_into(
    min_level: LogLevel,
    target: impl StreamTarget<LogRecord>,
) -> Result<(), TokenKeeperError> {
    let forward = move |record: core::LogRecord| {
        // A closed stream loses this record only; logging about it would recurse.
        let _ = target.deliver(LogRecord {
            level: record.level.into(),
            target: record.target,
            message: record.message,
        });
    };
    core::set_log_sink(Arc::new(forward), min_level.into())
        .map_err(|e| TokenKeeperError::misconfigured("logSink", e.to_string()))
}

/// Stops sending log records and closes the stream of `setLogSink()`.
#[frb(sync)]
pub fn clear_log_sink() {
    core::clear_log_sink();
}
