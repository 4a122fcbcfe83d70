//! Forwards the SDK's `tracing` output to a host [`LogSink`] (logcat, os_log, Python logging).
//!
//! The core never logs a token or secret; as a second line of defence every message is scrubbed
//! here too: any run of 24 or more token-alphabet characters is shown as its first 6 characters
//! and its length (`eyJhbG…(155 chars)`).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

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

impl LogLevel {
    fn from_tracing(level: tracing::Level) -> Self {
        match level {
            tracing::Level::TRACE => Self::Trace,
            tracing::Level::DEBUG => Self::Debug,
            tracing::Level::INFO => Self::Info,
            tracing::Level::WARN => Self::Warn,
            tracing::Level::ERROR => Self::Error,
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

struct Installed {
    sink: Arc<dyn LogSink>,
    min_level: LogLevel,
}

static SINK: RwLock<Option<Installed>> = RwLock::new(None);
static SUBSCRIBER: OnceLock<bool> = OnceLock::new();

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
    let installed = *SUBSCRIBER.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward))
            .is_ok()
    });
    if !installed {
        return Err(TokenKeeperError::Misconfigured {
            reason: "another tracing subscriber is already installed in this process; \
                     forward its output to the host instead of calling set_log_sink"
                .into(),
        });
    }
    *SINK.write() = Some(Installed { sink, min_level });
    Ok(())
}

/// Stops forwarding logs; the sink is released.
#[uniffi::export]
pub fn clear_log_sink() {
    *SINK.write() = None;
}

/// The `tracing` layer that hands events to the installed sink.
struct Forward;

fn passes(metadata: &Metadata<'_>, min_level: LogLevel) -> bool {
    let level = LogLevel::from_tracing(*metadata.level());
    let floor = if metadata.target().starts_with("tokenkeeper") {
        min_level
    } else {
        min_level.max(LogLevel::Warn)
    };
    level >= floor
}

impl<S: Subscriber> Layer<S> for Forward {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The sink and its level change at run time: decide per event, never cache.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        SINK.read()
            .as_ref()
            .is_some_and(|s| passes(metadata, s.min_level))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let sink = match SINK.read().as_ref() {
            Some(s) if passes(event.metadata(), s.min_level) => Arc::clone(&s.sink),
            _ => return,
        };
        let mut text = Fields::default();
        event.record(&mut text);
        // A sink that throws loses this record only; logging about it would recurse.
        let _ = sink.log(LogRecord {
            level: LogLevel::from_tracing(*event.metadata().level()),
            target: event.metadata().target().to_owned(),
            message: redact(&text.finish()),
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    fn finish(self) -> String {
        if self.message.is_empty() {
            self.rest.trim_start().to_owned()
        } else {
            self.message + &self.rest
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

/// Shortest run of token-alphabet characters treated as a possible secret.
const REDACT_MIN_LEN: usize = 24;
/// Characters of a redacted run that stay visible.
const REDACT_KEEP: usize = 6;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.')
}

/// Replaces every run of [`REDACT_MIN_LEN`]+ token-alphabet characters with its first
/// [`REDACT_KEEP`] characters and its length: `007eJxTYBB…` → `007eJx…(139 chars)`.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= REDACT_MIN_LEN {
            let _ = write!(out, "{}…({} chars)", &run[..REDACT_KEEP], run.len());
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}
