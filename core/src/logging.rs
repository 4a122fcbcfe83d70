//! Forwarding the SDK's `tracing` output to the host's log (logcat, os_log, Python `logging`, a
//! Dart `Stream`): the one implementation the uniffi and flutter_rust_bridge façades share
//! (feature `logging`, off by default; the façades turn it on).
//!
//! The core never logs a token or secret; as a second line of defence every message is scrubbed
//! here too ([`redact`]): any run of 24 or more token-alphabet characters is shown as its first
//! 6 characters and its length (`eyJhbG…(155 chars)`).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tokenkeeper::logging::{LogLevel, LogRecord, clear_log_sink, set_log_sink};
//!
//! let lines = Arc::new(Mutex::new(Vec::new()));
//! let sink = lines.clone();
//! set_log_sink(Arc::new(move |r: LogRecord| sink.lock().unwrap().push(r.message)), LogLevel::Info)
//!     .expect("no other tracing subscriber in this process");
//! tracing::info!(target: "tokenkeeper::demo", "fetched 007eJxTYBBbSAWYzr1PWsMHCALbNBiX2e");
//! clear_log_sink();
//! assert_eq!(*lines.lock().unwrap(), ["fetched 007eJx…(33 chars)"]);
//! ```

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The Rust module that logged it, e.g. `tokenkeeper::lifecycle`.
    pub target: String,
    /// The message followed by its fields as `key=value`.
    pub message: String,
}

/// Receives the SDK's log records. Called on whichever thread logged (SDK threads): it must be
/// quick and must not block. Closures `Fn(LogRecord)` are sinks.
pub trait LogSink: Send + Sync {
    /// Handles one record.
    fn log(&self, record: LogRecord);
}

impl<F: Fn(LogRecord) + Send + Sync> LogSink for F {
    fn log(&self, record: LogRecord) {
        self(record);
    }
}

/// [`set_log_sink`] failed: another `tracing` subscriber already owns this process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "another tracing subscriber is already installed in this process; forward its output to the \
     host instead of installing a log sink"
)]
pub struct SubscriberTaken;

struct Installed {
    sink: Arc<dyn LogSink>,
    min_level: LogLevel,
}

static SINK: RwLock<Option<Installed>> = RwLock::new(None);
static SUBSCRIBER: OnceLock<bool> = OnceLock::new();

/// Sends the SDK's records at `min_level` and above to `sink`, replacing any previous sink.
/// Records of other crates (the HTTP stack) are forwarded at [`LogLevel::Warn`] and above only.
/// The first call installs the process's global `tracing` subscriber. Default: no sink, nothing
/// is logged.
///
/// # Errors
/// [`SubscriberTaken`] when another `tracing` subscriber already owns the process (an app that
/// embeds its own Rust code); route that subscriber to the host instead.
pub fn set_log_sink(sink: Arc<dyn LogSink>, min_level: LogLevel) -> Result<(), SubscriberTaken> {
    let installed = *SUBSCRIBER.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward))
            .is_ok()
    });
    if !installed {
        return Err(SubscriberTaken);
    }
    *SINK.write() = Some(Installed { sink, min_level });
    Ok(())
}

/// Stops forwarding; the sink is released (dropped).
pub fn clear_log_sink() {
    // Take it out first: the sink's destructor may run host code that logs.
    let previous = SINK.write().take();
    drop(previous);
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
        sink.log(LogRecord {
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

/// Shortest run of token-alphabet characters treated as a possible secret: 24.
pub const REDACT_MIN_LEN: usize = 24;
/// Characters of a redacted run that stay visible: 6 (enough to tell `007eJx`, `04AAAA` and
/// `eyJhbG` apart, nothing of a real token).
pub const REDACT_KEEP: usize = 6;

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.')
}

/// Replaces every run of [`REDACT_MIN_LEN`]+ token-alphabet characters (ASCII letters and
/// digits, `+ / = - _ .`) with its first [`REDACT_KEEP`] characters and its length. For text
/// that may quote a token: log messages, and exception texts from host code.
///
/// ```
/// use tokenkeeper::logging::redact;
/// assert_eq!(redact("renewToken(007eJxTYBBbSAWYzr1PWsMHCALbNBiX2e) failed"),
///            "renewToken(007eJx…(33 chars)) failed");
/// assert_eq!(redact("ERR_NOT_READY (-7)"), "ERR_NOT_READY (-7)");
/// ```
pub fn redact(text: &str) -> String {
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
