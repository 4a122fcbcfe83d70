//! Tests of the API the Dart side calls, against the reference backend (`tokenkeeper-server`)
//! started in-process on 127.0.0.1:0.
//!
//! The Dart callbacks (token source, sink, credential store) are Rust closures here that do what
//! a Flutter app does with its own HTTP client and RTC engine: `DartFnFuture` is a boxed future,
//! so the API functions are called exactly as the generated glue calls them. A `StreamSink` can
//! only be created by the Dart side, so streams (events, status, logs) are observed through the
//! `StreamTarget` seam that the stream functions delegate to (`events_into`,
//! `watch_status_into`, `set_log_sink_into`), with a channel in place of the sink.

mod support;

mod engine;
mod errors;
mod events;
#[cfg(feature = "http")]
mod http;
mod lifecycle;
mod logs;
mod redaction;
mod status;
mod store;
